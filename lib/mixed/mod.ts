/**
 * Mixed precision: per-layer Hessian traces and eigenvalues (Hutchinson with PyHessian's stopping rule, power
 * iteration, exact traces for checking), HAWQ sensitivities with the plan's weight quantizer, the exact integer
 * program (YALPS) over per-layer weight widths under size, BOPs and latency budgets returning plans the PTQ
 * pipeline consumes, a per-layer latency table measured on ONNX Runtime, and the baselines (greedy by sensitivity,
 * Intel Neural Compressor's hawq_v2 fallback).
 *
 * @module
 */
export * from "./traces.ts";
export * from "./ilp.ts";
export * from "./hawq.ts";
export * from "./latency.ts";
export * from "./baselines.ts";
export * from "./activations.ts";
