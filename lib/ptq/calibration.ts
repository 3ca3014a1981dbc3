/**
 * Activation calibration: run the float model on ONNX Runtime with the planned activations exposed as outputs,
 * stream every batch through one observer per tensor (any quantlab `Calibrator`: min-max, percentile,
 * entropy, MSE, ...), and turn the observed ranges into per-tensor parameters. Memory stays bounded: one batch
 * of inputs and intermediates at a time.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { Observer } from "../calibrate/observer.ts";
import { minMax } from "../calibrate/min_max.ts";
import { exposeValues } from "../onnx/capture.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { tensorValues } from "../onnx/tensor_data.ts";
import type { QuantParams } from "../quant/params.ts";
import type { QuantizerBuilder } from "../quant/quantizer.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { ActivationPlan } from "./qdq.ts";

/** Calibration inputs: batches for the model's single input (NCHW float32 tensors). */
export type CalibrationData = Iterable<Tensor<"float32">> | AsyncIterable<Tensor<"float32">>;

/** Options for {@link calibrateActivations}. */
export interface CalibrationOptions extends SessionOptions {
  /** Called after each batch with the number of batches done. */
  onProgress?: (batches: number) => void;
}

/**
 * Check that an activation quantizer can be expressed as ONNX QDQ activations.
 *
 * @example
 * ```ts
 * import { checkActivationQuantizer } from "./calibration.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * checkActivationQuantizer(quantizer().uint(8).asymmetric());
 * try {
 *   checkActivationQuantizer(quantizer().int(8).perChannel(1));
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("per-tensor")) throw e;
 * }
 * ```
 */
export function checkActivationQuantizer(activations: QuantizerBuilder): void {
  const c = activations.config;
  if (c.granularity.kind !== "tensor") {
    throw new QuantlabError(
      "UNSUPPORTED",
      `activation quantizer must be per-tensor for QDQ export, got ${c.granularity.kind}`,
    );
  }
  if (c.bits > 8) {
    throw new QuantlabError("UNSUPPORTED", `activation quantizer has ${c.bits} bits; QDQ export supports up to 8`);
  }
  if (c.dynamic) {
    throw new QuantlabError("UNSUPPORTED", "dynamic activation quantization has no static QDQ form; calibrate instead");
  }
}

/**
 * Observe the planned activations over `data` and return parameters for each (plus the Add/Mul constants).
 * Throws `EMPTY_TENSOR` when `data` holds no batch.
 *
 * @example
 * ```ts ignore
 * import { calibrateActivations } from "./calibration.ts";
 * import { planActivations } from "./qdq.ts";
 * const params = await calibrateActivations(model, planActivations(model), batchesOfX, quantizer().uint(8).asymmetric());
 * ```
 */
export async function calibrateActivations(
  model: OnnxModel,
  plan: ActivationPlan,
  data: CalibrationData,
  activations: QuantizerBuilder,
  options: CalibrationOptions = {},
): Promise<Map<string, QuantParams>> {
  checkActivationQuantizer(activations);
  const g = model.graph;
  const inputs = [...indexGraph(g).inputs];
  if (inputs.length !== 1) {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${model.source}: calibration feeds one input, the model has ${inputs.length}`,
    );
  }
  const observers = new Map<string, Observer>();
  for (const t of plan.observe) observers.set(t, activations.observer(t));
  const out = new Map<string, QuantParams>();
  if (plan.observe.length) {
    const probe = exposeValues(model, plan.observe, { replace: true });
    const session = await createSession(probe, options);
    let count = 0;
    for await (const x of data as AsyncIterable<Tensor<"float32">>) {
      const r = await session.run({ [inputs[0]]: x });
      for (const [t, obs] of observers) obs.observe(r[t] as Tensor<"float32">);
      count++;
      options.onProgress?.(count);
    }
    if (count === 0) throw new QuantlabError("EMPTY_TENSOR", `${model.source}: calibration data holds no batch`);
    for (const [t, obs] of observers) out.set(t, activations.fromObserver(obs).params);
  }
  const inits = indexGraph(g).initializers;
  for (const c of plan.constants) {
    const v = tensorValues(inits.get(c)!) as Float32Array;
    // Constants are exact data, not samples: min-max covers them without clipping.
    out.set(c, activations.calibrate(minMax()).fit(new Tensor(v), undefined, c).params);
  }
  return out;
}
