/**
 * Cross-layer equalization (Nagel, van Baalen, Blankevoort, Welling, "Data-Free Quantization Through Weight
 * Equalization and Bias Correction", ICCV 2019, section 4.1): rescale the channels between two consecutive
 * weight layers so that both layers' per-channel weight ranges become equal, which helps per-tensor weight
 * quantization when channel ranges differ a lot (as after folding BatchNorm).
 *
 * For a pair `y = f(W1 x + b1)`, `z = W2 y + b2` with `f` positively homogeneous (`f(x / s) = f(x) / s` for
 * `s > 0`), scaling output channel `i` of layer 1 by `1 / s_i` and input channel `i` of layer 2 by `s_i` keeps
 * `z` unchanged:
 *
 *   `W1'[i] = W1[i] / s_i`, `b1'[i] = b1[i] / s_i`, `W2'[:, i] = W2[:, i] * s_i`,
 *
 * and the paper's choice `s_i = sqrt(r1_i * r2_i) / r2_i`, with `r1_i = max|W1[i]|` (range of output channel
 * `i` of layer 1) and `r2_i = max|W2[:, i]|` (range of input channel `i` of layer 2), makes both ranges
 * `sqrt(r1_i * r2_i)`. A channel with a zero range on either side keeps `s_i = 1`.
 *
 * Only ReLU is used as `f` (positive homogeneity), or no activation at all: the pattern is
 * `A -> [Relu] -> B` where `A` is a Conv (group 1), Gemm (no transA, alpha = beta = 1) or MatMul with a
 * 2-D float weight initializer, `A`'s output feeds only the Relu (or only `B`), and `B` is a Conv (group 1)
 * after a Conv, or a Gemm/MatMul after a Gemm/MatMul, reading it as its data input. Other activations (ReLU6,
 * Clip, LeakyRelu, Sigmoid...) and ops in between (MaxPool, Flatten) are not equalized. Chains of more than
 * two layers are handled by sweeping over all pairs until the scales converge (the paper's iterative
 * procedure). Weights are rescaled in float64 and stored as float32, so float outputs change only by float32
 * rounding. Fold BatchNorm first (`foldBatchNorm`): equalization is meant for BN-folded weights.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { attrFloat, attrInt, GraphBuilder, indexGraph, nodeLabel, removeDeadNodes } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { WEIGHT_OPS } from "../onnx/op_classes.ts";
import type { GraphProto, NodeProto, TensorProto } from "../onnx/proto.ts";
import { DataType, makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import { type PtqPass, type PtqState, registerPass, timedPass } from "./pass.ts";

/** One equalized pair. */
export interface EqualizedPair {
  /** First layer (its output channels are divided by `s`). */
  readonly first: string;
  /** Second layer (its input channels are multiplied by `s`). */
  readonly second: string;
  /** Activation between them: `"Relu"` or `"none"`. */
  readonly activation: "Relu" | "none";
  /** Channels between the layers. */
  readonly channels: number;
  /** Accumulated per-channel scale `s` over all sweeps (float64). */
  readonly scales: Float64Array;
}

/** Result of {@link equalizeCrossLayer}. */
export interface EqualizeResult {
  /** The equalized model (new object; the input is unchanged). */
  readonly model: OnnxModel;
  /** Equalized pairs in graph order. */
  readonly pairs: readonly EqualizedPair[];
  /** Sweeps done over all pairs. */
  readonly sweeps: number;
}

/** Options of {@link equalizeCrossLayer}. */
export interface EqualizeOptions {
  /** Most sweeps over all pairs (default 20; one suffices when no layer belongs to two pairs). */
  readonly maxSweeps?: number;
  /** Stop when every scale of a sweep is within `tolerance` of 1 (default 1e-6). */
  readonly tolerance?: number;
}

/** How a layer's weight is laid out: `rows` slices of `inner` values, channels along rows or columns. */
interface Layer {
  node: NodeProto;
  label: string;
  w: Float64Array;
  dims: readonly number[];
  bias?: Float64Array;
  biasDims?: readonly number[];
  /** Output channels and input channels of the weight. */
  outCh: number;
  inCh: number;
  /** Index of element (out o, in i, spatial k) in `w`. */
  at: (o: number, i: number, k: number) => number;
  /** Spatial size per (o, i). */
  spatial: number;
}

function floatInit(ix: ReturnType<typeof indexGraph>, name: string | undefined): TensorProto | undefined {
  const t = name ? ix.initializers.get(name) : undefined;
  return t && t.dataType === DataType.FLOAT ? t : undefined;
}

function layerOf(g: GraphProto, ix: ReturnType<typeof indexGraph>, n: NodeProto): Layer | string {
  const label = nodeLabel(n, g.node.indexOf(n));
  const wT = floatInit(ix, n.input[1]);
  if (!wT) return `${label}: weight is not a float initializer`;
  const w = Float64Array.from(tensorValues(wT) as Float32Array);
  const dims = wT.dims;
  let bias: Float64Array | undefined, biasDims: readonly number[] | undefined;
  if (n.opType !== "MatMul" && n.input[2]) {
    const bT = floatInit(ix, n.input[2]);
    if (!bT) return `${label}: bias is not a float initializer`;
    bias = Float64Array.from(tensorValues(bT) as Float32Array);
    biasDims = bT.dims;
  }
  if (n.opType === "Conv") {
    if (attrInt(n, "group", 1) !== 1) return `${label}: grouped/depthwise Conv is not equalized`;
    if (dims.length < 3) return `${label}: Conv weight has rank ${dims.length}`;
    const [o, i] = dims;
    const spatial = w.length / (o * i);
    if (bias && bias.length !== o) return `${label}: bias has ${bias.length} values for ${o} channels`;
    return {
      node: n,
      label,
      w,
      dims,
      bias,
      biasDims,
      outCh: o,
      inCh: i,
      spatial,
      at: (a, b, k) => (a * i + b) * spatial + k,
    };
  }
  if (dims.length !== 2) return `${label}: ${n.opType} weight has rank ${dims.length}`;
  if (n.opType === "Gemm") {
    if (attrInt(n, "transA", 0) !== 0 || attrFloat(n, "alpha", 1) !== 1 || attrFloat(n, "beta", 1) !== 1) {
      return `${label}: Gemm with transA, alpha or beta != 1 is not equalized`;
    }
  }
  const transB = n.opType === "Gemm" && attrInt(n, "transB", 0) === 1;
  // transB: W [N, K] (out, in); else W [K, N] (in, out).
  const [outCh, inCh] = transB ? [dims[0], dims[1]] : [dims[1], dims[0]];
  if (bias && bias.length !== outCh) return `${label}: bias of ${bias.length} values does not match ${outCh} outputs`;
  const at = transB ? (o: number, i: number) => o * inCh + i : (o: number, i: number) => i * outCh + o;
  return { node: n, label, w, dims, bias, biasDims, outCh, inCh, spatial: 1, at };
}

interface Pair {
  a: Layer;
  b: Layer;
  activation: "Relu" | "none";
  scales: Float64Array;
}

/**
 * Find `A -> [Relu] -> B` pairs (see the module doc) in a model: the pairs {@link equalizeCrossLayer} would
 * equalize, and the candidates it skipped with the reason.
 *
 * @example
 * ```ts
 * import { findEqualizationPairs } from "./equalize.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(13);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.initializer.push(makeTensorProto("w1", new Float32Array([1, 2, 3, 4]), [2, 2]),
 *   makeTensorProto("w2", new Float32Array([1, 2, 3, 4]), [2, 2]));
 * p.graph.node.push({ input: ["x", "w1"], output: ["h"], name: "fc1", opType: "MatMul", domain: "", attribute: [] },
 *   { input: ["h"], output: ["r"], name: "relu", opType: "Relu", domain: "", attribute: [] },
 *   { input: ["r", "w2"], output: ["y"], name: "fc2", opType: "MatMul", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const { pairs } = findEqualizationPairs(OnnxModel.fromProto(p));
 * if (pairs.length !== 1 || pairs[0].first !== 'MatMul "fc1"') throw new Error(JSON.stringify(pairs));
 * ```
 */
export function findEqualizationPairs(
  model: OnnxModel,
): { pairs: { first: string; second: string; activation: "Relu" | "none" }[]; skipped: string[] } {
  const { pairs, skipped } = findPairs(model.graph);
  return {
    pairs: pairs.map((p) => ({ first: p.a.label, second: p.b.label, activation: p.activation })),
    skipped,
  };
}

function findPairs(g: GraphProto): { pairs: Pair[]; skipped: string[] } {
  const ix = indexGraph(g);
  const outputs = new Set(g.output.map((v) => v.name));
  const sole = (name: string): NodeProto | undefined => {
    if (outputs.has(name)) return undefined;
    const c = ix.consumers.get(name) ?? [];
    return c.length === 1 ? g.node[c[0]] : undefined;
  };
  const layers = new Map<NodeProto, Layer>();
  const pairs: Pair[] = [];
  const skipped: string[] = [];
  for (const n of g.node) {
    if (n.domain !== "" || !WEIGHT_OPS.has(n.opType)) continue;
    let feed = n.output[0];
    let next = sole(feed);
    let activation: "Relu" | "none" = "none";
    if (next && next.opType === "Relu" && next.domain === "") {
      activation = "Relu";
      feed = next.output[0];
      next = sole(feed);
    }
    if (!next || next.domain !== "" || !WEIGHT_OPS.has(next.opType) || next.input[0] !== feed) continue;
    const convA = n.opType === "Conv", convB = next.opType === "Conv";
    if (convA !== convB) {
      skipped.push(`${nodeLabel(n)} -> ${nodeLabel(next)}: a Conv pairs only with a Conv`);
      continue;
    }
    const get = (m: NodeProto) => {
      let l = layers.get(m);
      if (!l) {
        const r = layerOf(g, ix, m);
        if (typeof r === "string") return r;
        layers.set(m, r);
        l = r;
      }
      return l;
    };
    const a = get(n), b = get(next);
    if (typeof a === "string" || typeof b === "string") {
      skipped.push(typeof a === "string" ? a : b as string);
      continue;
    }
    if (a.outCh !== b.inCh) {
      skipped.push(`${a.label} -> ${b.label}: ${a.outCh} output channels vs ${b.inCh} input channels`);
      continue;
    }
    pairs.push({ a, b, activation, scales: new Float64Array(a.outCh).fill(1) });
  }
  return { pairs, skipped };
}

/** r1_i = max |W1[i, ...]| over output channel i. */
function outRanges(l: Layer): Float64Array {
  const r = new Float64Array(l.outCh);
  for (let o = 0; o < l.outCh; o++) {
    let m = 0;
    for (let i = 0; i < l.inCh; i++) {
      for (let k = 0; k < l.spatial; k++) m = Math.max(m, Math.abs(l.w[l.at(o, i, k)]));
    }
    r[o] = m;
  }
  return r;
}

/** r2_i = max |W2[:, i, ...]| over input channel i. */
function inRanges(l: Layer): Float64Array {
  const r = new Float64Array(l.inCh);
  for (let o = 0; o < l.outCh; o++) {
    for (let i = 0; i < l.inCh; i++) {
      for (let k = 0; k < l.spatial; k++) r[i] = Math.max(r[i], Math.abs(l.w[l.at(o, i, k)]));
    }
  }
  return r;
}

/**
 * The paper's scales `s_i = sqrt(r1_i * r2_i) / r2_i` (1 where either range is 0).
 *
 * @example
 * ```ts
 * import { equalizationScales } from "./equalize.ts";
 * const s = equalizationScales([4, 1, 0], [1, 4, 2]);
 * if (s[0] !== 2 || s[1] !== 0.5 || s[2] !== 1) throw new Error(String(s));
 * ```
 */
export function equalizationScales(r1: ArrayLike<number>, r2: ArrayLike<number>): Float64Array {
  if (r1.length !== r2.length) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `equalizationScales: ${r1.length} output ranges vs ${r2.length} input ranges`,
    );
  }
  const s = new Float64Array(r1.length);
  for (let i = 0; i < s.length; i++) {
    const a = r1[i], b = r2[i];
    if (!(a >= 0) || !(b >= 0) || !Number.isFinite(a) || !Number.isFinite(b)) {
      throw new QuantlabError("NON_FINITE", `equalizationScales: channel ${i} has ranges ${a} and ${b}`);
    }
    s[i] = a > 0 && b > 0 ? Math.sqrt(a * b) / b : 1;
  }
  return s;
}

/**
 * Cross-layer equalization of every `A -> [Relu] -> B` pair (see the module doc). Returns a new model; the
 * input model is unchanged. Throws `UNSUPPORTED` for opsets quantlab's transforms do not handle.
 *
 * @example
 * ```ts
 * import { equalizeCrossLayer } from "./equalize.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
 * const p = emptyModel(13);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * // fc1: W [K=1, N=2] (MatMul layout), channel ranges 8 and 1; fc2: W [K=2, N=1], input ranges 2 and 4.
 * p.graph.initializer.push(makeTensorProto("w1", new Float32Array([8, 1]), [1, 2]),
 *   makeTensorProto("w2", new Float32Array([2, 4]), [2, 1]));
 * p.graph.node.push({ input: ["x", "w1"], output: ["h"], name: "fc1", opType: "MatMul", domain: "", attribute: [] },
 *   { input: ["h"], output: ["r"], name: "relu", opType: "Relu", domain: "", attribute: [] },
 *   { input: ["r", "w2"], output: ["y"], name: "fc2", opType: "MatMul", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const { model, pairs } = equalizeCrossLayer(OnnxModel.fromProto(p));
 * // s = sqrt(8 * 2) / 2 = 2 and sqrt(1 * 4) / 4 = 0.5: both layers get ranges 4 and 2.
 * const w1 = tensorValues(model.graph.initializer.find((t) => t.name === model.graph.node[0].input[1])!);
 * if (pairs[0].scales.join() !== "2,0.5" || [...w1].join() !== "4,2") throw new Error(String(w1));
 * ```
 */
export function equalizeCrossLayer(model: OnnxModel, options: EqualizeOptions = {}): EqualizeResult {
  model.checkOpset("cross-layer equalization");
  const maxSweeps = options.maxSweeps ?? 20;
  const tol = options.tolerance ?? 1e-6;
  if (!Number.isInteger(maxSweeps) || maxSweeps < 1) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `equalizeCrossLayer: maxSweeps must be a positive integer, got ${maxSweeps}`,
    );
  }
  if (!(tol >= 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", `equalizeCrossLayer: tolerance must be >= 0, got ${tol}`);
  }
  const m = model.clone();
  const g = m.graph;
  const { pairs } = findPairs(g);
  let sweeps = 0;
  for (; sweeps < maxSweeps && pairs.length;) {
    sweeps++;
    let worst = 0;
    for (const p of pairs) {
      const s = equalizationScales(outRanges(p.a), inRanges(p.b));
      const { a, b } = p;
      for (let c = 0; c < s.length; c++) {
        const sc = s[c];
        worst = Math.max(worst, Math.abs(sc - 1));
        if (sc === 1) continue;
        p.scales[c] *= sc;
        for (let i = 0; i < a.inCh; i++) for (let k = 0; k < a.spatial; k++) a.w[a.at(c, i, k)] /= sc;
        if (a.bias) a.bias[c] /= sc;
        for (let o = 0; o < b.outCh; o++) for (let k = 0; k < b.spatial; k++) b.w[b.at(o, c, k)] *= sc;
      }
    }
    if (worst <= tol) break;
  }
  // Write the rescaled weights as new initializers (the originals may be shared; dead ones are removed).
  const builder = new GraphBuilder(g);
  const written = new Set<Layer>();
  for (const p of pairs) {
    for (const l of [p.a, p.b]) {
      if (written.has(l)) continue;
      written.add(l);
      const wName = builder.fresh(`${l.node.input[1]}_equalized`);
      g.initializer.push(makeTensorProto(wName, Float32Array.from(l.w), l.dims));
      l.node.input[1] = wName;
      if (l.bias) {
        const bName = builder.fresh(`${l.node.input[2]}_equalized`);
        g.initializer.push(makeTensorProto(bName, Float32Array.from(l.bias), l.biasDims!));
        l.node.input[2] = bName;
      }
    }
  }
  removeDeadNodes(g);
  m.validate();
  return {
    model: m,
    pairs: pairs.map((p) => ({
      first: p.a.label,
      second: p.b.label,
      activation: p.activation,
      channels: p.a.outCh,
      scales: p.scales,
    })),
    sweeps,
  };
}

/**
 * The cross-layer equalization pass (stage `graph`, after BN folding): the float model becomes the equalized
 * one; the pairs are recorded.
 *
 * @example
 * ```ts
 * import { equalizePass } from "./equalize.ts";
 * if (equalizePass().stage !== "graph") throw new Error("bad");
 * ```
 */
export function equalizePass(options: EqualizeOptions = {}): PtqPass {
  return {
    name: "equalize",
    stage: "graph",
    run(state: PtqState): Promise<PtqState> {
      return timedPass("equalize", state, () => {
        const r = equalizeCrossLayer(state.model, options);
        return Promise.resolve({
          patch: { model: r.model },
          summary: `${r.pairs.length} pairs equalized in ${r.sweeps} sweeps`,
          details: r.pairs,
        });
      });
    },
    toString: () => `equalize(${JSON.stringify(options)})`,
  };
}

registerPass("equalize", (o) => equalizePass(o as EqualizeOptions));
