/**
 * Zero-shot quantization (ZeroQ): distilled calibration data from BatchNorm statistics, the Gaussian-noise
 * baseline, level 1 (calibrate and quantize with the PTQ pipeline) and level 2 (fine-tune the quantized model on
 * synthetic data with distillation from the float model).
 *
 * @module
 */
export * from "./bn_taps.ts";
export * from "./init.ts";
export * from "./loss.ts";
export * from "./distill.ts";
export * from "./level1.ts";
export * from "./level2.ts";
