/**
 * Outlier channel splitting (Zhao, Hu, Dotzel, De Sa, Zhang, "Improving Neural Network Quantization without
 * Retraining using Outlier Channel Splitting", ICML 2019), following the authors' code (`cornell-zhang/dnn-quant-ocs`,
 * `distiller/quantization/ocs_impl.py` `ocs_wts` and `ocs.py` `OCSParamLayerWrapper`).
 *
 * For a layer `y = W x`, duplicating input channel `c` of `x` and halving column `c` of `W` (the old column and the
 * new one each get half) leaves `y` unchanged while the largest |w| of that column halves. Repeated
 * `ceil(expandRatio * C)` times, each time on the input channel whose max |w| is currently the largest (a channel
 * split before may be split again), this shrinks the weight range the quantization grid must cover. The duplicated
 * activations come from one `Gather` on the channel axis of the layer's input (indices `[0..C-1, c1, c2, ...]`), so
 * the float model computes the same function (up to float32 summation order) and stays valid ONNX.
 *
 * The grid-aware variant (the reference wrapper's final split, the paper's "quantization-aware splitting") splits a
 * weight `w` into `w/2 - s/4` and `w/2 + s/4` (`s` the grid step) instead of `w/2` twice: the two halves then round
 * to codes that add up to the nearest code of `w`, where two equal halves would round the same way and double the
 * rounding error. Its grid comes from the plan's own weight quantizer, fitted (with its calibrator: min-max, MSE,
 * ACIQ, entropy, percentile, i.e. the clipping calibrators) on the weight after a plain split, exactly as the
 * reference wrapper fits its clip threshold on a preliminary non-grid-aware split and then splits grid-aware with that
 * scale. That fitted quantizer is pinned in the state (`weightFits`), so materialization rounds the split weight on
 * the very grid the split was made for (values pushed past the clip by the `s/4` offset saturate, as in the
 * reference's `linear_quantize_clamp`).
 *
 * `ptq(model).weights(q).use(ocs({ expandRatio: 0.02 })).calibrateOn(data)`: a `calibrated`-stage pass (it needs the
 * plan's weight quantizers), run before passes that learn weight values (AdaRound, AdaQuant, bias correction). It
 * rewrites the float model, the plan (the split weight's entry, an entry for the `Gather` output sharing the layer
 * input's parameters, the int32 bias entry's input) and pins the weight fits; calibrated activation parameters stay
 * valid because every float activation is unchanged.
 *
 * Departures from the reference, on purpose:
 * - Layers: every planned Conv (group 1, any spatial rank), Gemm (no transA) and MatMul (2-D weight) by default; the
 *   reference wraps only `nn.Conv2d` (its `nn.Linear` line is commented out) and skips layers with 3 input channels
 *   (the network input). Use `layers` to choose.
 * - Grids: the reference quantizes weights per tensor, symmetric, with a scalar scale; here the plan's quantizer
 *   decides (per-channel grids get one step per output channel in the grid-aware split; an integer zero point keeps
 *   the grid a lattice of multiples of `s`, so the split is the same).
 * - Clip fitting: the reference fits its fixed-ratio clip on the preliminary split but its MSE/ACIQ/entropy clips on
 *   the unsplit weight; here the plan's calibrator always sees the preliminary split (the weight actually quantized).
 * - Ties between channels of equal max |w| go to the highest channel index (what the reference's flipped `argsort`
 *   gives for its stable small-array sort); arithmetic is float64 rounded once to float32 (the reference: float32).
 * - Activation splitting (`act_expand_ratio`) is unused in the reference and not implemented.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { attrInt, GraphBuilder, indexGraph, intAttr, removeDeadNodes } from "../onnx/graph.ts";
import type { NodeProto } from "../onnx/proto.ts";
import { DataType, makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import { UniformWeights } from "../quant/quantizer.ts";
import type { FittedWeights } from "../quant/weight_quantizer.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type PassContext, type PtqPass, type PtqState, registerPass, timedPass } from "./pass.ts";
import { type ActivationEntry, type PlanEntry, QuantPlan, type WeightEntry } from "./plan.ts";
import { matchesNode, type NodeMatcher } from "./policy.ts";

/** Options of {@link ocsSplit}. */
export interface OcsSplitOptions {
  /** Input-channel axis of the weight (the axis whose slices are split). */
  readonly inAxis: number;
  /** Output-channel axis of the weight (indexes `step` when it has more than one value; default 0). */
  readonly outAxis?: number;
  /** Fraction of input channels added (`ceil(expandRatio * C)` splits; default 0.02, the reference's). */
  readonly expandRatio?: number;
  /**
   * Only weights with `|w| > splitThreshold * max(slice)` are split, the others stay in the old channel (default 0,
   * the reference wrapper's value: every nonzero weight of the channel is split).
   */
  readonly splitThreshold?: number;
  /**
   * The quantization grid step, one value or one per output channel: given, the split is grid-aware
   * (`w/2 -+ step/4`); absent, plain halving.
   */
  readonly step?: ArrayLike<number>;
}

/** Result of {@link ocsSplit}. */
export interface OcsSplitResult {
  /** The split weight (float32), `C + splits` input channels. */
  readonly values: Float32Array;
  /** Its dimensions. */
  readonly dims: readonly number[];
  /** For each added channel `C + j`, the original input channel it duplicates (the reference's `in_channels_to_copy`). */
  readonly channels: readonly number[];
}

function checkUnit(x: unknown, what: string): number {
  if (typeof x !== "number" || !(x >= 0 && x <= 1)) {
    throw new QuantlabError("INVALID_ARGUMENT", `${what} must be a number in [0, 1], got ${String(x)}`);
  }
  return x;
}

/**
 * Split the input channels of one weight tensor as `ocs_wts` does (see the module doc): `ceil(expandRatio * C)`
 * times, the input channel with the largest max |w| is halved and its other half appended as a new channel.
 *
 * @example
 * ```ts
 * import { ocsSplit } from "./ocs.ts";
 * // W [O=1, I=3]: channel 1 holds the outlier 8; one split (ceil(0.3 * 3) = 1) halves it.
 * const r = ocsSplit(new Float32Array([1, 8, -2]), [1, 3], { inAxis: 1, expandRatio: 0.3 });
 * if ([...r.values].join() !== "1,4,-2,4" || r.channels.join() !== "1" || r.dims.join() !== "1,4") throw new Error(String(r.values));
 * // Grid-aware with step 1: 8 -> 3.75 and 4.25 (codes 4 + 4 = 8).
 * const g = ocsSplit(new Float32Array([1, 8, -2]), [1, 3], { inAxis: 1, expandRatio: 0.3, step: [1] });
 * if ([...g.values].join() !== "1,3.75,-2,4.25") throw new Error(String(g.values));
 * ```
 */
export function ocsSplit(w: Float32Array, dims: readonly number[], options: OcsSplitOptions): OcsSplitResult {
  const rank = dims.length;
  const { inAxis } = options;
  const outAxis = options.outAxis ?? 0;
  if (!Number.isInteger(inAxis) || inAxis < 0 || inAxis >= rank) {
    throw new QuantlabError("AXIS_OUT_OF_RANGE", `ocsSplit: input axis ${inAxis} for a weight of rank ${rank}`);
  }
  if (!Number.isInteger(outAxis) || outAxis < 0 || outAxis >= rank || (rank > 1 && outAxis === inAxis)) {
    throw new QuantlabError(
      "AXIS_OUT_OF_RANGE",
      `ocsSplit: output axis ${outAxis} (input axis ${inAxis}), rank ${rank}`,
    );
  }
  const size = dims.reduce((a, d) => a * d, 1);
  if (!dims.every((d) => Number.isInteger(d) && d > 0) || size !== w.length) {
    throw new QuantlabError("SHAPE_MISMATCH", `ocsSplit: ${w.length} values for dims [${dims}]`);
  }
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i])) throw new QuantlabError("NON_FINITE", `ocsSplit: weight value ${i} is ${w[i]}`);
  }
  const ratio = checkUnit(options.expandRatio ?? 0.02, "ocsSplit expandRatio");
  const threshold = checkUnit(options.splitThreshold ?? 0, "ocsSplit splitThreshold");
  const C = dims[inAxis];
  const splits = Math.ceil(ratio * C);
  const outer = dims.slice(0, inAxis).reduce((a, d) => a * d, 1);
  const inner = dims.slice(inAxis + 1).reduce((a, d) => a * d, 1);
  const outCh = dims[outAxis];
  let step: Float64Array | undefined;
  if (options.step !== undefined) {
    const s = options.step;
    if (s.length !== 1 && s.length !== outCh) {
      throw new QuantlabError("SHAPE_MISMATCH", `ocsSplit: ${s.length} grid steps for ${outCh} output channels`);
    }
    step = Float64Array.from(s as ArrayLike<number>);
    for (let i = 0; i < step.length; i++) {
      if (!(step[i] > 0) || !Number.isFinite(step[i])) {
        throw new QuantlabError("INVALID_ARGUMENT", `ocsSplit: grid step ${i} is ${step[i]} (must be > 0)`);
      }
    }
  }
  // Output channel of element (outer index a, inner index k) (grid-aware per-channel steps only).
  const outStride = outAxis < inAxis
    ? dims.slice(outAxis + 1, inAxis).reduce((a, d) => a * d, 1)
    : dims.slice(outAxis + 1).reduce((a, d) => a * d, 1);
  const stepAt = (a: number, k: number): number =>
    step!.length === 1 ? step![0] : step![Math.floor((outAxis < inAxis ? a : k) / outStride) % outCh];
  const Cn = C + splits;
  const out = new Float32Array(outer * Cn * inner);
  for (let a = 0; a < outer; a++) out.set(w.subarray(a * C * inner, (a + 1) * C * inner), a * Cn * inner);
  const maxAbs = new Float64Array(Cn);
  const channelMax = (c: number) => {
    let m = 0;
    for (let a = 0; a < outer; a++) {
      const base = (a * Cn + c) * inner;
      for (let k = 0; k < inner; k++) {
        const v = Math.abs(out[base + k]);
        if (v > m) m = v;
      }
    }
    maxAbs[c] = m;
  };
  for (let c = 0; c < C; c++) channelMax(c);
  const channels: number[] = [];
  const origin = new Int32Array(Cn);
  for (let c = 0; c < Cn; c++) origin[c] = c;
  for (let j = 0; j < splits; j++) {
    const cur = C + j;
    let idx = 0;
    for (let c = 1; c < cur; c++) if (maxAbs[c] >= maxAbs[idx]) idx = c;
    // split_value = max(slice) * threshold (signed max, as the reference).
    let sliceMax = -Infinity;
    for (let a = 0; a < outer; a++) {
      const base = (a * Cn + idx) * inner;
      for (let k = 0; k < inner; k++) if (out[base + k] > sliceMax) sliceMax = out[base + k];
    }
    const splitValue = sliceMax * threshold;
    for (let a = 0; a < outer; a++) {
      const src = (a * Cn + idx) * inner, dst = (a * Cn + cur) * inner;
      for (let k = 0; k < inner; k++) {
        const v = out[src + k];
        if (!(Math.abs(v) > splitValue)) {
          out[dst + k] = 0;
          continue;
        }
        const half = v / 2;
        if (step) {
          const quarter = stepAt(a, k) / 4;
          out[src + k] = half - quarter;
          out[dst + k] = half + quarter;
        } else {
          out[src + k] = half;
          out[dst + k] = half;
        }
      }
    }
    channelMax(idx);
    channelMax(cur);
    origin[cur] = origin[idx];
    channels.push(origin[idx]);
  }
  const nd = [...dims];
  nd[inAxis] = Cn;
  return { values: out, dims: nd, channels };
}

/** Options of {@link ocs}. */
export interface OcsOptions {
  /** Fraction of input channels added per layer (default 0.02, the paper's and the reference's default). */
  readonly expandRatio?: number;
  /** Split only weights above this fraction of the channel's max (default 0, the reference wrapper's). */
  readonly splitThreshold?: number;
  /** Grid-aware split on the plan's weight grid (default true, the reference wrapper's final split). */
  readonly gridAware?: boolean;
  /** Split only these layers (plan node labels: names, globs, RegExps or predicates); default every eligible one. */
  readonly layers?: readonly NodeMatcher[];
}

/** What {@link ocs} did to one layer (the pass record's details). */
export interface OcsLayerRecord {
  /** The layer (plan label). */
  readonly layer: string;
  /** The split weight's new initializer. */
  readonly weight: string;
  /** Input channels before the split. */
  readonly channels: number;
  /** Original input channels duplicated, in split order. */
  readonly split: readonly number[];
  /** Largest |w| before and after the split. */
  readonly maxAbsBefore: number;
  /** Largest |w| after the split. */
  readonly maxAbsAfter: number;
  /** Whether the split was grid-aware. */
  readonly gridAware: boolean;
}

interface Target {
  entry: WeightEntry;
  node: NodeProto;
  index: number;
  inAxis: number;
  gatherAxis: number;
}

function maxAbsOf(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) {
    const a = Math.abs(v[i]);
    if (a > m) m = a;
  }
  return m;
}

/**
 * Apply outlier channel splitting to a calibrated state (what the {@link ocs} pass runs): returns the state patch
 * (model, plan, pinned weight fits) and one record per split layer plus the skipped layers with the reason.
 *
 * @example
 * ```ts ignore
 * const { patch, layers, skipped } = ocsState(await ptq(model).weights(q4).calibrateOn(data).state());
 * ```
 */
export function ocsState(state: PtqState, options: OcsOptions = {}): {
  patch: Pick<PtqState, "model" | "plan" | "weightFits">;
  layers: OcsLayerRecord[];
  skipped: { layer: string; reason: string }[];
} {
  const o = checkOcsOptions(options);
  const plan = state.plan;
  if (!plan) throw new QuantlabError("NOT_CALIBRATED", `ocs: ${state.model.source} has no quantization plan yet`);
  const model = state.model.clone();
  const g = model.graph;
  const ix = indexGraph(g);
  const byLabel = new Map<string, { n: NodeProto; i: number }>();
  g.node.forEach((n, i) => byLabel.set(n.name || `${n.opType}#${i}`, { n, i }));
  const skipped: { layer: string; reason: string }[] = [];
  const targets: Target[] = [];
  for (const e of plan.weights) {
    const found = byLabel.get(e.node);
    const reason = (() => {
      if (!found) return "node not found";
      const n = found.n;
      if (o.layers && !o.layers.some((m) => matchesNode(info(n, found.i, e.node), m))) return "not selected";
      if (!["Conv", "Gemm", "MatMul"].includes(n.opType)) return `${n.opType} is not split`;
      const t = ix.initializers.get(e.tensor);
      if (!t || t.dataType !== DataType.FLOAT) return "weight is not a float initializer";
      if ((ix.consumers.get(e.tensor) ?? []).length !== 1) return "weight is shared by several nodes";
      if (state.weightValues.has(e.tensor) || state.weightFits.has(e.tensor)) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `ocs: weight "${e.tensor}" of ${e.node} was already set by an earlier pass; put ocs() before passes that ` +
            `learn weights (AdaRound, AdaQuant, bias correction)`,
        );
      }
      if (n.opType === "Conv" && attrInt(n, "group", 1) !== 1) return "grouped/depthwise Conv is not split";
      if (n.opType !== "Conv" && t.dims.length !== 2) return `${n.opType} weight of rank ${t.dims.length}`;
      if (n.opType === "Gemm" && attrInt(n, "transA", 0) !== 0) return "Gemm with transA";
      return undefined;
    })();
    if (reason) {
      skipped.push({ layer: e.node, reason });
      continue;
    }
    const n = found!.n;
    const transB = n.opType === "Gemm" && attrInt(n, "transB", 0) === 1;
    // Conv W [O, I, k...]: input axis 1, data axis 1. Gemm transB W [N, K]: 1; else W [K, N]: 0. MatMul data: last.
    const inAxis = n.opType === "Conv" || transB ? 1 : 0;
    const gatherAxis = n.opType === "MatMul" ? -1 : 1;
    targets.push({ entry: e, node: n, index: found!.i, inAxis, gatherAxis });
  }
  const b = new GraphBuilder(g);
  const fits = new Map<string, FittedWeights>(state.weightFits);
  const changes = new Map<string, PlanEntry>();
  const added = new Map<string, ActivationEntry>();
  const layers: OcsLayerRecord[] = [];
  const inserts: { before: NodeProto; node: NodeProto }[] = [];
  for (const t of targets) {
    const { entry: e, node: n } = t;
    const wT = ix.initializers.get(e.tensor)!;
    const w = tensorValues(wT) as Float32Array;
    const plain = ocsSplit(w, wT.dims, {
      inAxis: t.inAxis,
      outAxis: e.axis,
      expandRatio: o.expandRatio,
      splitThreshold: o.splitThreshold,
    });
    if (plain.channels.length === 0) {
      skipped.push({ layer: e.node, reason: "expandRatio gives no channel to split" });
      continue;
    }
    const wName = b.fresh(`${e.tensor}_ocs`);
    let values = plain.values;
    let gridAware = false;
    if (o.gridAware) {
      const fit = e.quantizer.fitWeights(new Tensor<"float32">(plain.values, plain.dims, wName), {
        axis: e.axis,
        name: wName,
      });
      const p = fit.affine;
      if (!(fit instanceof UniformWeights) || !p || p.granularity.kind === "group") {
        skipped.push({
          layer: e.node,
          reason: `grid-aware splitting needs a uniform per-tensor/per-channel grid, got ${fit.kind}`,
        });
        continue;
      }
      values = ocsSplit(w, wT.dims, {
        inAxis: t.inAxis,
        outAxis: e.axis,
        expandRatio: o.expandRatio,
        splitThreshold: o.splitThreshold,
        step: p.scale,
      }).values;
      fits.set(wName, new UniformWeights(fit.config, p, new Tensor<"float32">(values, plain.dims, wName), wName));
      gridAware = true;
    }
    g.initializer.push(makeTensorProto(wName, values, plain.dims));
    n.input[1] = wName;
    const C = wT.dims[t.inAxis];
    const idx = new BigInt64Array(C + plain.channels.length);
    for (let c = 0; c < C; c++) idx[c] = BigInt(c);
    plain.channels.forEach((c, j) => idx[C + j] = BigInt(c));
    const idxName = b.initializer(`${wName}_indices`, idx, [idx.length], DataType.INT64);
    const x = n.input[0];
    const xOcs = b.fresh(`${x}_ocs`);
    const gather: NodeProto = {
      input: [x, idxName],
      output: [xOcs],
      name: b.fresh(`${e.node}_ocs_gather`),
      opType: "Gather",
      domain: "",
      attribute: [intAttr("axis", t.gatherAxis)],
    };
    inserts.push({ before: n, node: gather });
    n.input[0] = xOcs;
    changes.set(e.tensor, { ...e, tensor: wName });
    const xe = plan.get(x);
    if (xe?.kind === "activation") {
      added.set(e.tensor, {
        kind: "activation",
        tensor: xOcs,
        role: "activation",
        producer: gather.name,
        opType: "Gather",
        quantizer: xe.quantizer,
        bits: xe.bits,
        sharesWith: xe.sharesWith ?? xe.tensor,
      });
    }
    const bias = n.input[2] ? plan.get(n.input[2]) : undefined;
    if (bias?.kind === "bias" && bias.weight === e.tensor) {
      changes.set(bias.tensor, { ...bias, weight: wName, input: added.has(e.tensor) ? xOcs : bias.input });
    }
    layers.push({
      layer: e.node,
      weight: wName,
      channels: C,
      split: plain.channels,
      maxAbsBefore: maxAbsOf(w),
      maxAbsAfter: maxAbsOf(values),
      gridAware,
    });
  }
  for (const { before, node } of inserts) g.node.splice(g.node.indexOf(before), 0, node);
  removeDeadNodes(g);
  model.validate();
  const entries: PlanEntry[] = [];
  for (const e of plan.entries) {
    const a = added.get(e.tensor);
    if (a) entries.push(a);
    entries.push(changes.get(e.tensor) ?? e);
  }
  const newPlan = layers.length ? new QuantPlan(entries, { model: plan.model, policy: `${plan.policy} + ocs` }) : plan;
  return { patch: { model, plan: newPlan, weightFits: fits }, layers, skipped };
}

function info(n: NodeProto, index: number, label: string) {
  return { name: label, opType: n.opType, index, inputs: n.input, outputs: n.output };
}

function checkOcsOptions(options: OcsOptions): Required<Omit<OcsOptions, "layers">> & Pick<OcsOptions, "layers"> {
  if (typeof options !== "object" || options === null) {
    throw new QuantlabError("INVALID_ARGUMENT", "ocs options must be an object");
  }
  const known = new Set(["expandRatio", "splitThreshold", "gridAware", "layers"]);
  for (const k of Object.keys(options)) {
    if (!known.has(k)) throw new QuantlabError("INVALID_ARGUMENT", `ocs: unknown option "${k}"`);
  }
  const gridAware = options.gridAware ?? true;
  if (typeof gridAware !== "boolean") {
    throw new QuantlabError("INVALID_ARGUMENT", `ocs gridAware must be a boolean, got ${String(gridAware)}`);
  }
  if (options.layers !== undefined && !Array.isArray(options.layers)) {
    throw new QuantlabError("INVALID_ARGUMENT", "ocs layers must be an array of node matchers");
  }
  return {
    expandRatio: checkUnit(options.expandRatio ?? 0.02, "ocs expandRatio"),
    splitThreshold: checkUnit(options.splitThreshold ?? 0, "ocs splitThreshold"),
    gridAware,
    layers: options.layers,
  };
}

/**
 * The outlier-channel-splitting pass (stage `calibrated`; see the module doc). Put it before passes that learn
 * weights. Its record lists every split layer ({@link OcsLayerRecord}) and the skipped ones.
 *
 * @example
 * ```ts
 * import { ocs } from "./ocs.ts";
 * const p = ocs({ expandRatio: 0.05 });
 * if (p.stage !== "calibrated" || !p.toString().includes("0.05")) throw new Error(p.toString());
 * ```
 */
export function ocs(options: OcsOptions = {}): PtqPass {
  const o = checkOcsOptions(options);
  return {
    name: "ocs",
    stage: "calibrated",
    run(state: PtqState, _ctx: PassContext): Promise<PtqState> {
      return timedPass("ocs", state, () => {
        const r = ocsState(state, o);
        const added = r.layers.reduce((a, l) => a + l.split.length, 0);
        return Promise.resolve({
          patch: r.patch,
          summary: `${r.layers.length} layers split (${added} channels added, ratio ${o.expandRatio}${
            o.gridAware ? ", grid-aware" : ""
          }), ${r.skipped.length} skipped`,
          details: { layers: r.layers, skipped: r.skipped },
        });
      });
    },
    toString: () =>
      `ocs(${
        JSON.stringify({
          expandRatio: o.expandRatio,
          splitThreshold: o.splitThreshold,
          gridAware: o.gridAware,
          ...(o.layers ? { layers: o.layers.map(String) } : {}),
        })
      })`,
  };
}

registerPass("ocs", (opts) => ocs((opts ?? {}) as OcsOptions));
