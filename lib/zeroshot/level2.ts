/**
 * Zero-shot quantization level 2 (no data, fine-tuning): fine-tune the quantized model on synthetic data with
 * knowledge distillation from the float model (Hinton et al.: `T^2 * KL(softmax(t/T) || softmax(s/T))`), the
 * gradient passing straight through the fake quantization (STE with the clip mask, lib/grad's
 * QuantizeLinear -> DequantizeLinear rule).
 *
 * The trainable graph ({@link qatModel}) is the level-1 QDQ model with every weight's integer codes replaced by
 * `QuantizeLinear(w_float) -> DequantizeLinear` with the calibrated per-channel scales (fixed), biases in
 * float, activation quantizers and their ranges unchanged. After each Adam step the float weights are clamped
 * to their grid's range `[(qmin - z) s, (qmax - z) s]` per channel, so sub-8-bit grids stay exact (an int8
 * QuantizeLinear alone would saturate only at +-127 steps).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { applyParams, buildGradientGraph } from "../grad/compiler.ts";
import { distillationLoss } from "../grad/distill_loss.ts";
import { adam } from "../grad/optim.ts";
import { GradientSession } from "../grad/session.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { materializeTrainable, type TrainableModel } from "../ptq/materialize.ts";
import type { QuantParams } from "../quant/params.ts";
import { Prng } from "../tensor/prng.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { ZeroShotQuantized } from "./level1.ts";

/**
 * The trainable QDQ graph of a level-1 result: the plan materialized with learnable float weights behind
 * QuantizeLinear -> DequantizeLinear (STE with the clip mask) at their calibrated per-channel scales, learnable
 * float biases, and the activation quantizers and ranges of level 1 unchanged (see ptq/materialize.ts).
 *
 * @example
 * ```ts ignore
 * const q = await quantizeZeroShot(model, data, { weightBits: 4, activationBits: 4 });
 * const t = qatModel(q);
 * console.log(t.learnable);
 * ```
 */
export function qatModel(q: ZeroShotQuantized): TrainableModel {
  return materializeTrainable(q.ptq.state, { weights: "ste", activations: "ste", biases: true });
}

/**
 * Clamp `w` (dims `dims`) in place to its grid's range `[(qmin - z) s, (qmax - z) s]`, per channel along `axis`
 * (or per tensor when `p` has one scale).
 *
 * @example
 * ```ts
 * import { clampToGrid } from "./level2.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const p = quantizer().int(4).symmetric().perChannel(0).fit([1, -1, 2, -2], [2, 2]).params; // s = 1/7, 2/7
 * const w = new Float32Array([3, -3, 3, -3]);
 * clampToGrid(w, [2, 2], 0, p);
 * if (Math.abs(w[0] - 1) > 1e-6 || Math.abs(w[3] + 2) > 1e-6) throw new Error(String(w));
 * ```
 */
export function clampToGrid(w: Float32Array, dims: readonly number[], axis: number, p: QuantParams): void {
  const C = p.scale.length;
  let inner = 1;
  for (let d = axis + 1; d < dims.length; d++) inner *= dims[d];
  const lo = new Float32Array(C), hi = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    lo[c] = (p.qmin - p.zeroPoint[c]) * p.scale[c];
    hi[c] = (p.qmax - p.zeroPoint[c]) * p.scale[c];
  }
  for (let i = 0; i < w.length; i++) {
    const c = C === 1 ? 0 : Math.floor(i / inner) % C;
    const v = w[i];
    w[i] = v < lo[c] ? lo[c] : v > hi[c] ? hi[c] : v;
  }
}

/** Options of {@link fineTuneZeroShot}. */
export interface FineTuneOptions {
  /** Passes over the synthetic batches (default 4). */
  epochs?: number;
  /** Adam learning rate (default 1e-4). */
  lr?: number;
  /** Distillation temperature (default 4). */
  temperature?: number;
  /** Shuffle seed (default 0). */
  seed?: number;
  /** ORT options. */
  session?: SessionOptions;
  /** Called after every step with the loss. */
  onStep?: (step: number, loss: number) => void;
}

/** Result of {@link fineTuneZeroShot}. */
export interface FineTuned {
  /** The fine-tuned fake-quantized model (weights quantized at run time by QuantizeLinear). */
  readonly model: OnnxModel;
  /** Distillation loss per step. */
  readonly losses: Float64Array;
  /** Wall time, seconds. */
  readonly seconds: number;
}

/**
 * Level 2: fine-tune the level-1 model `q` on `batches` (synthetic inputs) to match the float `teacher`'s
 * softened outputs (KL with temperature, times T^2), STE through the fake quantization.
 *
 * @example
 * ```ts ignore
 * const tuned = await fineTuneZeroShot(q, model, data, { epochs: 4, lr: 1e-4, temperature: 4 });
 * ```
 */
export async function fineTuneZeroShot(
  q: ZeroShotQuantized,
  teacher: OnnxModel,
  batches: Iterable<Tensor<"float32">>,
  options: FineTuneOptions = {},
): Promise<FineTuned> {
  const t0 = performance.now();
  const epochs = options.epochs ?? 4, lr = options.lr ?? 1e-4, T = options.temperature ?? 4;
  if (!Number.isInteger(epochs) || epochs < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `fineTuneZeroShot epochs must be a positive integer, got ${epochs}`);
  }
  const data = [...batches];
  if (data.length === 0) throw new QuantlabError("EMPTY_TENSOR", "fineTuneZeroShot: no synthetic batches");
  const qat = qatModel(q);
  const input = [...indexGraph(qat.model.graph).inputs][0];
  const output = qat.model.graph.output[0].name;
  const ts = await createSession(teacher, options.session);
  const tOut = ts.outputNames[0];
  const teacherLogits: Tensor[] = [];
  for (const x of data) teacherLogits.push((await ts.run({ [input]: x }))[tOut]);
  const wrt = [...qat.learnable];
  const tg = await buildGradientGraph(qat.model, {
    // Distillation without labels (alpha 0, beta 1): exactly klDivLoss with T^2, the same graph as before.
    loss: distillationLoss(output, { teacher: "teacher_logits", alpha: 0, beta: 1, temperature: T }),
    wrt,
    feeds: { [input]: data[0], teacher_logits: teacherLogits[0] },
    session: options.session,
  });
  const gs = await GradientSession.create(tg, options.session);
  const params = tg.initialParams();
  const opt = adam({ lr });
  const rng = new Prng(options.seed ?? 0);
  const losses: number[] = [];
  const order = Array.from(data, (_, i) => i);
  for (let e = 0; e < epochs; e++) {
    rng.shuffle(order);
    for (const i of order) {
      const r = await gs.run({ [input]: data[i], teacher_logits: teacherLogits[i] }, params);
      opt.step(params, r.grads);
      for (const [w, g] of qat.weights) clampToGrid(params.get(w)!, g.dims, g.axis, g.params);
      losses.push(r.loss);
      options.onStep?.(losses.length, r.loss);
    }
  }
  await gs.release();
  for (const [w, v] of params) {
    if (!v.every(Number.isFinite)) throw new QuantlabError("NON_FINITE", `fineTuneZeroShot: ${w} diverged`);
  }
  const model = applyParams(qat.model, params);
  return { model, losses: Float64Array.from(losses), seconds: (performance.now() - t0) / 1000 };
}
