/**
 * AdaRound as a post-training pass (Nagel, Amjad, van Baalen, Louizos, Blankevoort 2020, "Up or Down? Adaptive
 * Rounding for Post-Training Quantization"), following Qualcomm AIMET's implementation (`quic/aimet`,
 * `aimet_torch/adaround/`: `adaround_weight.py`, `adaround_optimizer.py`, `adaround_loss.py`,
 * `adaround_tensor_quantizer.py`, `activation_sampler.py`; constants from `aimet_common/defs.py`).
 *
 * `ptq(model).weights(q4).use(adaRound({ preset: "small" })).calibrateOn(data)`: every planned Conv (grouped and
 * depthwise included), Gemm and MatMul with a uniform affine weight quantizer (per tensor or per channel) is
 * rounded in graph order. Per layer: the quantizer is fitted as the plan says and then fixed (AIMET computes the
 * parameter encodings first, `_compute_param_encodings`); the layer's inputs are cached from the model quantized so
 * far and its targets from the float model, after the layer's following activation (Relu, or Clip as ReLU6) when
 * its output feeds exactly one; V is optimised by Adam (lib/adaround/optimize_layer.ts) on the objective in
 * lib/adaround/layer_graph.ts; hard rounding `V >= 0` gives the codes. The result goes into the state as
 * `weightValues` (the on-grid values `(q - zp) s`) plus `weightFits` (the quantizer fitted on the float weights,
 * whose scale and zero point AdaRound used), so materialization re-encodes exactly those codes.
 *
 * Defaults are AIMET's: reg 0.01, beta 20 -> 2 (cosine), warm start 0.2, Adam lr 1e-3 (torch defaults betas
 * (0.9, 0.999), eps 1e-8), batches of 32 drawn from cached activations of up to 2,000 examples (AIMET caches
 * `ceil(2000 / batch)` loader batches), 10,000 iterations when the lowest planned weight width is >= 8 bits and
 * 15,000 below. `preset: "small"` is a cheaper setting for small models such as the Fashion-MNIST ResNet-8 (2,000
 * iterations on 512 cached examples, everything else as AIMET); it is not AIMET's.
 *
 * Departures from AIMET, on purpose:
 * - Inputs: AIMET disables every activation quantizer during AdaRound, so its "quantized model" quantizes only the
 *   weights (earlier layers AdaRounded). That is our default `inputs: "quantized-weights"`; `"qdq"` takes inputs
 *   from the full QDQ model so far (activations quantized too, BRECQ/QDrop style) and `"float"` from the float model.
 * - Sampling: AIMET draws `randperm(n)[:32]` with torch's global RNG; we draw without replacement from a seeded
 *   PRNG (`seed`), so runs are reproducible.
 * - ConvTranspose (AIMET supports it) is not rounded; MatMul (AIMET has no such module) is, with the reconstruction
 *   sum over its last axis.
 * - The reconstruction MSE before/after is measured on the first 256 cached examples (AIMET: its first batch).
 * - Bias: AIMET's layer keeps its float bias during the optimisation; so does ours (the int32 bias of the QDQ model
 *   is quantized at materialization, as for round-to-nearest).
 *
 * Implementation choice, measured (Fashion-MNIST ResNet-8 layer1.conv1, 16->16 3x3 conv on 28x28, batch 32, 2 shared
 * cores): the per-layer objective runs as a lib/grad gradient graph on ONNX Runtime's native kernels, about 6.5 ms
 * per Adam iteration, forward and backward (2,000 iterations in 13 s including the activation caching), whereas a
 * plain typed-array 3x3 conv loop in JS takes about 300 ms for the forward pass alone of the same batch (58 M MACs;
 * no SIMD, one thread). ORT's im2col + GEMM kernels are vectorised and threaded; the elementwise work on V (rectified
 * sigmoid, regulariser) is negligible beside the conv either way. So the graph it is; Adam, the batch draws and the
 * gathering of cached activations stay in typed arrays.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { InputFeeds } from "../data/reader.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { NodeProto } from "../onnx/proto.ts";
import { makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import { limitedBatches } from "../ptq/calibrate_pass.ts";
import { fitPlannedWeights, materializeQdq } from "../ptq/materialize.ts";
import { type PassContext, type PtqPass, type PtqState, registerPass, timedPass } from "../ptq/pass.ts";
import type { FittedWeights } from "../quant/weight_quantizer.ts";
import { Tensor } from "../tensor/tensor.ts";
import { cacheActivations } from "./capture.ts";
import { followingActivation, reconstructionTarget, type RoundingLayer } from "./layer_graph.ts";
import { type LayerRoundingResult, type LossPoint, roundLayer } from "./optimize_layer.ts";

/** Where a layer's inputs come from while it is rounded (see the module doc). */
export type AdaRoundInputs = "quantized-weights" | "qdq" | "float";

/** Options of {@link adaRound}; unset ones come from the preset. */
export interface AdaRoundOptions {
  /** `"aimet"` (default: AIMET's defaults) or `"small"` (2,000 iterations on 512 examples; not AIMET's). */
  readonly preset?: "aimet" | "small";
  /** Adam iterations per layer (AIMET: 10,000 at >= 8 weight bits, 15,000 below). */
  readonly iterations?: number;
  /** Examples per iteration (default 32). */
  readonly batchSize?: number;
  /** Calibration examples whose activations are cached (AIMET: 2,000; small: 512). */
  readonly samples?: number;
  /** Weight of the rounding regulariser (default 0.01). */
  readonly regWeight?: number;
  /** Beta annealed from the first to the second value (default [20, 2]). */
  readonly betaRange?: readonly [number, number];
  /** Fraction of iterations without the rounding term (default 0.2). */
  readonly warmStart?: number;
  /** Adam learning rate (default 1e-3). */
  readonly lr?: number;
  /** Seed of the batch draws (default 0; layer k uses seed + k). */
  readonly seed?: number;
  /** Where inputs come from (default `"quantized-weights"`, AIMET's). */
  readonly inputs?: AdaRoundInputs;
  /** Round only the layers (plan labels) this accepts (default all). */
  readonly layers?: (label: string) => boolean;
  /** Loss-curve spacing in iterations (default iterations / 100, at least 1). */
  readonly curveEvery?: number;
}

/** Per-layer record in the pass details. */
export interface AdaRoundLayerRecord {
  /** Plan label of the layer. */
  readonly layer: string;
  /** Its weight tensor. */
  readonly weight: string;
  /** Weight bits. */
  readonly bits: number;
  /** Weight elements. */
  readonly elements: number;
  /** Following activation folded into the loss. */
  readonly activation: string;
  /** Reconstruction MSE with round-to-nearest. */
  readonly mseNearest: number;
  /** Reconstruction MSE with AdaRound's hard rounding. */
  readonly mseAdaRound: number;
  /** Reconstruction MSE with the final soft rounding. */
  readonly mseSoft: number;
  /** Fraction of weights rounded away from nearest. */
  readonly flipped: number;
  /** Fraction of h(V) strictly between 0 and 1 at the end. */
  readonly undecided: number;
  /** Loss curve. */
  readonly curve: readonly LossPoint[];
  /** Wall time, seconds. */
  readonly seconds: number;
}

/** The pass details (`state.records[k].details` of an AdaRound pass). */
export interface AdaRoundDetails {
  /** The resolved hyperparameters. */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Rounded layers in graph order. */
  readonly layers: readonly AdaRoundLayerRecord[];
  /** Planned weights not rounded, with the reason. */
  readonly skipped: readonly { readonly weight: string; readonly reason: string }[];
}

interface Resolved {
  preset: "aimet" | "small";
  iterations: number | undefined;
  batchSize: number;
  samples: number;
  regWeight: number;
  betaRange: readonly [number, number];
  warmStart: number;
  lr: number;
  seed: number;
  inputs: AdaRoundInputs;
  curveEvery: number | undefined;
}

function resolve(o: AdaRoundOptions): Resolved {
  const preset = o.preset ?? "aimet";
  if (preset !== "aimet" && preset !== "small") {
    throw new QuantlabError("INVALID_ARGUMENT", `adaRound preset must be "aimet" or "small", got "${preset}"`);
  }
  const r: Resolved = {
    preset,
    iterations: o.iterations ?? (preset === "small" ? 2000 : undefined),
    batchSize: o.batchSize ?? 32,
    samples: o.samples ?? (preset === "small" ? 512 : 2000),
    regWeight: o.regWeight ?? 0.01,
    betaRange: o.betaRange ?? [20, 2],
    warmStart: o.warmStart ?? 0.2,
    lr: o.lr ?? 1e-3,
    seed: o.seed ?? 0,
    inputs: o.inputs ?? "quantized-weights",
    curveEvery: o.curveEvery,
  };
  const posInt = (k: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new QuantlabError("INVALID_ARGUMENT", `adaRound ${k} must be a positive integer, got ${v}`);
    }
  };
  posInt("iterations", r.iterations);
  posInt("batchSize", r.batchSize);
  posInt("samples", r.samples);
  posInt("curveEvery", r.curveEvery);
  if (r.samples < 2) throw new QuantlabError("INVALID_ARGUMENT", `adaRound samples must be >= 2, got ${r.samples}`);
  const finite = (k: string, v: number, ok: boolean) => {
    if (!Number.isFinite(v) || !ok) throw new QuantlabError("INVALID_ARGUMENT", `adaRound ${k} is out of range: ${v}`);
  };
  finite("regWeight", r.regWeight, r.regWeight >= 0);
  finite("warmStart", r.warmStart, r.warmStart >= 0 && r.warmStart < 1);
  finite("lr", r.lr, r.lr > 0);
  finite("seed", r.seed, Number.isInteger(r.seed) && r.seed >= 0);
  if (r.betaRange.length !== 2 || !r.betaRange.every((b) => Number.isFinite(b) && b > 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", `adaRound betaRange must be two numbers > 0, got [${r.betaRange}]`);
  }
  if (!["quantized-weights", "qdq", "float"].includes(r.inputs)) {
    throw new QuantlabError("INVALID_ARGUMENT", `adaRound inputs must be quantized-weights, qdq or float`);
  }
  return r;
}

/**
 * Round every planned Conv/Gemm/MatMul weight of a calibrated state with AdaRound (see the module doc). Returns the
 * new `weightValues` and `weightFits` entries and the per-layer records.
 *
 * @example
 * ```ts ignore
 * const { values, fits, details } = await adaRoundState(state, batches, { preset: "small" }, ctx);
 * ```
 */
export async function adaRoundState(
  state: PtqState,
  batches: readonly InputFeeds[],
  options: AdaRoundOptions,
  ctx: Pick<PassContext, "session" | "progress">,
): Promise<{ values: Map<string, Float32Array>; fits: Map<string, FittedWeights>; details: AdaRoundDetails }> {
  const o = resolve(options);
  const plan = state.plan;
  if (!plan) throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: AdaRound needs a plan`);
  const float = state.model;
  const g = float.graph;
  const inits = indexGraph(g).initializers;
  const labelOf = new Map(g.node.map((n, i) => [n.name || `${n.opType}#${i}`, { n, i }]));
  const fitted = fitPlannedWeights(state);
  const skipped: { weight: string; reason: string }[] = [];
  const targets: { entry: (typeof plan.weights)[number]; node: NodeProto; index: number; fit: FittedWeights }[] = [];
  for (const e of plan.weights) {
    const found = labelOf.get(e.node);
    const f = fitted.get(e.tensor)!;
    const reason = !found
      ? "node not found"
      : !["Conv", "Gemm", "MatMul"].includes(e.opType)
      ? `${e.opType} is not rounded`
      : !f.affine || f.affine.granularity.kind === "group"
      ? `${f.kind} quantizer${f.affine ? " per group" : ""} (AdaRound needs a uniform per-tensor/per-channel grid)`
      : options.layers && !options.layers(e.node)
      ? "excluded by the layers option"
      : state.weightFits.has(e.tensor) && state.weightValues.has(e.tensor)
      ? "already rounded by an earlier pass"
      : found.n.opType === "Gemm" && found.n.attribute.some((a) => a.name === "transA" && Number(a.i) !== 0)
      ? "Gemm with transA"
      : undefined;
    if (reason) skipped.push({ weight: e.tensor, reason });
    else targets.push({ entry: e, node: found!.n, index: found!.i, fit: f });
  }
  targets.sort((a, b) => a.index - b.index);
  const bits = plan.weights.map((e) => e.bits);
  const iterations = o.iterations ?? (Math.min(...bits) < 8 ? 15000 : 10000);
  const curveEvery = o.curveEvery ?? Math.max(1, Math.floor(iterations / 100));
  const values = new Map(state.weightValues);
  const fits = new Map(state.weightFits);
  const floatValue = (t: string) => state.weightValues.get(t) ?? (tensorValues(inits.get(t)!) as Float32Array);
  /** Float model with every planned weight at its current quantized values (AIMET's weight-only quant-sim). */
  const weightQuantized = (): OnnxModel => {
    const m = float.clone();
    const ix = indexGraph(m.graph);
    for (const e of plan.weights) {
      const t = ix.initializers.get(e.tensor);
      if (!t) continue;
      const v = values.get(e.tensor) ?? floatValue(e.tensor);
      const f = fits.get(e.tensor) ?? fitted.get(e.tensor)!;
      const q = f.fakeQuantize(new Tensor<"float32">(v, t.dims, e.tensor)).data;
      const k = m.graph.initializer.indexOf(t);
      m.graph.initializer[k] = makeTensorProto(e.tensor, q, t.dims);
    }
    return m;
  };
  const records: AdaRoundLayerRecord[] = [];
  for (let k = 0; k < targets.length; k++) {
    const { entry, node, fit } = targets[k];
    ctx.progress(`AdaRound ${entry.node} (${k + 1}/${targets.length})`, k / targets.length);
    const act = followingActivation(float, node);
    let x;
    if (o.inputs === "qdq") {
      const q = materializeQdq({ ...state, weightFits: fits, weightValues: values });
      const qn = q.model.graph.node.find((n) => n.name === entry.node);
      if (!qn) throw new QuantlabError("MALFORMED_MODEL", `AdaRound: ${entry.node} is missing from the QDQ model`);
      x = await cacheActivations(q.model, qn.input[0], batches, ctx.session);
    } else {
      const src = o.inputs === "float" ? float : weightQuantized();
      x = await cacheActivations(src, node.input[0], batches, ctx.session);
    }
    const t = await cacheActivations(float, reconstructionTarget(float, node, act), batches, ctx.session);
    const wT = inits.get(entry.tensor)!;
    const bias = node.opType !== "MatMul" && node.input[2] ? inits.get(node.input[2]) : undefined;
    const layer: RoundingLayer = {
      label: entry.node,
      node,
      weight: floatValue(entry.tensor),
      dims: wT.dims,
      axis: entry.axis,
      params: fit.affine!,
      bias: bias ? { values: tensorValues(bias) as Float32Array, dims: bias.dims } : undefined,
      activation: act,
    };
    const r: LayerRoundingResult = await roundLayer(layer, x, t, {
      iterations,
      batchSize: o.batchSize,
      regWeight: o.regWeight,
      betaRange: o.betaRange,
      warmStart: o.warmStart,
      lr: o.lr,
      seed: o.seed + k,
      curveEvery,
      evalCount: 256,
      session: ctx.session,
    });
    values.set(entry.tensor, r.values);
    fits.set(entry.tensor, fit);
    records.push({
      layer: entry.node,
      weight: entry.tensor,
      bits: entry.bits,
      elements: r.elements,
      activation: act ? act.opType : "none",
      mseNearest: r.mseNearest,
      mseAdaRound: r.mseAdaRound,
      mseSoft: r.mseSoft,
      flipped: r.flipped,
      undecided: r.undecided,
      curve: r.curve,
      seconds: r.seconds,
    });
  }
  ctx.progress("AdaRound done", 1);
  const settings = { ...o, iterations, curveEvery, evalCount: 256 };
  return { values, fits, details: { settings, layers: records, skipped } };
}

/**
 * The AdaRound pass (stage `calibrated`; see the module doc for what it does and where it departs from AIMET).
 *
 * @example
 * ```ts
 * import { adaRound } from "./adaround_pass.ts";
 * const p = adaRound({ preset: "small", seed: 1 });
 * if (p.stage !== "calibrated" || !p.toString().includes("small")) throw new Error(p.toString());
 * ```
 */
export function adaRound(options: AdaRoundOptions = {}): PtqPass {
  const o = resolve(options);
  const text = `adaRound(preset=${o.preset}, iterations=${o.iterations ?? "auto"}, batch=${o.batchSize}, ` +
    `samples=${o.samples}, reg=${o.regWeight}, beta=${o.betaRange[0]}->${o.betaRange[1]}, warm=${o.warmStart}, ` +
    `lr=${o.lr}, seed=${o.seed}, inputs=${o.inputs})`;
  return {
    name: "adaRound",
    stage: "calibrated",
    run(state: PtqState, ctx: PassContext): Promise<PtqState> {
      return timedPass("adaRound", state, async () => {
        if (!ctx.data) {
          throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: AdaRound needs calibrateOn(data)`);
        }
        const inputs = [...indexGraph(state.model.graph).inputs];
        const batches: InputFeeds[] = [];
        for await (const f of limitedBatches(ctx.data, inputs, o.samples, state.model.source)) batches.push(f);
        if (!batches.length) throw new QuantlabError("EMPTY_TENSOR", `${state.source.source}: AdaRound data is empty`);
        const r = await adaRoundState(state, batches, options, ctx);
        const n = r.details.layers.length;
        const before = r.details.layers.reduce((a, l) => a + l.mseNearest, 0);
        const after = r.details.layers.reduce((a, l) => a + l.mseAdaRound, 0);
        return {
          patch: { weightValues: r.values, weightFits: r.fits },
          summary: `${n} layers rounded (${r.details.settings.iterations} iterations each); summed reconstruction ` +
            `MSE ${before.toPrecision(3)} -> ${after.toPrecision(3)}`,
          details: r.details,
        };
      });
    },
    toString: () => text,
  };
}

registerPass("adaRound", (o) => adaRound(o as AdaRoundOptions));
