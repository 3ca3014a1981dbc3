/**
 * Trained binary and ternary weights at model level (survey §IV-E): BinaryConnect (deterministic and stochastic
 * sign), XNOR-Net weights, TWN and TTQ, trained end to end through straight-through estimators built from standard
 * ONNX ops and lib/grad's gradient markers, first and last weight layers at 8 bits (as the papers keep them in high
 * precision), exported to an ONNX model whose weights are the binary/ternary values.
 *
 * ```ts ignore
 * const r = await trainExtreme(model, train, { method: "ttq", epochs: 2, test });
 * console.log(r.history.at(-1)!.testAccuracy, r.bitsPerWeight);
 * await Deno.writeFile("ttq.onnx", r.model.toBytes());
 * ```
 *
 * The training graph: the plan of `ptq(model).foldBatchNorm(false).activations(false).firstLast(8)` is
 * materialized by `materializeTrainable` (first and last layers: learnable float weights behind an int8 per-channel
 * `QuantizeLinear -> DequantizeLinear`, straight-through with the clip mask, clamped to their grid after every
 * step); every other weight layer reads its latent float weight `x` through the method's subgraph
 * ({@link emitExtremeWeight}); BatchNormalization stays a separate op in training mode (batch statistics, running
 * statistics updated as PyTorch does, learned scale and shift), as all four papers train.
 *
 * Forward values and gradients (`xs` = `x` behind a stop-gradient marker; `(x - xs) + v` is `v` bit for bit in
 * the forward and passes the gradient to `x` unchanged):
 * - `binaryconnect` (Courbariaux et al. 2015): `w = (x - xs) + sign(xs)`, `sign(0) = +1`; latent weights clipped
 *   to [-1, 1] after every step; no scale (1 bit per weight).
 * - `binaryconnect-stochastic`: `+1` where `u <= x` with `u` uniform in [-1, 1) (probability `hard_sigmoid(x) =
 *   clip((x + 1) / 2, 0, 1)`), else -1; `u` is fed per step from a seeded {@link Prng}. Exported (and evaluated)
 *   with the deterministic sign, the BinaryConnect paper's first test-time option, after re-estimating BatchNorm's
 *   running statistics with it at the end of every epoch (20 batches, plain average): statistics gathered under
 *   random signs do not fit the deterministic network (without this, digits CNN 44 % instead of 97 %).
 * - `xnor` (Rastegari et al. 2016), weights only: `w = alpha * ((c - stop(c)) + sign(xs))`, `c = clip(x, -1, 1)`,
 *   `alpha = mean|x|` per output channel, differentiated (so `dL/dx = g alpha 1{|x| <= 1} + sign(x) / n
 *   sum(g sign(x))`, PyTorch autograd of the same expression); latent clipped to [-1, 1] as XNOR-Net's code does.
 * - `twn` (Li et al. 2016): `delta = 0.7 mean|x|`, `alpha` = mean of `|x|` over `|x| > delta` (per layer, no
 *   gradient: refitted every step), `w = (x - xs) + alpha * t`, `t` in {-1, 0, 1}.
 * - `ttq` (Zhu et al. 2017, czhu95/ternarynet): `delta = 0.05 max|x|` (no gradient), `w = ((x - xs) + t) * m`
 *   with `m = Wp` where `x > delta`, `Wn` where `x < -delta`, 1 elsewhere; so `dL/dx = m g` (TTQ's eq. 7),
 *   `dL/dWp = sum over x > delta of g`, `dL/dWn = -sum over x < -delta of g` (negative weights are `-Wn`; the
 *   paper's eq. 6 drops the sign, its code has it), `Wp = Wn = 1` initially as the reference code.
 *
 * Every latent weight starts as the float weight divided by its layer's max|w| (TTQ's normalisation to [-1, 1];
 * BatchNorm in training mode absorbs the scale), so one learning rate serves all methods.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { ImageDataset } from "../data/batching.ts";
import { normalizationTables } from "../data/images.ts";
import { binary } from "../extreme/binary.ts";
import { FittedTernary, ternary, TernaryWeights } from "../extreme/ternary.ts";
import { applyParams, buildGradientGraph, type GradientGraph } from "../grad/compiler.ts";
import { Emitter } from "../grad/emitter.ts";
import { crossEntropyLoss } from "../grad/losses.ts";
import { markStopGradient } from "../grad/markers.ts";
import { adam, adamw, type Optimizer, sgd } from "../grad/optim.ts";
import { applySchedule, type Schedule } from "../grad/schedule.ts";
import { GradientSession } from "../grad/session.ts";
import { evaluateModel, type Evaluation } from "../grad/train.ts";
import { epochOrder, labelledBatch } from "../grad/train_data.ts";
import { GraphBuilder, indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { DataType, makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { materializeQdq, materializeTrainable, type TrainableModel } from "../ptq/materialize.ts";
import type { PtqState } from "../ptq/pass.ts";
import { ptq } from "../ptq/pipeline.ts";
import type { WeightEntry } from "../ptq/plan.ts";
import type { FittedWeights, WeightQuantizer } from "../quant/weight_quantizer.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { clampToGrid } from "../zeroshot/level2.ts";
import type { OptimizerSpec } from "./qat.ts";

/** The trained extremes. */
export type ExtremeTrainMethod = "binaryconnect" | "binaryconnect-stochastic" | "xnor" | "twn" | "ttq";

/**
 * Every {@link ExtremeTrainMethod}, in the order reports list them.
 *
 * @example
 * ```ts
 * import { EXTREME_METHODS } from "./extremes.ts";
 * if (EXTREME_METHODS.length !== 5 || EXTREME_METHODS[4] !== "ttq") throw new Error(EXTREME_METHODS.join());
 * ```
 */
export const EXTREME_METHODS: readonly ExtremeTrainMethod[] = Object.freeze([
  "binaryconnect",
  "binaryconnect-stochastic",
  "xnor",
  "twn",
  "ttq",
]);

/**
 * Threshold factors of the ternary methods (TWN: times mean|W|; TTQ: times max|W|).
 *
 * @example
 * ```ts
 * import { EXTREME_THRESHOLDS } from "./extremes.ts";
 * if (EXTREME_THRESHOLDS.twn !== 0.7 || EXTREME_THRESHOLDS.ttq !== 0.05) throw new Error("bad");
 * ```
 */
export const EXTREME_THRESHOLDS: Readonly<{ twn: number; ttq: number }> = Object.freeze({ twn: 0.7, ttq: 0.05 });

function checkMethod(m: string): asserts m is ExtremeTrainMethod {
  if (!(EXTREME_METHODS as readonly string[]).includes(m)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `extreme method must be one of ${EXTREME_METHODS.join(", ")}, got "${m}"`,
    );
  }
}

/**
 * The tensor-level weight quantizer of a method for PTQ and export (`ternary().ttq()` fits least-squares `Wp`,
 * `Wn`; training learns them instead).
 *
 * @example
 * ```ts
 * import { extremeQuantizer } from "./extremes.ts";
 * if (extremeQuantizer("xnor").kind !== "binary" || extremeQuantizer("ttq").kind !== "ternary") throw new Error("bad");
 * ```
 */
export function extremeQuantizer(method: ExtremeTrainMethod): WeightQuantizer {
  checkMethod(method);
  switch (method) {
    case "binaryconnect":
    case "binaryconnect-stochastic":
      return binary().binaryConnect();
    case "xnor":
      return binary().xnor(0);
    case "twn":
      return ternary().twn();
    case "ttq":
      return ternary().ttq().threshold(EXTREME_THRESHOLDS.ttq, { of: "max-abs" });
  }
}

/** What {@link emitExtremeWeight} added to a graph. */
export interface ExtremeWeightGraph {
  /** The value holding the quantized weight. */
  readonly output: string;
  /** Learned scale initializers (TTQ: `[Wp, Wn]`), already added to the graph with value 1. */
  readonly scales: readonly string[];
  /** The noise graph input of stochastic BinaryConnect (uniform in [-1, 1), the latent's shape), if any. */
  readonly noise?: string;
}

/**
 * Append the forward/straight-through subgraph of `method` for the latent weight `x` (shape `dims`, output channels
 * along `axis`) to the emitter's graph, writing `out` (see the module doc for the formulas). TTQ's `Wp`, `Wn` are
 * added as scalar initializers `<x>_ttq_wp`, `<x>_ttq_wn` (value 1); stochastic BinaryConnect adds the graph input
 * `<x>_noise`.
 *
 * @example
 * ```ts
 * import { emitExtremeWeight } from "./extremes.ts";
 * import { Emitter } from "../grad/emitter.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const g = emptyModel(17).graph;
 * g.input.push({ name: "w" });
 * const r = emitExtremeWeight(new Emitter(g, 17), "w", [4, 3], 0, "ttq", "w_q");
 * if (r.output !== "w_q" || r.scales.join() !== "w_ttq_wp,w_ttq_wn") throw new Error(r.scales.join());
 * ```
 */
export function emitExtremeWeight(
  e: Emitter,
  x: string,
  dims: readonly number[],
  axis: number,
  method: ExtremeTrainMethod,
  out: string,
): ExtremeWeightGraph {
  checkMethod(method);
  const xs = markStopGradient(e, x);
  const passThrough = e.sub(x, xs); // 0 in the forward, identity gradient to x
  const one = e.scalar(1), minusOne = e.scalar(-1), zero = e.scalar(0);
  const signOf = (v: string) => e.where(e.op("GreaterOrEqual", [v, zero]), one, minusOne);
  const reduceAxes = dims.map((_, k) => k).filter((k) => k !== axis);
  if (method === "binaryconnect") {
    e.opTo("Add", [passThrough, signOf(xs)], [out]);
    return { output: out, scales: [] };
  }
  if (method === "binaryconnect-stochastic") {
    const noise = e.b.fresh(`${x}_noise`);
    e.graph.input.push({
      name: noise,
      type: { tensorType: { elemType: DataType.FLOAT, shape: dims.map((d) => ({ value: d })) } },
    });
    const b = e.where(e.op("LessOrEqual", [noise, xs]), one, minusOne);
    e.opTo("Add", [passThrough, b], [out]);
    return { output: out, scales: [], noise };
  }
  if (method === "xnor") {
    const c = e.op("Clip", [x, minusOne, one]);
    const s = e.add(e.sub(c, markStopGradient(e, c)), signOf(xs));
    const alpha = e.reduceMean(e.op("Abs", [x]), reduceAxes, true);
    e.opTo("Mul", [alpha, s], [out]);
    return { output: out, scales: [] };
  }
  const ax = e.op("Abs", [xs]);
  const delta = method === "twn"
    ? e.mul(e.reduceMean(ax, null, false), e.scalar(EXTREME_THRESHOLDS.twn))
    : e.mul(e.reduceMax(ax, null, false), e.scalar(EXTREME_THRESHOLDS.ttq));
  const pos = e.op("Greater", [xs, delta]), neg = e.op("Less", [xs, e.neg(delta)]);
  const t = e.where(pos, one, e.where(neg, minusOne, zero));
  if (method === "twn") {
    const mask = e.cast(e.op("Greater", [ax, delta]), DataType.FLOAT);
    const alpha = e.div(e.reduceSum(e.mul(ax, mask), null, false), e.op("Max", [e.reduceSum(mask, null, false), one]));
    e.opTo("Add", [passThrough, e.mul(alpha, t)], [out]);
    return { output: out, scales: [] };
  }
  const wp = e.b.initializer(`${x}_ttq_wp`, new Float32Array([1]), []);
  const wn = e.b.initializer(`${x}_ttq_wn`, new Float32Array([1]), []);
  const m = e.where(pos, wp, e.where(neg, wn, one));
  e.opTo("Mul", [e.add(passThrough, t), m], [out]);
  return { output: out, scales: [wp, wn] };
}

/** Options of {@link buildExtremeGraph} and {@link trainExtreme}. */
export interface ExtremeOptions {
  /** The method. */
  readonly method: ExtremeTrainMethod;
  /** Bits of the first and last weight layers (default 8, uniform symmetric per channel); `false`: all extreme. */
  readonly firstLast?: number | false;
  /** BatchNorm in training mode (default, as the papers) or with frozen running statistics (`"eval"`). */
  readonly batchNorm?: "train" | "eval";
  /** ORT binding and threads. */
  readonly session?: SessionOptions;
}

/** One extreme layer of an {@link ExtremeGraph}. */
export interface ExtremeLayer {
  /** Latent weight initializer (the float weight's name). */
  readonly weight: string;
  /** The plan's node label. */
  readonly node: string;
  /** Output-channel axis. */
  readonly axis: number;
  /** Dimensions. */
  readonly dims: readonly number[];
  /** Max|w| of the float weight the latent was divided by. */
  readonly normalizer: number;
  /** TTQ's `[Wp, Wn]` initializer names. */
  readonly scales: readonly string[];
  /** Stochastic BinaryConnect's noise input. */
  readonly noise?: string;
}

/** The trainable graph of a method over a model (see {@link buildExtremeGraph}). */
export interface ExtremeGraph {
  /** The method. */
  readonly method: ExtremeTrainMethod;
  /** The PTQ state of the plan (float model with BatchNorm unfolded; first/last fits). */
  readonly state: PtqState;
  /** `materializeTrainable`'s model before the extreme layers were rewired. */
  readonly trainable: TrainableModel;
  /** The forward training model (latents, scales, noise inputs; BatchNorm in inference form). */
  readonly forward: OnnxModel;
  /** Extreme layers. */
  readonly layers: readonly ExtremeLayer[];
  /** Everything differentiated. */
  readonly learnable: readonly string[];
  /** Latents clipped to [-1, 1] after every step. */
  readonly clipped: readonly string[];
  /** Image input and logits output names. */
  readonly input: string;
  /** Logits output. */
  readonly logits: string;
}

function floatInit(model: OnnxModel, name: string): Float32Array {
  const t = indexGraph(model.graph).initializers.get(name);
  if (!t || t.dataType !== DataType.FLOAT) {
    throw new QuantlabError("MALFORMED_MODEL", `${model.source}: "${name}" is not a float initializer`);
  }
  return tensorValues(t) as Float32Array;
}

/**
 * The forward training model of `options.method` over `model` (see the module doc): plan, first/last layers
 * through `materializeTrainable`, every other weight layer through {@link emitExtremeWeight} on its normalised
 * latent. Differentiate `forward` with `wrt: learnable`.
 *
 * @example
 * ```ts
 * import { buildExtremeGraph } from "./extremes.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const g = await buildExtremeGraph(model, { method: "ttq" });
 * if (g.layers.map((l) => l.weight).join() !== "conv2.weight,conv3.weight") throw new Error(g.layers.join());
 * if (!g.learnable.includes("conv2.weight_ttq_wp") || !g.learnable.includes("bn2.weight")) throw new Error("bad");
 * ```
 */
export async function buildExtremeGraph(model: OnnxModel, options: ExtremeOptions): Promise<ExtremeGraph> {
  const method = options.method;
  checkMethod(method);
  const firstLast = options.firstLast ?? 8;
  let p = ptq(model).foldBatchNorm(false).activations(false).input(false).weights(extremeQuantizer(method));
  if (firstLast !== false) p = p.firstLast(firstLast);
  if (options.session) p = p.session(options.session);
  const state = await p.state();
  const trainable = materializeTrainable(state, { weights: "ste", activations: "ste", biases: true });
  const fwd = trainable.model.clone();
  const g = fwd.graph;
  const extremeEntries = state.plan!.weights.filter((e: WeightEntry) => e.quantizer.kind !== "uniform");
  if (extremeEntries.length === 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `${model.source}: no weight layer left for ${method} (firstLast)`);
  }
  const b = new GraphBuilder(g);
  const emitter = new Emitter(g, fwd.opset(), b);
  const before = g.node.length;
  const layers: ExtremeLayer[] = [];
  for (const e of extremeEntries) {
    const fq = `${e.tensor}_fake_quantized`;
    const k = g.initializer.findIndex((t) => t.name === fq);
    if (k < 0) throw new QuantlabError("MALFORMED_MODEL", `${model.source}: weight "${e.tensor}" was not materialized`);
    g.initializer.splice(k, 1);
    const w = floatInit(state.model, e.tensor);
    let mx = 0;
    for (let i = 0; i < w.length; i++) mx = Math.max(mx, Math.abs(w[i]));
    if (!(mx > 0)) throw new QuantlabError("INVALID_ARGUMENT", `weight "${e.tensor}" of ${e.node} is all zeros`);
    const latent = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) latent[i] = w[i] / mx;
    const dims = indexGraph(state.model.graph).initializers.get(e.tensor)!.dims;
    const kk = g.initializer.findIndex((t) => t.name === e.tensor);
    if (kk >= 0) g.initializer.splice(kk, 1);
    g.initializer.push(makeTensorProto(e.tensor, latent, dims));
    const r = emitExtremeWeight(emitter, e.tensor, dims, e.axis, method, fq);
    layers.push({
      weight: e.tensor,
      node: e.node,
      axis: e.axis,
      dims,
      normalizer: mx,
      scales: r.scales,
      noise: r.noise,
    });
  }
  // The weight subgraphs read only initializers and noise inputs: move them before their consumers.
  g.node = [...g.node.slice(before), ...g.node.slice(0, before)];
  fwd.validate();
  const bn = g.node.filter((n) => n.opType === "BatchNormalization").flatMap((n) => [n.input[1], n.input[2]]);
  const learnable = [
    ...trainable.learnable,
    ...layers.flatMap((l) => [l.weight, ...l.scales]),
    ...bn.filter((x) => !trainable.learnable.includes(x)),
  ];
  const clipped = method === "twn" || method === "ttq" ? [] : layers.map((l) => l.weight);
  const input = [...indexGraph(g).inputs].find((x) => !layers.some((l) => l.noise === x))!;
  return {
    method,
    state,
    trainable,
    forward: fwd,
    layers,
    learnable,
    clipped,
    input,
    logits: g.output[0].name,
  };
}

/** The forward model with stochastic noise inputs fixed to 0 (the deterministic sign): what evaluation runs. */
function deterministic(g: ExtremeGraph, m: OnnxModel): OnnxModel {
  const noise = g.layers.filter((l) => l.noise);
  if (noise.length === 0) return m;
  const out = m.clone();
  for (const l of noise) {
    out.graph.input = out.graph.input.filter((i) => i.name !== l.noise);
    out.graph.initializer.push(makeTensorProto(l.noise!, new Float32Array(l.dims.reduce((a, d) => a * d, 1)), l.dims));
  }
  return out;
}

/** One epoch of {@link trainExtreme}. */
export interface ExtremeEpoch {
  /** Epoch (from 1). */
  readonly epoch: number;
  /** Steps taken so far. */
  readonly steps: number;
  /** Mean training loss over the epoch's steps. */
  readonly loss: number;
  /** Test accuracy of the training graph's forward (BN from running statistics), if a test set was given. */
  readonly testAccuracy?: number;
  /** Wall seconds of the epoch. */
  readonly seconds: number;
}

/** Training options of {@link trainExtreme}. */
export interface ExtremeTrainOptions extends ExtremeOptions {
  /** Epochs (default 1). */
  readonly epochs?: number;
  /** Stop after this many steps in all (default: no limit). */
  readonly maxSteps?: number;
  /** Batch size (default 64, at least 2). */
  readonly batchSize?: number;
  /** Seed of the epoch orders and of the stochastic noise (default 0). */
  readonly seed?: number;
  /** Optimizer (default Adam, lr 1e-3). */
  readonly optimizer?: OptimizerSpec;
  /** Learning-rate schedule from lib/grad (its `unit` says per epoch or per step). */
  readonly schedule?: Schedule;
  /** Evaluated after every epoch. */
  readonly test?: ImageDataset;
  /** Called after every step with its loss. */
  readonly onStep?: (step: number, loss: number) => void;
  /** Called after every epoch. */
  readonly onEpoch?: (e: ExtremeEpoch) => void;
}

/** The result of {@link trainExtreme} or {@link extremePtq}. */
export interface ExtremeTrainResult {
  /** The method. */
  readonly method: ExtremeTrainMethod;
  /** The exported model: binary/ternary weights as float values, first/last int8 QDQ, BatchNorm in float. */
  readonly model: OnnxModel;
  /** The training graph's forward with the trained parameters (noise at 0); `undefined` for PTQ. */
  readonly trained?: OnnxModel;
  /** The export state (pinned fits of every weight). */
  readonly state: PtqState;
  /** Storage bits per weight over all planned weights (codes plus float32 scales). */
  readonly bitsPerWeight: number;
  /** Bits per weight over the extreme layers only. */
  readonly extremeBitsPerWeight: number;
  /** Per-epoch records. */
  readonly history: readonly ExtremeEpoch[];
  /** Loss per step. */
  readonly losses: Float64Array;
  /**
   * Per extreme layer: TTQ's learned `[Wp, Wn]` or the fitted scale(s) (their mean when there are more than 8, e.g.
   * XNOR's per-channel scales; none for BinaryConnect), and the fraction of zero weights.
   */
  readonly layers: readonly { weight: string; scales: number[]; sparsity: number }[];
  /** Wall seconds. */
  readonly seconds: number;
}

/** Batches over which stochastic BinaryConnect's BatchNorm statistics are re-estimated after each epoch. */
const BN_REESTIMATE_BATCHES = 20;

function makeOptimizer(s: OptimizerSpec): Optimizer {
  if (s.kind === "sgd") {
    return sgd({ lr: s.lr, momentum: s.momentum, nesterov: s.nesterov, weightDecay: s.weightDecay });
  }
  if (s.kind === "adam") return adam({ lr: s.lr, weightDecay: s.weightDecay });
  if (s.kind === "adamw") return adamw({ lr: s.lr, weightDecay: s.weightDecay });
  throw new QuantlabError(
    "INVALID_ARGUMENT",
    `extreme training optimizer must be "sgd", "adam" or "adamw", got "${(s as { kind: unknown }).kind}"`,
  );
}

/** The fitted extreme quantizer of a latent (TTQ: with the learned scales). */
function extremeFit(
  method: ExtremeTrainMethod,
  latent: Tensor<"float32">,
  axis: number,
  name: string,
  ttq?: { wp: number; wn: number },
): FittedWeights {
  if (method !== "ttq" || !ttq) return extremeQuantizer(method).fitWeights(latent, { axis, name });
  let mx = 0;
  for (let i = 0; i < latent.data.length; i++) mx = Math.max(mx, Math.abs(latent.data[i]));
  const config = ternary().ttq().threshold(EXTREME_THRESHOLDS.ttq, { of: "max-abs" }).config;
  const f = new FittedTernary(
    config,
    { kind: "tensor" },
    new Float32Array([Math.fround(Math.fround(EXTREME_THRESHOLDS.ttq) * mx)]),
    new Float32Array([ttq.wp]),
    new Float32Array([ttq.wn]),
    latent.size,
  );
  return new TernaryWeights(f, latent, name);
}

function exportResult(
  g: ExtremeGraph,
  params: ReadonlyMap<string, Float32Array>,
  running: ReadonlyMap<string, Float32Array>,
  extra: Pick<ExtremeTrainResult, "history" | "losses" | "seconds" | "trained">,
): ExtremeTrainResult {
  const state = g.state;
  const floatNames = new Set(indexGraph(state.model.graph).initializers.keys());
  const values = new Map<string, Float32Array>();
  for (const [k, v] of [...params, ...running]) if (floatNames.has(k)) values.set(k, v);
  const model = applyParams(state.model, values);
  const inits = indexGraph(model.graph).initializers;
  const weightFits = new Map<string, FittedWeights>();
  for (const [w, f] of g.trainable.qdq.fitted) if (f.affine) weightFits.set(w, f);
  const layers: { weight: string; scales: number[]; sparsity: number }[] = [];
  let bits = 0, count = 0;
  for (const l of g.layers) {
    const t = inits.get(l.weight)!;
    const latent = new Tensor<"float32">(tensorValues(t) as Float32Array, t.dims, l.weight);
    const ttq = l.scales.length ? { wp: params.get(l.scales[0])![0], wn: params.get(l.scales[1])![0] } : undefined;
    const f = extremeFit(g.method, latent, l.axis, l.weight, ttq);
    weightFits.set(l.weight, f);
    const v = f.fakeQuantize(latent).data;
    let zeros = 0;
    for (let i = 0; i < v.length; i++) if (v[i] === 0) zeros++;
    const enc = f.encode(latent).tables;
    const scales = ttq ? [ttq.wp, ttq.wn] : Object.values(enc).flatMap((a) => Array.from(a as Float32Array));
    layers.push({ weight: l.weight, scales: scales.length > 8 ? [mean(scales)] : scales, sparsity: zeros / v.length });
    bits += f.bitsPerWeight() * v.length;
    count += v.length;
  }
  const exportState: PtqState = { ...state, model, weightFits, weightValues: new Map() };
  const q = materializeQdq(exportState);
  return {
    method: g.method,
    model: q.model,
    state: exportState,
    bitsPerWeight: q.bitsPerWeight,
    extremeBitsPerWeight: bits / count,
    layers,
    ...extra,
  };
}

function mean(a: number[]): number {
  return a.reduce((s, x) => s + x, 0) / a.length;
}

/**
 * Train `method` on `trainSet` (see the module doc): seeded epoch orders, BatchNorm running statistics updated
 * every step, latents clipped where the method says, first/last weights clamped to their int8 grid, then export.
 *
 * @example
 * ```ts
 * import { trainExtreme } from "./extremes.ts";
 * import { subset } from "../data/batching.ts";
 * import { loadDigits } from "../data/digits.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const data = subset(await loadDigits(), 0, 128);
 * const r = await trainExtreme(model, data, { method: "twn", maxSteps: 2, batchSize: 32, test: data,
 *   session: { backend: "web", threads: 1 } });
 * if (r.losses.length !== 2 || !(r.bitsPerWeight < 8)) throw new Error(String(r.bitsPerWeight));
 * ```
 */
export async function trainExtreme(
  model: OnnxModel,
  trainSet: ImageDataset,
  options: ExtremeTrainOptions,
): Promise<ExtremeTrainResult> {
  const t0 = performance.now();
  const epochs = options.epochs ?? 1, bs = Math.min(options.batchSize ?? 64, trainSet.count), seed = options.seed ?? 0;
  if (!Number.isInteger(epochs) || epochs < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `trainExtreme epochs must be a positive integer, got ${epochs}`);
  }
  if (!Number.isInteger(bs) || bs < 2) {
    throw new QuantlabError("INVALID_ARGUMENT", `trainExtreme needs batches of at least 2 (got ${bs})`);
  }
  const maxSteps = options.maxSteps ?? Infinity;
  const session = options.session;
  const g = await buildExtremeGraph(model, options);
  const tables = normalizationTables(trainSet);
  const rng = new Prng(seed);
  const noiseOf = (l: ExtremeLayer) => {
    const v = new Float32Array(l.dims.reduce((a, d) => a * d, 1));
    for (let i = 0; i < v.length; i++) v[i] = 2 * rng.nextFloat() - 1;
    return new Tensor<"float32">(v, l.dims);
  };
  const noisy = g.layers.filter((l) => l.noise);
  const feeds = (x: Tensor<"float32">, labels: Tensor<"int32">) => {
    const f: Record<string, Tensor> = { [g.input]: x, labels };
    for (const l of noisy) f[l.noise!] = noiseOf(l);
    return f;
  };
  const sample = labelledBatch(trainSet, epochOrder(trainSet.count, seed, 0).subarray(0, bs), tables);
  const graph: GradientGraph = await buildGradientGraph(g.forward, {
    loss: crossEntropyLoss(g.logits, "labels"),
    wrt: [...g.learnable],
    feeds: feeds(sample.x, sample.labels),
    batchNorm: options.batchNorm ?? "train",
    fixedInputs: noisy.map((l) => l.noise!),
    session,
  });
  const gs = await GradientSession.create(graph, session);
  const params = graph.initialParams();
  const inits = indexGraph(g.forward.graph).initializers;
  const running = new Map<string, Float32Array>();
  for (const s of graph.batchNorm) {
    for (const n of [s.runningMean, s.runningVar]) {
      running.set(n, (tensorValues(inits.get(n)!) as Float32Array).slice());
    }
  }
  const opt = makeOptimizer(options.optimizer ?? { kind: "adam", lr: 1e-3 });
  const history: ExtremeEpoch[] = [];
  const losses: number[] = [];
  const evalModel = () => deterministic(g, applyParams(g.forward, new Map([...params, ...running])));
  /**
   * Stochastic BinaryConnect: the running statistics were gathered under random signs, whose outputs spread
   * differently from the deterministic signs evaluated and exported; re-estimate them (plain average over up to
   * `BN_REESTIMATE_BATCHES` batches, noise 0 = deterministic sign, no update of the weights).
   */
  const reestimate = async (order: Uint32Array) => {
    const sums = new Map<string, Float64Array>();
    let batches = 0;
    for (let s = 0; s < BN_REESTIMATE_BATCHES && (s + 1) * bs <= trainSet.count; s++) {
      const batch = labelledBatch(trainSet, order.subarray(s * bs, (s + 1) * bs), tables);
      const f: Record<string, Tensor> = { [g.input]: batch.x, labels: batch.labels };
      for (const l of noisy) {
        f[l.noise!] = new Tensor<"float32">(new Float32Array(l.dims.reduce((a, d) => a * d, 1)), l.dims);
      }
      const r = await gs.run(f, params);
      for (const st of r.batchNorm) {
        const unbias = st.count > 1 ? st.count / (st.count - 1) : 1;
        for (const [name, v, k] of [[st.runningMean, st.mean, 1], [st.runningVar, st.var, unbias]] as const) {
          let acc = sums.get(name);
          if (!acc) sums.set(name, acc = new Float64Array(v.length));
          for (let c = 0; c < v.length; c++) acc[c] += v[c] * k;
        }
      }
      batches++;
    }
    for (const [name, acc] of sums) {
      const rv = running.get(name)!;
      for (let c = 0; c < rv.length; c++) rv[c] = acc[c] / batches;
    }
  };
  let step = 0;
  try {
    for (let epoch = 0; epoch < epochs && step < maxSteps; epoch++) {
      const te = performance.now();
      const order = epochOrder(trainSet.count, seed, epoch);
      if (options.schedule?.unit === "epoch") applySchedule(opt, options.schedule, epoch);
      let sum = 0, n = 0;
      for (let s = 0; s * bs < trainSet.count && step < maxSteps; s++) {
        const idx = order.subarray(s * bs, Math.min(trainSet.count, (s + 1) * bs));
        if (idx.length < 2) continue;
        const batch = labelledBatch(trainSet, idx, tables);
        if (options.schedule?.unit === "step") applySchedule(opt, options.schedule, step);
        const r = await gs.run(feeds(batch.x, batch.labels), params);
        if (!Number.isFinite(r.loss)) {
          throw new QuantlabError("NON_FINITE", `trainExtreme (${g.method}) step ${step}: the loss is ${r.loss}`);
        }
        for (const st of r.batchNorm) {
          const m = 1 - st.momentum, unbias = st.count > 1 ? st.count / (st.count - 1) : 1;
          const rm = running.get(st.runningMean)!, rv = running.get(st.runningVar)!;
          for (let c = 0; c < rm.length; c++) {
            rm[c] = (1 - m) * rm[c] + m * st.mean[c];
            rv[c] = (1 - m) * rv[c] + m * st.var[c] * unbias;
          }
        }
        opt.step(params, r.grads);
        clipLatents(params, g.clipped);
        for (const [w, q] of g.trainable.weights) clampToGrid(params.get(w)!, q.dims, q.axis, q.params);
        losses.push(r.loss);
        options.onStep?.(step, r.loss);
        sum += r.loss;
        n++;
        step++;
      }
      if (noisy.length) await reestimate(order);
      const rec: ExtremeEpoch = {
        epoch: epoch + 1,
        steps: step,
        loss: sum / Math.max(1, n),
        testAccuracy: options.test
          ? (await evaluateModel(evalModel(), options.test, { input: g.input, logits: g.logits, session })).accuracy
          : undefined,
        seconds: (performance.now() - te) / 1000,
      };
      history.push(rec);
      options.onEpoch?.(rec);
    }
  } finally {
    await gs.release();
  }
  return exportResult(g, params, running, {
    history,
    losses: Float64Array.from(losses),
    trained: evalModel(),
    seconds: (performance.now() - t0) / 1000,
  });
}

/**
 * Clip every latent named in `names` to [-1, 1] in place (BinaryConnect's and XNOR-Net's rule after each update).
 *
 * @example
 * ```ts
 * import { clipLatents } from "./extremes.ts";
 * const p = new Map([["w", new Float32Array([-3, 0.5, 2])], ["b", new Float32Array([5])]]);
 * clipLatents(p, ["w"]);
 * if (p.get("w")!.join() !== "-1,0.5,1" || p.get("b")![0] !== 5) throw new Error("bad");
 * ```
 */
export function clipLatents(params: ReadonlyMap<string, Float32Array>, names: readonly string[]): void {
  for (const name of names) {
    const v = params.get(name);
    if (!v) throw new QuantlabError("INVALID_ARGUMENT", `clipLatents: no parameter "${name}"`);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      v[i] = x > 1 ? 1 : x < -1 ? -1 : x;
    }
  }
}

/**
 * Post-training binarization/ternarization with the same plan and export as {@link trainExtreme} (first/last int8,
 * BatchNorm unfolded with the float model's statistics), the method's quantizer fitted on the float weights in
 * their own units (TTQ: least-squares `Wp`, `Wn`): the "no training" baseline.
 *
 * @example
 * ```ts
 * import { extremePtq } from "./extremes.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const r = await extremePtq(model, { method: "xnor" });
 * if (r.layers.length !== 2 || r.history.length !== 0) throw new Error("bad");
 * ```
 */
export async function extremePtq(model: OnnxModel, options: ExtremeOptions): Promise<ExtremeTrainResult> {
  const t0 = performance.now();
  const g = await buildExtremeGraph(model, options);
  const params = new Map<string, Float32Array>();
  const floatW = indexGraph(g.state.model.graph).initializers;
  for (const l of g.layers) params.set(l.weight, (tensorValues(floatW.get(l.weight)!) as Float32Array).slice());
  // TTQ without training: its least-squares scales (ternary().ttq()) in the float weights' units.
  const ptqGraph: ExtremeGraph = { ...g, method: g.method, layers: g.layers.map((l) => ({ ...l, scales: [] })) };
  const r = exportResult(ptqGraph, params, new Map(), { history: [], losses: new Float64Array(0), seconds: 0 });
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Test accuracy of an {@link ExtremeTrainResult}'s export (and of its training forward, when trained) on `set`.
 *
 * @example
 * ```ts
 * import { evaluateExtreme, extremePtq } from "./extremes.ts";
 * import { subset } from "../data/batching.ts";
 * import { loadDigits } from "../data/digits.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const r = await extremePtq(model, { method: "twn" });
 * const { exported, trained } = await evaluateExtreme(r, subset(await loadDigits(), 0, 64), { backend: "web" });
 * if (exported.count !== 64 || trained !== undefined) throw new Error("bad");
 * ```
 */
export async function evaluateExtreme(
  r: ExtremeTrainResult,
  set: ImageDataset,
  session?: SessionOptions,
): Promise<{ exported: Evaluation; trained?: Evaluation }> {
  const input = r.model.graph.input[0].name, logits = r.model.graph.output[0].name;
  const exported = await evaluateModel(r.model, set, { input, logits, session });
  const trained = r.trained ? await evaluateModel(r.trained, set, { input, logits, session }) : undefined;
  return { exported, trained };
}
