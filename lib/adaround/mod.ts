/**
 * Post-training rounding and reconstruction of weights over the model-level core: AdaRound (AIMET-faithful,
 * {@link adaRound}), AdaQuant (CalibTIP-faithful: weights, bias and the weight and input quantizer ranges learned
 * per layer, {@link adaQuant}), BRECQ block reconstruction (AdaRound's objective over residual blocks found in the
 * graph, {@link brecq}) and stochastic rounding as a post-training baseline ({@link stochasticRounding}). Each is a
 * `calibrated`-stage pass: `ptq(model).weights(q).use(adaQuant({ preset: "small" })).calibrateOn(data)`.
 *
 * @example
 * ```ts
 * import { adaQuant, adaRound, brecq } from "./mod.ts";
 * for (const p of [adaRound({ preset: "small" }), adaQuant({ preset: "small" }), brecq({ preset: "small" })]) {
 *   if (p.stage !== "calibrated") throw new Error(p.name);
 * }
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
export * from "./adaquant.ts";
export * from "./brecq.ts";
