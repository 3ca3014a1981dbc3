/**
 * Post-training quantization of ONNX models: QDQ insertion with calibrated activations, lowering to integer
 * operators, cross-layer equalization, empirical bias correction, evaluation and the fluent `ptq()` pipeline.
 *
 * @module
 */
export * from "./qdq.ts";
export * from "./calibration.ts";
export * from "./qoperator.ts";
export * from "./equalize.ts";
export * from "./bias_correction.ts";
export * from "./evaluate.ts";
export * from "./report.ts";
export * from "./pipeline.ts";
