/**
 * `deno bench -A benchmarks/integer_bench.ts`: the integer-only kernels on
 * int8 GEMM 256x256x256 and conv 1x16x28x28 -> 32 channels, 3x3, pad 1, plus
 * the float simulation path and requantization alone for comparison.
 *
 * @module
 */
import { conv2dInt32, qlinearConv } from "../lib/integer/conv.ts";
import { qgemmInt32, qlinearMatMul } from "../lib/integer/gemm.ts";
import { requantize } from "../lib/integer/requantize.ts";
import { simulateQLinearConv } from "../lib/integer/simulate.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

function randU8(rng: Prng, n: number): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextInt(256);
  return a;
}
function randI8(rng: Prng, n: number): Int8Array {
  const a = new Int8Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextInt(255) - 127;
  return a;
}

const rng = new Prng(1);
const M = 256, K = 256, N = 256;
const gemmArgs = {
  a: new Tensor(randU8(rng, M * K), [M, K]),
  aScale: 0.02,
  aZeroPoint: 128,
  b: new Tensor(randI8(rng, N * K), [N, K]),
  bScale: 0.005,
  bZeroPoint: 0,
  transB: true,
  yScale: 0.5,
  yZeroPoint: 128,
};
const convArgs = {
  x: new Tensor(randU8(rng, 16 * 28 * 28), [1, 16, 28, 28]),
  xScale: 0.02,
  xZeroPoint: 128,
  w: new Tensor(randI8(rng, 32 * 16 * 9), [32, 16, 3, 3]),
  wScale: Array.from({ length: 32 }, (_, i) => 0.004 + 0.0001 * i),
  wZeroPoint: 0,
  bias: Int32Array.from({ length: 32 }, (_, i) => 100 * i - 1600),
  yScale: 0.2,
  yZeroPoint: 128,
};
const acc = qgemmInt32(gemmArgs).data;

Deno.bench("qgemmInt32 u8 x s8 256x256x256 (int32 accumulators)", { group: "gemm", baseline: true }, () => {
  qgemmInt32(gemmArgs);
});
Deno.bench("qlinearMatMul 256x256x256, dyadic requantization", { group: "gemm" }, () => {
  qlinearMatMul(gemmArgs);
});
Deno.bench("qlinearMatMul 256x256x256, float requantization", { group: "gemm" }, () => {
  qlinearMatMul(gemmArgs, { rounding: "float" });
});
Deno.bench("requantize 65536 accumulators, dyadic", { group: "requantize", baseline: true }, () => {
  requantize(acc, { multiplier: 0.0002, zeroPoint: 128, dtype: "uint8" });
});
Deno.bench("requantize 65536 accumulators, dyadic-single", { group: "requantize" }, () => {
  requantize(acc, { multiplier: 0.0002, zeroPoint: 128, dtype: "uint8", rounding: "dyadic-single" });
});
Deno.bench("requantize 65536 accumulators, float", { group: "requantize" }, () => {
  requantize(acc, { multiplier: 0.0002, zeroPoint: 128, dtype: "uint8", rounding: "float" });
});
Deno.bench("conv2dInt32 1x16x28x28 -> 32, 3x3, pad 1", { group: "conv", baseline: true }, () => {
  conv2dInt32(convArgs, { pads: 1 });
});
Deno.bench("qlinearConv 1x16x28x28 -> 32, 3x3, pad 1, per-channel, dyadic", { group: "conv" }, () => {
  qlinearConv(convArgs, { pads: 1 });
});
Deno.bench("simulateQLinearConv (float path) same conv", { group: "conv" }, () => {
  simulateQLinearConv(convArgs, { pads: 1 });
});
