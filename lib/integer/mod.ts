/**
 * Integer-only inference arithmetic: dyadic (fixed-point) multipliers bit-exact
 * with TFLite/gemmlowp, int8/uint8 GEMM and 2-D convolution reference kernels
 * with ONNX `QLinearMatMul` / `QLinearConv` semantics, requantization, and the
 * float simulation path they are compared against.
 *
 * @example
 * ```ts
 * import { qlinearConv, simulateQLinearConv } from "./mod.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const x = new Tensor(new Uint8Array([120, 130, 140, 150, 160, 170, 180, 190, 200]), [1, 1, 3, 3]);
 * const w = new Tensor(new Int8Array([1, -2, 3, -4]), [1, 1, 2, 2]);
 * const args = { x, xScale: 0.02, xZeroPoint: 128, w, wScale: 0.1, yScale: 0.01, yZeroPoint: 128 };
 * const a = qlinearConv(args).toArray(), b = simulateQLinearConv(args).toArray();
 * if (a.some((v, i) => Math.abs(v - b[i]) > 1)) throw new Error(`${a} vs ${b}`);
 * ```
 *
 * @module
 */
export * from "./fixed_point.ts";
export * from "./dyadic.ts";
export * from "./checks.ts";
export * from "./requantize.ts";
export * from "./gemm.ts";
export * from "./conv.ts";
export * from "./simulate.ts";
export { chunkCount, gemmConfig, gemmPacked, packPanels, panelCount, panelIndex } from "./gemm_kernel.ts";
export { simdGemmAvailable } from "./simd_gemm.ts";
