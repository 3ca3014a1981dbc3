/**
 * Gradients over ONNX: the backward-graph compiler (standard ops only), losses as graph builders, gradient
 * markers and LSQ/PACT quantizers, a session that feeds parameters and returns gradients, and Hessian-vector
 * products for HAWQ. See README.md in this folder for a usage guide.
 *
 * @module
 */
export * from "./emitter.ts";
export * from "./rule.ts";
export * from "./compiler.ts";
export * from "./losses.ts";
export * from "./markers.ts";
export * from "./session.ts";
export * from "./hessian.ts";
export * from "./optim.ts";
export * from "./schedule.ts";
export * from "./train.ts";
export * from "./train_data.ts";
export * from "./checkpoint.ts";
