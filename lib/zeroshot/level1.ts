/**
 * Zero-shot quantization level 1 (no data, no fine-tuning): calibrate activation ranges on synthetic data and
 * quantize with the PTQ pipeline, as ZeroQ's `uniform_test.py` does: per-channel symmetric weights, per-tensor
 * asymmetric min-max activations after each ReLU only (ZeroQ's `quantize_model` puts `QuantAct` after every
 * ReLU: pre-residual BN outputs, pooled features and logits stay in float), and the raw input image in float.
 * Both are plain policy settings of the plan (`placement: "relu"`, `input: false`), so nothing is stripped after
 * the fact.
 *
 * @module
 */
import type { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { type CalibrationSource, ptq, type PtqModels, type PtqPipeline } from "../ptq/pipeline.ts";
import { quantizer } from "../quant/quantizer.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Options of {@link quantizeZeroShot}. */
export interface ZeroShotQuantizeOptions {
  /** Weight bits (per-channel symmetric; default 8). */
  weightBits?: number;
  /** Activation bits (per-tensor asymmetric min-max; default 8). */
  activationBits?: number;
  /** Quantize the network input too (default false: ZeroQ keeps it in float). */
  quantizeInput?: boolean;
  /**
   * Which activations get quantizers: `"relu"` (default, ZeroQ's placement: after every ReLU) or `"all"`
   * (quantlab's PTQ placement: outputs of Conv, Add, pooling, Gemm, ... including the logits).
   */
  activations?: "relu" | "all";
  /** ORT options for calibration. */
  session?: SessionOptions;
}

/** Result of {@link quantizeZeroShot}. */
export interface ZeroShotQuantized {
  /** The fake-quantized (QDQ) model to evaluate or deploy. */
  readonly model: OnnxModel;
  /** The PTQ pipeline that made it. */
  readonly pipeline: PtqPipeline;
  /** The PTQ artefacts (state with plan and parameters, float model with BN folded). */
  readonly ptq: PtqModels;
  /** Setting label, e.g. `"W4A8"`. */
  readonly label: string;
  /** Activation placement used. */
  readonly activations: "relu" | "all";
  /** Whether the network input is quantized. */
  readonly quantizeInput: boolean;
}

/** Calibration data for zero-shot quantization: distilled or noise batches, a dataset, or a reader. */
export type ZeroShotCalibration = CalibrationSource | Iterable<Tensor<"float32">>;

/**
 * Level 1: calibrate on `data` (distilled batches, noise, or a real dataset) and quantize `model` with
 * `W<weightBits>A<activationBits>`. BN is folded by the PTQ pipeline (on its copy).
 *
 * @example
 * ```ts ignore
 * const data = await zeroShot(model).generate();
 * const { model: q } = await quantizeZeroShot(model, data, { weightBits: 4, activationBits: 8 });
 * ```
 */
export async function quantizeZeroShot(
  model: OnnxModel,
  data: ZeroShotCalibration,
  options: ZeroShotQuantizeOptions = {},
): Promise<ZeroShotQuantized> {
  const wb = options.weightBits ?? 8, ab = options.activationBits ?? 8;
  const activations = options.activations ?? "relu", quantizeInput = options.quantizeInput ?? false;
  const pipeline = ptq(model)
    .weights(quantizer().int(wb).symmetric().perChannel())
    .activations(quantizer().uint(ab).asymmetric())
    .placement(activations)
    .input(quantizeInput)
    .session(options.session ?? {})
    .calibrateOn(data as CalibrationSource);
  const q = await pipeline.quantize();
  return { model: q.qdq, pipeline, ptq: q, label: `W${wb}A${ab}`, activations, quantizeInput };
}
