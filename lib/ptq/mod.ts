/**
 * The model-level quantization core: quantization plans built from policies, passes over one immutable state
 * (BN folding, cross-layer equalization, calibration, bias correction), materialization as QDQ, trainable QDQ
 * and QOperator, sensitivity analysis, evaluation, and the fluent `ptq()` pipeline.
 *
 * @module
 */
export * from "./plan.ts";
export * from "./policy.ts";
export * from "./pass.ts";
export * from "./passes.ts";
export * from "./calibration.ts";
export * from "./calibrate_pass.ts";
export * from "./materialize.ts";
export * from "./qoperator.ts";
export * from "./equalize.ts";
export * from "./bias_correction.ts";
export * from "./fold_pass.ts";
export * from "./evaluate.ts";
export * from "./report.ts";
export * from "./pipeline.ts";
export * from "./sensitivity.ts";
export * from "./recipes.ts";
export * from "./ocs.ts";
