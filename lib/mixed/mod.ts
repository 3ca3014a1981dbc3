/**
 * Mixed precision: per-layer Hessian traces and eigenvalues (Hutchinson with PyHessian's stopping rule, power
 * iteration, exact traces for checking), HAWQ sensitivities with the plan's weight quantizer, and the exact
 * integer program (YALPS) over per-layer weight widths under size, BOPs and latency budgets, returning plans the
 * PTQ pipeline consumes.
 *
 * @module
 */
export * from "./traces.ts";
export * from "./ilp.ts";
export * from "./hawq.ts";
