/**
 * Learned and stochastic rounding of weights over the model-level core: AdaRound (AIMET-faithful, {@link adaRound})
 * and stochastic rounding as a post-training baseline ({@link stochasticRounding}).
 *
 * @example
 * ```ts
 * import { adaRound } from "./mod.ts";
 * if (adaRound({ preset: "small" }).stage !== "calibrated") throw new Error("bad");
 * ```
 *
 * @module
 */
export * from "./rectified_sigmoid.ts";
export * from "./layer_graph.ts";
export * from "./optimize_layer.ts";
export * from "./capture.ts";
export * from "./adaround_pass.ts";
export * from "./stochastic.ts";
