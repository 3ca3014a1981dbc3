/**
 * Blocked (NCHWc) convolutions for weights computed at run time.
 *
 * ONNX Runtime's CPU provider runs a Conv on MLAS's blocked "NCHWc" kernels (direct convolution over channel
 * blocks of 8 with AVX2, 16 with AVX-512) only when its NCHWc transformer can reorder the weight once, at load time:
 * the weight must be a constant initializer (`onnxruntime/core/optimizer/nchwc_transformer.cc`: "Require that the
 * weights tensor be static"). In a training graph the weights are graph inputs (parameters fed every step) or are
 * computed from them (fake quantization, the flipped kernel of an input gradient), so every such Conv falls back to
 * im2col + SGEMM. The blocked kernels themselves (`com.microsoft.nchwc` Conv, ReorderInput, ReorderOutput) accept
 * any weight already in MLAS's `OIHWBiBo` layout, so this module lets the graph reorder the weight itself:
 * `Reshape [O/B, B, I/B, B, kh, kw] -> Transpose [0, 2, 4, 5, 3, 1] -> Reshape [O, I, kh, kw]`, with the input
 * reordered to blocks before the conv and the output back after it.
 *
 * Measured (`benchmarks/train_session_ab.ts`, onnxruntime-node 1.30, 2 threads, AVX-512): the ResNet-8 training step
 * at batch 128 goes from 152 to 122 ms with its 12 qualifying convs rewritten (8 forward, 4 input-gradient); outputs
 * agree with Conv to float rounding (a different summation order).
 *
 * Which block size the running CPU uses is not exposed by ONNX Runtime; {@link nchwcProbe} builds the small probe
 * that {@link createSession} runs both ways to find it (see `SessionOptions.blockedConvolutions`).
 *
 * @module
 */
import { attrInt, attrInts, attrString, getAttribute, intAttr, intsAttr } from "./graph.ts";
import type { ModelProto, NodeProto, TensorProto } from "./proto.ts";
import { emptyModel } from "./proto.ts";
import { makeTensorProto, tensorValues } from "./tensor_data.ts";

/**
 * The operator domain of ONNX Runtime's blocked kernels (ReorderInput, Conv, ReorderOutput).
 *
 * @example
 * ```ts
 * import { NCHWC_DOMAIN } from "./nchwc.ts";
 * if (!NCHWC_DOMAIN.startsWith("com.microsoft")) throw new Error("bad");
 * ```
 */
export const NCHWC_DOMAIN = "com.microsoft.nchwc";

/** Ops whose output has the shape of their first input. */
const SAME_SHAPE = new Set([
  "Identity",
  "Relu",
  "Neg",
  "Abs",
  "Sign",
  "Round",
  "Floor",
  "Ceil",
  "Clip",
  "Cast",
  "Sqrt",
  "Reciprocal",
  "Exp",
  "Log",
  "Tanh",
  "Sigmoid",
  "QuantizeLinear",
  "DequantizeLinear",
]);
/** Elementwise ops with multidirectional broadcasting. */
const BROADCASTING = new Set(["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Where"]);

function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const n = Math.max(a.length, b.length), out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.push(Math.max(x, y));
  }
  return out;
}

/**
 * What the rewrite needs to know about a graph's values: static shapes that follow from fully static graph inputs,
 * initializers and Constant nodes through shape-preserving, broadcasting, Transpose, constant-shape Reshape and 2-D
 * MatMul nodes (conservative: anything else is unknown), and which values depend on a graph input that is not an
 * initializer ("dynamic").
 */
function analyse(graph: ModelProto["graph"]): { shapes: Map<string, number[]>; dynamic: Set<string> } {
  const shapes = new Map<string, number[]>(), consts = new Map<string, TensorProto>(), dynamic = new Set<string>();
  const inits = new Set<string>();
  for (const t of graph.initializer) {
    inits.add(t.name);
    shapes.set(t.name, t.dims.map(Number));
    consts.set(t.name, t);
  }
  for (const v of graph.input) {
    if (inits.has(v.name)) continue;
    dynamic.add(v.name);
    const dims = v.type?.tensorType?.shape;
    if (dims && dims.every((d) => typeof d.value === "number" && d.value >= 0)) {
      shapes.set(v.name, dims.map((d) => d.value as number));
    }
  }
  for (const n of graph.node) {
    if (n.input.some((x) => dynamic.has(x))) { for (const o of n.output) dynamic.add(o); }
    if (n.domain !== "" && n.domain !== "ai.onnx") continue;
    if (n.opType === "Constant") {
      const v = getAttribute(n, "value");
      if (v?.t) {
        shapes.set(n.output[0], v.t.dims.map(Number));
        consts.set(n.output[0], v.t);
      }
      continue;
    }
    const s0 = shapes.get(n.input[0]);
    let out: number[] | undefined;
    if (SAME_SHAPE.has(n.opType)) out = s0 && [...s0];
    else if (BROADCASTING.has(n.opType)) {
      const ins = (n.opType === "Where" ? n.input : n.input.slice(0, 2)).map((x) => shapes.get(x));
      out = [];
      for (const s of ins) out = s && out ? broadcastShapes(out, s) : undefined;
    } else if (n.opType === "Transpose" && s0) {
      const perm = attrInts(n, "perm", s0.map((_, i) => s0.length - 1 - i));
      out = perm.map((p) => s0[p]);
    } else if (n.opType === "Reshape" && s0 && consts.has(n.input[1])) {
      const allowZero = attrInt(n, "allowzero", 0);
      const want = [...(tensorValues(consts.get(n.input[1])!) as BigInt64Array)].map(Number);
      const total = s0.reduce((a, b) => a * b, 1);
      const dims = want.map((d, i) => (d === 0 && !allowZero ? s0[i] : d));
      const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      out = dims.map((d) => (d === -1 ? total / known : d));
      if (!out.every((d) => Number.isInteger(d) && d >= 0) || out.reduce((a, b) => a * b, 1) !== total) {
        out = undefined;
      }
    } else if (n.opType === "MatMul") {
      const s1 = shapes.get(n.input[1]);
      if (s0 && s1 && s0.length === 2 && s1.length === 2 && s0[1] === s1[0]) out = [s0[0], s1[1]];
    }
    if (out) shapes.set(n.output[0], out);
  }
  return { shapes, dynamic };
}

/** What {@link blockedConvolutions} did. */
export interface BlockedConvolutions {
  /** The rewritten model: a new `ModelProto` sharing unchanged parts with the input, or the input when nothing qualified. */
  readonly proto: ModelProto;
  /** Names (or first outputs) of the Conv nodes now running on the blocked kernels, in graph order. */
  readonly rewritten: readonly string[];
}

/**
 * Run every qualifying Conv of `proto`'s main graph on ONNX Runtime's blocked kernels with channel block `block`
 * (8 or 16: MLAS's for the running CPU, see the module doc). A Conv qualifies when its weight is computed at run
 * time (it depends on a graph input that is not an initializer: constant weights are left to ONNX Runtime's own
 * NCHWc transformer, and QDQ weights to its integer kernels), its weight shape `[O, I, kh, kw]` is statically known,
 * it is 2-D with `group = 1` and explicit (or no) padding, and `O` and `I` are multiples of `block`; `filter` can
 * narrow that further. `proto` is not modified. The result needs onnxruntime-node (the `com.microsoft.nchwc` ops of
 * its CPU provider); a wrong `block` gives wrong numbers, so take it from the probe.
 *
 * @example
 * ```ts
 * import { blockedConvolutions, NCHWC_DOMAIN } from "./nchwc.ts";
 * import { emptyModel } from "./proto.ts";
 * const p = emptyModel(17);
 * const f32 = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: dims.map((value) => ({ value })) } } });
 * p.graph.input.push(f32("x", [1, 16, 8, 8]), f32("w", [16, 16, 3, 3]));
 * p.graph.output.push(f32("y", [1, 16, 8, 8]));
 * p.graph.node.push({ name: "conv", opType: "Conv", domain: "", input: ["x", "w"], output: ["y"], attribute: [] });
 * const r = blockedConvolutions(p, 16);
 * if (r.rewritten.join() !== "conv" || !r.proto.graph.node.some((n) => n.domain === NCHWC_DOMAIN)) throw new Error("bad");
 * if (p.graph.node.length !== 1) throw new Error("input modified");
 * ```
 */
export function blockedConvolutions(
  proto: ModelProto,
  block: number,
  filter: (node: NodeProto) => boolean = () => true,
): BlockedConvolutions {
  const g = proto.graph;
  const { shapes, dynamic } = analyse(g);
  const taken = new Set<string>([...g.initializer.map((t) => t.name), ...g.input.map((v) => v.name)]);
  for (const n of g.node) for (const o of n.output) taken.add(o);
  let k = 0;
  const fresh = (base: string) => {
    let name: string;
    do name = `${base}__nchwc${k++}`; while (taken.has(name));
    taken.add(name);
    return name;
  };
  const nodes: NodeProto[] = [], inits: TensorProto[] = [], rewritten: string[] = [];
  const blockedInputs = new Map<string, string>();
  for (const n of g.node) {
    const isConv = n.opType === "Conv" && (n.domain === "" || n.domain === "ai.onnx");
    const ws = isConv && dynamic.has(n.input[1]) && filter(n) ? shapes.get(n.input[1]) : undefined;
    const group = attrInt(n, "group", 1);
    const explicitPads = attrString(n, "auto_pad", "NOTSET") === "NOTSET";
    if (!ws || ws.length !== 4 || group !== 1 || !explicitPads || ws[0] % block || ws[1] % block) {
      nodes.push(n);
      continue;
    }
    const [o, i, kh, kw] = ws;
    const base = n.name || n.output[0];
    const s6 = fresh(`${base}_blocked_shape`), s4 = fresh(`${base}_weight_shape`);
    inits.push(
      makeTensorProto(s6, BigInt64Array.from([o / block, block, i / block, block, kh, kw].map(BigInt)), [6]),
      makeTensorProto(s4, BigInt64Array.from([o, i, kh, kw].map(BigInt)), [4]),
    );
    const w6 = fresh(`${base}_w6`), wt = fresh(`${base}_wt`), wr = fresh(`${base}_wblocked`);
    const yr = fresh(`${base}_yblocked`);
    // Convs reading the same input (a residual block's conv and its downsampling shortcut) share one reorder.
    let xr = blockedInputs.get(n.input[0]);
    const reorderInput = xr === undefined;
    if (xr === undefined) blockedInputs.set(n.input[0], xr = fresh(`${base}_xblocked`));
    const node = (opType: string, domain: string, input: string[], output: string[], attribute = n.attribute) => ({
      name: fresh(base),
      opType,
      domain,
      input,
      output,
      attribute,
    });
    nodes.push(
      node("Reshape", "", [n.input[1], s6], [w6], []),
      node("Transpose", "", [w6], [wt], [intsAttr("perm", [0, 2, 4, 5, 3, 1])]),
      node("Reshape", "", [wt, s4], [wr], []),
      ...(reorderInput ? [node("ReorderInput", NCHWC_DOMAIN, [n.input[0]], [xr], [])] : []),
      node(
        "Conv",
        NCHWC_DOMAIN,
        [xr, wr, ...(n.input[2] ? [n.input[2]] : [])],
        [yr],
        [
          ...n.attribute.filter((a) => a.name !== "kernel_shape" && a.name !== "auto_pad"),
          intsAttr("kernel_shape", [kh, kw]),
        ],
      ),
      node("ReorderOutput", NCHWC_DOMAIN, [yr], [n.output[0]], [intAttr("channels", o)]),
    );
    rewritten.push(base);
  }
  if (!rewritten.length) return { proto, rewritten };
  const opsetImport = proto.opsetImport.some((s) => s.domain === NCHWC_DOMAIN)
    ? proto.opsetImport
    : [...proto.opsetImport, { domain: NCHWC_DOMAIN, version: 1 }];
  return {
    proto: { ...proto, opsetImport, graph: { ...g, node: nodes, initializer: [...g.initializer, ...inits] } },
    rewritten,
  };
}

/** The probe {@link createSession} runs to find the running CPU's NCHWc block size. */
export interface NchwcProbe {
  /** One 16 -> 16 channel 3x3 Conv with its weight as a graph input `w`, input `x`, output `y`. */
  readonly model: ModelProto;
  /** Input values, `[2, 16, 6, 6]`, deterministic. */
  readonly x: Float32Array;
  /** Weight values, `[16, 16, 3, 3]`, deterministic. */
  readonly w: Float32Array;
  /** Dims of `x`. */
  readonly xDims: readonly number[];
  /** Dims of `w`. */
  readonly wDims: readonly number[];
  /** Block sizes to try, most likely first. */
  readonly blocks: readonly number[];
}

/**
 * A small Conv for finding the NCHWc block size: run `model` and `blockedConvolutions(model, b).proto` for each
 * `b` in `blocks`; the block whose output matches the plain Conv is the running CPU's (MLAS uses 16 with AVX-512,
 * 8 with AVX2; a wrong block reads the weight in the wrong layout and gives different numbers).
 *
 * @example
 * ```ts
 * import { nchwcProbe } from "./nchwc.ts";
 * const p = nchwcProbe();
 * if (p.x.length !== 2 * 16 * 36 || p.blocks.join() !== "16,8") throw new Error("bad");
 * ```
 */
export function nchwcProbe(): NchwcProbe {
  const p = emptyModel(17);
  const xDims = [2, 16, 6, 6], wDims = [16, 16, 3, 3];
  const f32 = (name: string, dims: number[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: dims.map((value) => ({ value })) } },
  });
  p.graph.input.push(f32("x", xDims), f32("w", wDims));
  p.graph.output.push(f32("y", xDims));
  p.graph.node.push({
    name: "probe",
    opType: "Conv",
    domain: "",
    input: ["x", "w"],
    output: ["y"],
    attribute: [intsAttr("pads", [1, 1, 1, 1])],
  });
  // Small integers: every product and sum is exact in float32, so the right layout matches bit for bit.
  const fill = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => ((i * seed + 7) % 11) - 5);
  return { model: p, x: fill(2 * 16 * 36, 5), w: fill(16 * 16 * 9, 3), xDims, wDims, blocks: [16, 8] };
}
