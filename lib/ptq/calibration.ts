/**
 * What an activation quantizer must be for static QDQ activations: per-tensor, at most 8 bits, calibrated (not
 * dynamic). Calibration itself is the calibrate pass (calibrate_pass.ts).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { QuantizerBuilder } from "../quant/quantizer.ts";

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
