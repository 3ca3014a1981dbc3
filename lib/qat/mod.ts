/**
 * Quantization-aware training: the {@link qat} builder over the model-level core, its result and export, and the
 * distillation loss it uses.
 *
 * @module
 */
export * from "./qat.ts";
export * from "./result.ts";
export * from "./bn_fold.ts";
export * from "./dorefa.ts";
export * from "../grad/distill_loss.ts";
export * from "./extremes.ts";
