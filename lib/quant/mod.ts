/**
 * Uniform affine quantization: parameters, kernels, rounding, the fluent builder and error measures; the
 * weight-quantizer contract every tensor-level quantizer implements; bit accounting.
 *
 * @module
 */
export * from "./params.ts";
export * from "./rounding.ts";
export * from "./affine.ts";
export * from "./quantizer.ts";
export * from "./metrics.ts";
export * from "./accounting.ts";
export * from "./weight_quantizer.ts";
export { forEachSegment, slotMinMax } from "./slots.ts";
