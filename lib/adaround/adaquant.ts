/**
 * AdaQuant as a post-training pass (Hubara, Nahshan, Hanani, Banner, Soudry 2021, "Accurate Post Training
 * Quantization With Small Calibration Sets"), following the authors' code (`itayhubara/CalibTIP`,
 * `utils/adaquant.py` `adaquant` and `optimize_layer`, `models/modules/quantize.py` `quantize_with_grad`,
 * `QuantThUpdate`, `QConv2d`; the run the README's "advanced pipeline" makes, `scripts/adaquant.sh`).
 *
 * Per layer (every planned Conv, Gemm and MatMul with a uniform per-tensor or per-channel weight quantizer, in
 * graph order), jointly for the output MSE `mean((act(y_q) - act(y))^2)` (`F.mse_loss`, the activation applied to
 * both sides as CalibTIP's `relu=True`): the float weights, the bias, the weight quantizer's range (and minimum when
 * asymmetric) and the input quantizer's range and minimum. Parametrisation as CalibTIP's `quantize_with_grad`:
 *
 *   `s = clamp(R, 1e-6, 1e5) / (qmax - qmin)`, `z = clamp(round(qmin - m / s), qmin, qmax)`,
 *   `q(x) = (round(clamp(x / s + z, qmin, qmax)) - z) s`
 *
 * with `round` straight-through (CalibTIP's `Round` STE): the step gradient is LSQ's rule without LSQ's gradient
 * scale (`round(x/s) - x/s` inside the grid, the clamped code outside, plus the zero-point path). A symmetric
 * quantizer keeps its zero point (no `m`). Adam (torch defaults) with CalibTIP's learning rates: weights 1e-5, bias
 * 1e-3, weight quantizer 1e-3, input quantizer 1e-1; 1,000 iterations of 50 examples drawn without replacement
 * (`randperm(n)[:50]`); MSE before and after on the first 100 cached examples (CalibTIP: a random 100).
 *
 * Inputs: `"float"` (default) caches every layer's input from the float model, as CalibTIP's default parallel mode
 * (used by its `advanced_pipeline.sh`); `"qdq"` caches it from the QDQ model quantized so far (earlier layers
 * optimised, activations quantized), CalibTIP's `--seq_adaquant`. Targets always come from the float model.
 *
 * Results go into the state: the learned weights as `weightValues`, the weight quantizer with the learned scales
 * (and zero points) pinned in `weightFits` (materialization rounds the learned weights to nearest on that grid),
 * the learned bias into the float model's bias initializer (the int32 bias follows at materialization), and the
 * input quantizer's scale and zero point into `activationParams`.
 *
 * Departures from CalibTIP, on purpose:
 * - Grids: the plan's quantizers (e.g. symmetric signed per-channel weights, uint8 asymmetric activations) instead of
 *   CalibTIP's always-asymmetric unsigned ones; a symmetric grid learns only its range.
 * - The bias is not fake-quantized during the optimisation (CalibTIP quantizes it to `wbits + abits` bits with its
 *   own min-max; our QDQ bias is int32 at `s_w s_x`, practically exact).
 * - One activation quantizer per tensor (QDQ): when several layers read the same tensor (a residual block's input
 *   feeding conv1 and the downsample conv), the first layer in graph order learns its input quantizer and the later
 *   ones keep it fixed; a quantizer shared with another tensor (`sharesWith`) is not learned either.
 * - Seeded sampling (`seed`; layer k uses `seed + k`) instead of torch's global RNG.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { InputFeeds } from "../data/reader.ts";
import { buildGradientGraph, type GradientGraph } from "../grad/compiler.ts";
import { customLoss } from "../grad/losses.ts";
import { adam, type Optimizer } from "../grad/optim.ts";
import { GradientSession } from "../grad/session.ts";
import { indexGraph, nodeLabel } from "../onnx/graph.ts";
import { OnnxModel } from "../onnx/model.ts";
import { type AttributeProto, emptyModel, type NodeProto } from "../onnx/proto.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { DataType, makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import { limitedBatches } from "../ptq/calibrate_pass.ts";
import { fitPlannedWeights, materializeQdq } from "../ptq/materialize.ts";
import { type PassContext, type PtqPass, type PtqState, registerPass, timedPass } from "../ptq/pass.ts";
import type { QuantParams } from "../quant/params.ts";
import { UniformWeights } from "../quant/quantizer.ts";
import type { FittedWeights } from "../quant/weight_quantizer.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { cacheActivations } from "./capture.ts";
import { type FollowingActivation, followingActivation, reconstructionTarget } from "./layer_graph.ts";
import type { CachedActivations, LossPoint } from "./optimize_layer.ts";

/** One layer for AdaQuant: the float node, its parameters and its two quantizers' initial parameters. */
export interface AdaQuantLayer {
  /** Label for messages and reports. */
  readonly label: string;
  /** The float node (op type and attributes are copied). */
  readonly node: NodeProto;
  /** Float weights (initial values). */
  readonly weight: Float32Array;
  /** Weight dims. */
  readonly dims: readonly number[];
  /** Output-channel axis of the weight (the weight quantizer's axis when per channel). */
  readonly axis: number;
  /** Initial weight quantizer parameters (per tensor or per channel along `axis`). */
  readonly weightParams: QuantParams;
  /** Float bias, if any. */
  readonly bias?: { readonly values: Float32Array; readonly dims: readonly number[] };
  /** Input quantizer parameters (per tensor), if the layer's input is quantized. */
  readonly inputParams?: QuantParams;
  /** Whether the input quantizer's parameters are learned (default true when `inputParams` is set). */
  readonly learnInput?: boolean;
  /** The activation applied to both sides of the loss. */
  readonly activation?: FollowingActivation;
}

/**
 * Names of the graph input, target and parameters of the per-layer AdaQuant graph.
 *
 * @example
 * ```ts
 * import { ADAQUANT_NAMES } from "./adaquant.ts";
 * if (ADAQUANT_NAMES.weightRange !== "adaquant_w_range") throw new Error("bad");
 * ```
 */
export const ADAQUANT_NAMES = {
  input: "adaquant_x",
  target: "adaquant_target",
  weight: "adaquant_w",
  bias: "adaquant_b",
  weightRange: "adaquant_w_range",
  weightMin: "adaquant_w_min",
  inputRange: "adaquant_x_range",
  inputMin: "adaquant_x_min",
} as const;

/**
 * Initial `(R, m)` of a quantizer in CalibTIP's parametrisation: `R = s (qmax - qmin)`, `m = (qmin - zp) s` (so
 * `round(qmin - m / s)` gives back `zp`).
 *
 * @example
 * ```ts
 * import { rangeAndMin } from "./adaquant.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const p = quantizer().uint(8).asymmetric().fit([-1, 3]).params;
 * const { range, min } = rangeAndMin(p);
 * if (Math.abs(range[0] - 4) > 1e-5 || Math.abs(min[0] + 1) > 0.02) throw new Error(`${range} ${min}`);
 * ```
 */
export function rangeAndMin(p: QuantParams): { range: Float32Array; min: Float32Array } {
  const n = p.scale.length, span = p.qmax - p.qmin;
  const range = new Float32Array(n), min = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    range[c] = p.scale[c] * span;
    min[c] = (p.qmin - p.zeroPoint[c]) * p.scale[c];
  }
  return { range, min };
}

/**
 * The quantizer parameters after learning `R` (and `m` when asymmetric): `s = clamp(R, 1e-6, 1e5) / (qmax - qmin)`,
 * `zp = clamp(round(qmin - m / s), qmin, qmax)` (symmetric grids keep their zero points).
 *
 * @example
 * ```ts
 * import { paramsFromRange, rangeAndMin } from "./adaquant.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const p = quantizer().uint(8).asymmetric().fit([-1, 3]).params;
 * const { range, min } = rangeAndMin(p);
 * const q = paramsFromRange(p, range, min);
 * if (Math.abs(q.scale[0] - p.scale[0]) > 1e-8 || q.zeroPoint[0] !== p.zeroPoint[0]) throw new Error("bad");
 * ```
 */
export function paramsFromRange(p: QuantParams, range: Float32Array, min?: Float32Array): QuantParams {
  const n = p.scale.length, span = p.qmax - p.qmin;
  const scale = new Float32Array(n), zeroPoint = Int32Array.from(p.zeroPoint);
  for (let c = 0; c < n; c++) {
    const r = Math.min(1e5, Math.max(1e-6, range[c]));
    scale[c] = Math.fround(Math.fround(r) / span);
    if (!p.symmetric && min) {
      const z = Math.round(Math.fround(p.qmin - Math.fround(min[c] / scale[c])));
      zeroPoint[c] = Math.min(p.qmax, Math.max(p.qmin, z));
    }
  }
  return { ...p, scale, zeroPoint };
}

/**
 * The forward model of one AdaQuant layer: input and weight fake-quantized as in the module doc, the layer, its
 * activation. Parameters are initializers named by {@link ADAQUANT_NAMES}.
 *
 * @example
 * ```ts
 * import { adaQuantForwardModel } from "./adaquant.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const weight = new Float32Array([0.3, -0.2, 0.7, 0.1]);
 * const weightParams = quantizer().int(4).symmetric().perChannel().fit(weight, [2, 2]).params;
 * const node = { input: ["x", "w"], output: ["y"], name: "fc", opType: "Gemm", domain: "", attribute: [] };
 * const m = adaQuantForwardModel({ label: "fc", node, weight, dims: [2, 2], axis: 0, weightParams }, [-1, 2]);
 * if (!m.graph.node.some((n) => n.opType === "Round")) throw new Error("bad");
 * ```
 */
export function adaQuantForwardModel(layer: AdaQuantLayer, inputDims: readonly number[]): OnnxModel {
  const { node, dims, axis } = layer;
  if (!["Conv", "Gemm", "MatMul"].includes(node.opType)) {
    throw new QuantlabError("UNSUPPORTED", `AdaQuant: ${layer.label} is a ${node.opType} (Conv, Gemm, MatMul only)`);
  }
  if (node.opType === "Gemm" && node.attribute.some((a) => a.name === "transA" && Number(a.i) !== 0)) {
    throw new QuantlabError("UNSUPPORTED", `AdaQuant: ${layer.label} uses transA`);
  }
  const N = ADAQUANT_NAMES;
  const proto = emptyModel(17);
  const g = proto.graph;
  g.name = `adaquant_${layer.label}`;
  g.input.push({
    name: N.input,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: inputDims.map((d, k) => (k === 0 || d < 0 ? { param: "N" } : { value: d })),
      },
    },
  });
  const nd = (opType: string, input: string[], output: string, attribute: AttributeProto[] = []): string => {
    g.node.push({ input, output: [output], name: output, opType, domain: "", attribute });
    return output;
  };
  const c = (name: string, v: number) => {
    g.initializer.push(makeTensorProto(name, new Float32Array([v]), []));
    return name;
  };
  c("aq_lo", 1e-6);
  c("aq_hi", 1e5);
  /** CalibTIP's quantize_with_grad on `x` with range `r`, minimum `m` (or fixed zero point), grid of `p`. */
  const fakeQuant = (prefix: string, x: string, p: QuantParams, r: string, m: string | undefined, bd: number[]) => {
    c(`${prefix}_qmin`, p.qmin);
    c(`${prefix}_qmax`, p.qmax);
    c(`${prefix}_span`, p.qmax - p.qmin);
    const s = nd("Div", [nd("Clip", [r, "aq_lo", "aq_hi"], `${prefix}_r_clipped`), `${prefix}_span`], `${prefix}_s`);
    let z: string;
    if (m !== undefined) {
      const raw = nd("Sub", [`${prefix}_qmin`, nd("Div", [m, s], `${prefix}_m_over_s`)], `${prefix}_z_raw`);
      z = nd("Clip", [nd("Round", [raw], `${prefix}_z_round`), `${prefix}_qmin`, `${prefix}_qmax`], `${prefix}_z`);
    } else {
      z = `${prefix}_z`;
      g.initializer.push(makeTensorProto(z, Float32Array.from(p.zeroPoint), bd));
    }
    const v = nd("Add", [nd("Div", [x, s], `${prefix}_x_over_s`), z], `${prefix}_shifted`);
    const code = nd("Round", [nd("Clip", [v, `${prefix}_qmin`, `${prefix}_qmax`], `${prefix}_clipped`)], `${prefix}_q`);
    return nd("Mul", [nd("Sub", [code, z], `${prefix}_centred`), s], `${prefix}_fq`);
  };
  const wp = layer.weightParams;
  const perChannel = wp.scale.length > 1;
  const bdims = perChannel ? dims.map((d, k) => (k === axis ? d : 1)) : [];
  const w0 = rangeAndMin(wp);
  g.initializer.push(makeTensorProto(N.weight, layer.weight, dims), makeTensorProto(N.weightRange, w0.range, bdims));
  if (!wp.symmetric) g.initializer.push(makeTensorProto(N.weightMin, w0.min, bdims));
  const wq = fakeQuant("aq_wq", N.weight, wp, N.weightRange, wp.symmetric ? undefined : N.weightMin, bdims);
  let x: string = N.input;
  const ip = layer.inputParams;
  if (ip) {
    if (ip.scale.length !== 1) {
      throw new QuantlabError("UNSUPPORTED", `AdaQuant: ${layer.label}'s input quantizer must be per tensor`);
    }
    const x0 = rangeAndMin(ip);
    g.initializer.push(makeTensorProto(N.inputRange, x0.range, []));
    if (!ip.symmetric) g.initializer.push(makeTensorProto(N.inputMin, x0.min, []));
    x = fakeQuant("aq_xq", N.input, ip, N.inputRange, ip.symmetric ? undefined : N.inputMin, []);
  }
  const inputs = [x, wq];
  if (layer.bias && node.opType !== "MatMul") {
    g.initializer.push(makeTensorProto(N.bias, layer.bias.values, layer.bias.dims));
    inputs.push(N.bias);
  }
  let out = nd(node.opType, inputs, "adaquant_pre", node.attribute.map((a) => ({ ...a })));
  const act = layer.activation;
  if (act?.opType === "Relu") out = nd("Relu", [out], "adaquant_y");
  else if (act?.opType === "Clip") {
    out = nd("Clip", [out, c("aq_act_min", act.min), c("aq_act_max", act.max)], "adaquant_y");
  }
  g.output.push({ name: out, type: { tensorType: { elemType: DataType.FLOAT } } });
  return OnnxModel.fromProto(proto, `adaquant(${nodeLabel(node)})`);
}

/**
 * The learnable parameter names of a layer's AdaQuant graph, grouped by CalibTIP's optimiser (weights, bias, weight
 * quantizer, input quantizer).
 *
 * @example
 * ```ts
 * import { adaQuantParamGroups } from "./adaquant.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const weightParams = quantizer().int(4).symmetric().fit([1, -1]).params;
 * const node = { input: ["x", "w"], output: ["y"], name: "mm", opType: "MatMul", domain: "", attribute: [] };
 * const g = adaQuantParamGroups({ label: "mm", node, weight: new Float32Array(2), dims: [2, 1], axis: 1, weightParams });
 * if (g.weightQuant.join() !== "adaquant_w_range" || g.bias.length !== 0) throw new Error(JSON.stringify(g));
 * ```
 */
export function adaQuantParamGroups(layer: AdaQuantLayer): {
  weight: string[];
  bias: string[];
  weightQuant: string[];
  inputQuant: string[];
} {
  const N = ADAQUANT_NAMES;
  const learnInput = layer.inputParams !== undefined && layer.learnInput !== false;
  return {
    weight: [N.weight],
    bias: layer.bias && layer.node.opType !== "MatMul" ? [N.bias] : [],
    weightQuant: layer.weightParams.symmetric ? [N.weightRange] : [N.weightRange, N.weightMin],
    inputQuant: !learnInput ? [] : layer.inputParams!.symmetric ? [N.inputRange] : [N.inputRange, N.inputMin],
  };
}

/**
 * The gradient graph of the AdaQuant layer objective `mean((act(y_q) - t)^2)`, gradients with respect to every
 * learned parameter ({@link adaQuantParamGroups}). `sampleInput` and `sampleTarget` (batch >= 2) fix the shapes.
 *
 * @example
 * ```ts ignore
 * const tg = await adaQuantGradientGraph(layer, xBatch, tBatch, { backend: "node" });
 * ```
 */
export async function adaQuantGradientGraph(
  layer: AdaQuantLayer,
  sampleInput: Tensor<"float32">,
  sampleTarget: Tensor<"float32">,
  session: SessionOptions = {},
): Promise<GradientGraph> {
  const N = ADAQUANT_NAMES;
  const model = adaQuantForwardModel(layer, sampleInput.shape);
  const out = model.graph.output[0].name;
  const groups = adaQuantParamGroups(layer);
  return await buildGradientGraph(model, {
    loss: customLoss((ctx) => {
      const e = ctx.e;
      const d = e.sub(ctx.value(out), ctx.input(N.target, DataType.FLOAT));
      return e.reduceMean(e.mul(d, d), null, false);
    }),
    wrt: [...groups.weight, ...groups.bias, ...groups.weightQuant, ...groups.inputQuant],
    feeds: { [N.input]: sampleInput, [N.target]: sampleTarget },
    session,
  });
}

/** Hyperparameters of one layer's AdaQuant run. */
export interface AdaQuantLayerOptions {
  /** Adam iterations (CalibTIP: 1,000). */
  readonly iterations: number;
  /** Examples per iteration (CalibTIP: 50). */
  readonly batchSize: number;
  /** Learning rates (CalibTIP: weight 1e-5, bias 1e-3, weight quantizer 1e-3, input quantizer 1e-1). */
  readonly lr: {
    readonly weight: number;
    readonly bias: number;
    readonly weightQuant: number;
    readonly inputQuant: number;
  };
  /** Seed of the batch draws. */
  readonly seed: number;
  /** Loss-curve spacing. */
  readonly curveEvery: number;
  /** Examples (the first ones of the cache) on which the MSE before and after is measured. */
  readonly evalCount: number;
  /** ORT options. */
  readonly session: SessionOptions;
}

/** What one layer's AdaQuant run produced. */
export interface AdaQuantLayerResult {
  /** Layer label. */
  readonly label: string;
  /** Learned float weights. */
  readonly weight: Float32Array;
  /** Learned bias (undefined when the layer has none). */
  readonly bias: Float32Array | undefined;
  /** Weight quantizer parameters with the learned scales (and zero points). */
  readonly weightParams: QuantParams;
  /** Input quantizer parameters after learning (undefined when the input is not quantized). */
  readonly inputParams: QuantParams | undefined;
  /** Output MSE (mean over elements) at the initial parameters (round-to-nearest, calibrated ranges). */
  readonly mseBefore: number;
  /** Output MSE after AdaQuant. */
  readonly mseAfter: number;
  /** Loss curve (`round` and `beta` are 0). */
  readonly curve: readonly LossPoint[];
  /** Wall time, seconds. */
  readonly seconds: number;
}

function gatherRows(src: CachedActivations, idx: Int32Array, n: number, out: Float32Array): void {
  const per = src.data.length / src.count;
  for (let k = 0; k < n; k++) out.set(src.data.subarray(idx[k] * per, (idx[k] + 1) * per), k * per);
}

/**
 * Run AdaQuant on one layer (see the module doc) from cached inputs `x` (before the input quantizer) and float
 * targets `t` (after the following activation). Throws `SHAPE_MISMATCH` when the caches disagree, `NON_FINITE` if a
 * parameter diverges.
 *
 * @example
 * ```ts ignore
 * const r = await adaQuantLayer(layer, inputs, targets, { iterations: 1000, batchSize: 50, ... });
 * console.log(r.mseBefore, "->", r.mseAfter);
 * ```
 */
export async function adaQuantLayer(
  layer: AdaQuantLayer,
  x: CachedActivations,
  t: CachedActivations,
  o: AdaQuantLayerOptions,
): Promise<AdaQuantLayerResult> {
  const t0 = performance.now();
  if (x.count !== t.count || x.count < 2) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `AdaQuant ${layer.label}: ${x.count} cached inputs and ${t.count} targets (need equal counts >= 2)`,
    );
  }
  const N = ADAQUANT_NAMES;
  const bs = Math.min(o.batchSize, x.count);
  const xPer = x.data.length / x.count, tPer = t.data.length / t.count;
  const xBuf = new Float32Array(bs * xPer), tBuf = new Float32Array(bs * tPer);
  const xT = new Tensor<"float32">(xBuf, [bs, ...x.sampleDims]);
  const tT = new Tensor<"float32">(tBuf, [bs, ...t.sampleDims]);
  const perm = Int32Array.from({ length: x.count }, (_, k) => k);
  gatherRows(x, perm, bs, xBuf);
  gatherRows(t, perm, bs, tBuf);
  const tg = await adaQuantGradientGraph(layer, xT, tT, o.session);
  const gs = await GradientSession.create(tg, o.session);
  try {
    const ne = Math.min(o.evalCount, x.count);
    const ex = new Tensor<"float32">(x.data.subarray(0, ne * xPer), [ne, ...x.sampleDims]);
    const et = new Tensor<"float32">(t.data.subarray(0, ne * tPer), [ne, ...t.sampleDims]);
    const params = tg.initialParams();
    const mse = async () => (await gs.run({ [N.input]: ex, [N.target]: et }, params)).loss;
    const mseBefore = await mse();
    const groups = adaQuantParamGroups(layer);
    const optims: [Optimizer, Map<string, Float32Array>][] = [];
    const group = (names: string[], lr: number) => {
      if (names.length) optims.push([adam({ lr }), new Map(names.map((n) => [n, params.get(n)!]))]);
    };
    group(groups.weight, o.lr.weight);
    group(groups.bias, o.lr.bias);
    group(groups.weightQuant, o.lr.weightQuant);
    group(groups.inputQuant, o.lr.inputQuant);
    const rng = new Prng(o.seed);
    const curve: LossPoint[] = [];
    for (let it = 0; it < o.iterations; it++) {
      for (let k = 0; k < bs; k++) {
        const j = k + rng.nextInt(perm.length - k);
        const s = perm[k];
        perm[k] = perm[j];
        perm[j] = s;
      }
      gatherRows(x, perm, bs, xBuf);
      gatherRows(t, perm, bs, tBuf);
      const r = await gs.run({ [N.input]: xT, [N.target]: tT }, params);
      if (it % o.curveEvery === 0 || it === o.iterations - 1) {
        curve.push({ iteration: it, loss: r.loss, recon: r.loss, round: 0, beta: 0 });
      }
      for (const [opt, ps] of optims) opt.step(ps, r.grads);
    }
    for (const [name, v] of params) {
      if (!v.every(Number.isFinite)) throw new QuantlabError("NON_FINITE", `AdaQuant ${layer.label}: ${name} diverged`);
    }
    const mseAfter = await mse();
    const wp = paramsFromRange(layer.weightParams, params.get(N.weightRange)!, params.get(N.weightMin));
    const ip = layer.inputParams && groups.inputQuant.length
      ? paramsFromRange(layer.inputParams, params.get(N.inputRange)!, params.get(N.inputMin))
      : layer.inputParams;
    return {
      label: layer.label,
      weight: params.get(N.weight)!.slice(),
      bias: groups.bias.length ? params.get(N.bias)!.slice() : undefined,
      weightParams: wp,
      inputParams: ip,
      mseBefore,
      mseAfter,
      curve,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await gs.release();
  }
}

/** Where a layer's inputs come from (see the module doc). */
export type AdaQuantInputs = "float" | "qdq";

/** Options of {@link adaQuant}; unset ones come from the preset. */
export interface AdaQuantOptions {
  /** `"calibtip"` (default: CalibTIP's settings) or `"small"` (300 iterations on 512 examples; not CalibTIP's). */
  readonly preset?: "calibtip" | "small";
  /** Adam iterations per layer (CalibTIP: 1,000). */
  readonly iterations?: number;
  /** Examples per iteration (CalibTIP: 50). */
  readonly batchSize?: number;
  /** Calibration examples cached (CalibTIP's calibration set: 1,000 images, one per class; small: 512). */
  readonly samples?: number;
  /** Adam learning rate of the weights (CalibTIP 1e-5). */
  readonly lrWeight?: number;
  /** Adam learning rate of the bias (CalibTIP 1e-3). */
  readonly lrBias?: number;
  /** Adam learning rate of the weight quantizer's range and minimum (CalibTIP 1e-3). */
  readonly lrWeightQuant?: number;
  /** Adam learning rate of the input quantizer's range and minimum (CalibTIP 1e-1). */
  readonly lrInputQuant?: number;
  /** Learn the input quantizers (default true). */
  readonly learnInputs?: boolean;
  /** Seed of the batch draws (default 0; layer k uses seed + k). */
  readonly seed?: number;
  /** Where inputs come from (default `"float"`, CalibTIP's parallel mode). */
  readonly inputs?: AdaQuantInputs;
  /** Optimise only the layers (plan labels) this accepts (default all). */
  readonly layers?: (label: string) => boolean;
  /** Loss-curve spacing in iterations (default iterations / 100, at least 1). */
  readonly curveEvery?: number;
}

/** Per-layer record in the pass details. */
export interface AdaQuantLayerRecord {
  /** Plan label. */
  readonly layer: string;
  /** Weight tensor. */
  readonly weight: string;
  /** Weight bits. */
  readonly bits: number;
  /** Activation in the loss. */
  readonly activation: string;
  /** The input activation whose quantizer was learned (undefined: none learned). */
  readonly inputLearned: string | undefined;
  /** Whether the bias was learned. */
  readonly biasLearned: boolean;
  /** Output MSE before (nearest, calibrated ranges). */
  readonly mseBefore: number;
  /** Output MSE after. */
  readonly mseAfter: number;
  /** Mean relative change of the weight scales. */
  readonly scaleChange: number;
  /** Loss curve. */
  readonly curve: readonly LossPoint[];
  /** Wall time, seconds. */
  readonly seconds: number;
}

/** The pass details (`state.records[k].details` of an AdaQuant pass). */
export interface AdaQuantDetails {
  /** Resolved hyperparameters. */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Optimised layers in graph order. */
  readonly layers: readonly AdaQuantLayerRecord[];
  /** Planned weights not optimised, with the reason. */
  readonly skipped: readonly { readonly weight: string; readonly reason: string }[];
}

interface Resolved {
  preset: "calibtip" | "small";
  iterations: number;
  batchSize: number;
  samples: number;
  lr: { weight: number; bias: number; weightQuant: number; inputQuant: number };
  learnInputs: boolean;
  seed: number;
  inputs: AdaQuantInputs;
  curveEvery: number;
}

function resolve(o: AdaQuantOptions): Resolved {
  const preset = o.preset ?? "calibtip";
  if (preset !== "calibtip" && preset !== "small") {
    throw new QuantlabError("INVALID_ARGUMENT", `adaQuant preset must be "calibtip" or "small", got "${preset}"`);
  }
  const iterations = o.iterations ?? (preset === "small" ? 300 : 1000);
  const r: Resolved = {
    preset,
    iterations,
    batchSize: o.batchSize ?? 50,
    samples: o.samples ?? (preset === "small" ? 512 : 1000),
    lr: {
      weight: o.lrWeight ?? 1e-5,
      bias: o.lrBias ?? 1e-3,
      weightQuant: o.lrWeightQuant ?? 1e-3,
      inputQuant: o.lrInputQuant ?? 1e-1,
    },
    learnInputs: o.learnInputs ?? true,
    seed: o.seed ?? 0,
    inputs: o.inputs ?? "float",
    curveEvery: o.curveEvery ?? Math.max(1, Math.floor(iterations / 100)),
  };
  for (
    const [k, v] of Object.entries({ iterations, batchSize: r.batchSize, samples: r.samples, curve: r.curveEvery })
  ) {
    if (!Number.isInteger(v) || v < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `adaQuant ${k} must be a positive integer, got ${v}`);
    }
  }
  if (r.samples < 2) throw new QuantlabError("INVALID_ARGUMENT", `adaQuant samples must be >= 2, got ${r.samples}`);
  for (const [k, v] of Object.entries(r.lr)) {
    if (!Number.isFinite(v) || v < 0) {
      throw new QuantlabError("INVALID_ARGUMENT", `adaQuant lr ${k} out of range: ${v}`);
    }
  }
  if (!Number.isInteger(r.seed) || r.seed < 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `adaQuant seed must be a non-negative integer, got ${r.seed}`);
  }
  if (r.inputs !== "float" && r.inputs !== "qdq") {
    throw new QuantlabError("INVALID_ARGUMENT", `adaQuant inputs must be "float" or "qdq", got "${r.inputs}"`);
  }
  return r;
}

/**
 * Run AdaQuant over every planned Conv/Gemm/MatMul of a calibrated state (see the module doc). Returns the state
 * patch (model with learned biases, `weightValues`, `weightFits`, `activationParams`) and the details.
 *
 * @example
 * ```ts ignore
 * const { patch, details } = await adaQuantState(state, batches, { preset: "small" }, ctx);
 * ```
 */
export async function adaQuantState(
  state: PtqState,
  batches: readonly InputFeeds[],
  options: AdaQuantOptions,
  ctx: Pick<PassContext, "session" | "progress">,
): Promise<{
  patch: Pick<PtqState, "model" | "weightValues" | "weightFits" | "activationParams">;
  details: AdaQuantDetails;
}> {
  const o = resolve(options);
  const plan = state.plan;
  if (!plan) throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: AdaQuant needs a plan`);
  const float = state.model;
  const model = float.clone();
  const inits = indexGraph(model.graph).initializers;
  const labelOf = new Map(float.graph.node.map((n, i) => [n.name || `${n.opType}#${i}`, { n, i }]));
  const fitted = fitPlannedWeights(state);
  const skipped: { weight: string; reason: string }[] = [];
  const targets: { entry: (typeof plan.weights)[number]; node: NodeProto; index: number; fit: UniformWeights }[] = [];
  for (const e of plan.weights) {
    const found = labelOf.get(e.node);
    const f = fitted.get(e.tensor)!;
    const reason = !found
      ? "node not found"
      : !["Conv", "Gemm", "MatMul"].includes(e.opType)
      ? `${e.opType} is not optimised`
      : !(f instanceof UniformWeights) || f.affine.granularity.kind === "group"
      ? `${f.kind} quantizer (AdaQuant needs a uniform per-tensor/per-channel grid)`
      : options.layers && !options.layers(e.node)
      ? "excluded by the layers option"
      : found.n.opType === "Gemm" && found.n.attribute.some((a) => a.name === "transA" && Number(a.i) !== 0)
      ? "Gemm with transA"
      : undefined;
    if (reason) skipped.push({ weight: e.tensor, reason });
    else targets.push({ entry: e, node: found!.n, index: found!.i, fit: f as UniformWeights });
  }
  targets.sort((a, b) => a.index - b.index);
  const values = new Map(state.weightValues);
  const fits = new Map(state.weightFits);
  const act = new Map(state.activationParams);
  const learnedInputs = new Set<string>();
  const records: AdaQuantLayerRecord[] = [];
  for (let k = 0; k < targets.length; k++) {
    const { entry, node, fit } = targets[k];
    ctx.progress(`AdaQuant ${entry.node} (${k + 1}/${targets.length})`, k / targets.length);
    const activation = followingActivation(float, node);
    let x: CachedActivations;
    if (o.inputs === "qdq") {
      const q = materializeQdq({ ...state, model, weightFits: fits, weightValues: values, activationParams: act });
      x = await cacheActivations(q.model, node.input[0], batches, ctx.session);
    } else {
      x = await cacheActivations(float, node.input[0], batches, ctx.session);
    }
    const t = await cacheActivations(float, reconstructionTarget(float, node, activation), batches, ctx.session);
    const ae = plan.activations.find((a) => a.tensor === node.input[0]);
    const inputKey = ae ? ae.sharesWith ?? ae.tensor : undefined;
    const inputParams = inputKey ? act.get(inputKey) : undefined;
    const learnInput = o.learnInputs && inputKey !== undefined && !ae!.sharesWith && !learnedInputs.has(inputKey) &&
      !plan.activations.some((a) => a.sharesWith === inputKey);
    const wT = inits.get(entry.tensor)!;
    const biasName = node.opType !== "MatMul" && node.input[2] ? node.input[2] : undefined;
    const biasT = biasName ? inits.get(biasName) : undefined;
    const w0 = state.weightValues.get(entry.tensor) ?? (tensorValues(wT) as Float32Array);
    const layer: AdaQuantLayer = {
      label: entry.node,
      node,
      weight: w0,
      dims: wT.dims,
      axis: entry.axis,
      weightParams: fit.affine,
      bias: biasT ? { values: tensorValues(biasT) as Float32Array, dims: biasT.dims } : undefined,
      inputParams,
      learnInput,
      activation,
    };
    const r = await adaQuantLayer(layer, x, t, {
      iterations: o.iterations,
      batchSize: o.batchSize,
      lr: o.lr,
      seed: o.seed + k,
      curveEvery: o.curveEvery,
      evalCount: 100,
      session: ctx.session,
    });
    values.set(entry.tensor, r.weight);
    fits.set(entry.tensor, new UniformWeights(fit.config, r.weightParams, new Tensor(r.weight, wT.dims), entry.tensor));
    if (r.bias && biasName && biasT) {
      const ix = model.graph.initializer.indexOf(biasT);
      const nb = makeTensorProto(biasName, r.bias, biasT.dims);
      model.graph.initializer[ix] = nb;
      inits.set(biasName, nb);
    }
    if (learnInput && r.inputParams) {
      act.set(inputKey!, r.inputParams);
      learnedInputs.add(inputKey!);
    }
    let change = 0;
    for (let c = 0; c < fit.affine.scale.length; c++) {
      change += Math.abs(r.weightParams.scale[c] / fit.affine.scale[c] - 1);
    }
    records.push({
      layer: entry.node,
      weight: entry.tensor,
      bits: entry.bits,
      activation: activation ? activation.opType : "none",
      inputLearned: learnInput ? inputKey : undefined,
      biasLearned: r.bias !== undefined,
      mseBefore: r.mseBefore,
      mseAfter: r.mseAfter,
      scaleChange: change / fit.affine.scale.length,
      curve: r.curve,
      seconds: r.seconds,
    });
  }
  ctx.progress("AdaQuant done", 1);
  return {
    patch: { model, weightValues: values, weightFits: fits as Map<string, FittedWeights>, activationParams: act },
    details: { settings: { ...o, evalCount: 100 }, layers: records, skipped },
  };
}

/**
 * The AdaQuant pass (stage `calibrated`; see the module doc for what it does and where it departs from CalibTIP).
 *
 * @example
 * ```ts
 * import { adaQuant } from "./adaquant.ts";
 * const p = adaQuant({ preset: "small", seed: 1 });
 * if (p.stage !== "calibrated" || !p.toString().includes("iterations=300")) throw new Error(p.toString());
 * ```
 */
export function adaQuant(options: AdaQuantOptions = {}): PtqPass {
  const o = resolve(options);
  const text = `adaQuant(preset=${o.preset}, iterations=${o.iterations}, batch=${o.batchSize}, samples=${o.samples}, ` +
    `lr w=${o.lr.weight} b=${o.lr.bias} wq=${o.lr.weightQuant} xq=${o.lr.inputQuant}, inputs=${o.inputs}, ` +
    `seed=${o.seed})`;
  return {
    name: "adaQuant",
    stage: "calibrated",
    run(state: PtqState, ctx: PassContext): Promise<PtqState> {
      return timedPass("adaQuant", state, async () => {
        if (!ctx.data) {
          throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: AdaQuant needs calibrateOn(data)`);
        }
        const inputs = [...indexGraph(state.model.graph).inputs];
        const batches: InputFeeds[] = [];
        for await (const f of limitedBatches(ctx.data, inputs, o.samples, state.model.source)) batches.push(f);
        if (!batches.length) throw new QuantlabError("EMPTY_TENSOR", `${state.source.source}: AdaQuant data is empty`);
        const r = await adaQuantState(state, batches, options, ctx);
        const before = r.details.layers.reduce((a, l) => a + l.mseBefore, 0);
        const after = r.details.layers.reduce((a, l) => a + l.mseAfter, 0);
        return {
          patch: r.patch,
          summary: `${r.details.layers.length} layers optimised (${o.iterations} iterations each); summed output MSE ` +
            `${before.toPrecision(3)} -> ${after.toPrecision(3)}`,
          details: r.details,
        };
      });
    },
    toString: () => text,
  };
}

registerPass("adaQuant", (o) => adaQuant(o as AdaQuantOptions));
