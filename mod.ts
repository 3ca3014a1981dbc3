/**
 * quantlab: neural-network quantization research in Deno and Jupyter.
 *
 * @example
 * ```ts
 * import { quantizer } from "./mod.ts";
 * const { values, params } = quantizer().int(4).symmetric().perChannel(0).fakeQuantize(
 *   [0.1, -0.5, 0.25, 2, -1, 0.5],
 *   [2, 3],
 * );
 * if (params.scale.length !== 2 || values.data[3] !== 2) throw new Error("bad");
 * ```
 *
 * @module
 */
export * from "./lib/errors.ts";
export * from "./lib/tensor/mod.ts";
export * from "./lib/quant/mod.ts";
export * from "./lib/calibrate/mod.ts";
export * from "./lib/integer/mod.ts";
export * from "./lib/vq/mod.ts";
export * from "./lib/nonuniform/mod.ts";
export * from "./lib/extreme/mod.ts";
export * from "./lib/data/mod.ts";
export * from "./lib/onnx/mod.ts";
export * from "./lib/ptq/mod.ts";
export * from "./lib/grad/mod.ts";
export * from "./lib/models/mod.ts";
export * from "./lib/zeroshot/mod.ts";
export * from "./lib/viz/mod.ts";
export * from "./lib/notebook/mod.ts";
export * from "./lib/experiments/mod.ts";
