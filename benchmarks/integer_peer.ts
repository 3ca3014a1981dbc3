/**
 * Peer comparison: quantlab's integer-only kernels vs PyTorch's quantized engine (QNNPACK), one thread,
 * same inputs in one run: u8 x s8 GEMM 256x256x256 (quantized `linear`) and conv 1x16x28x28 -> 32
 * channels, 3x3, pad 1, per-channel weight scales, int32 bias. Also counts how many output codes agree.
 *
 * Run: `deno run -A benchmarks/integer_peer.ts` (PyTorch from /usr/bin/python3 or $QUANTLAB_PYTHON).
 *
 * @module
 */
import { printComparison, runPeer, timeMs } from "./peer_harness.ts";
import { qlinearConv } from "../lib/integer/conv.ts";
import { qgemmInt32, qlinearMatMul } from "../lib/integer/gemm.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const ITER = { warmup: 3, iterations: 15 };
const rng = new Prng(2024);
const u8 = (n: number) => Uint8Array.from({ length: n }, () => rng.nextInt(256));
const i8 = (n: number) => Int8Array.from({ length: n }, () => rng.nextInt(255) - 127);

const M = 256, K = 256, N = 256;
const gemm = {
  a: new Tensor(u8(M * K), [M, K]),
  aScale: Math.fround(0.02),
  aZeroPoint: 128,
  b: new Tensor(i8(N * K), [N, K]),
  bScale: Math.fround(0.004),
  bZeroPoint: 0,
  transB: true,
  yScale: Math.fround(0.6),
  yZeroPoint: 128,
  yDtype: "uint8" as const,
};
const C = 16, H = 28, W = 28, OC = 32;
const conv = {
  x: new Tensor(u8(C * H * W), [1, C, H, W]),
  xScale: Math.fround(0.02),
  xZeroPoint: 128,
  w: new Tensor(i8(OC * C * 9), [OC, C, 3, 3]),
  wScale: Array.from({ length: OC }, (_, i) => Math.fround(0.003 + 0.0001 * i)),
  wZeroPoint: 0,
  bias: Int32Array.from({ length: OC }, () => rng.nextInt(4001) - 2000),
  yScale: Math.fround(0.25),
  yZeroPoint: 128,
};

const tGemm = timeMs(() => qgemmInt32(gemm), ITER);
const tLinear = timeMs(() => qlinearMatMul(gemm), ITER);
const tLinearFloat = timeMs(() => qlinearMatMul(gemm, { rounding: "float" }), ITER);
const tConv = timeMs(() => qlinearConv(conv, { pads: 1 }), ITER);

const dir = await Deno.makeTempDir({ prefix: "quantlab_integer_peer" });
await Deno.writeFile(`${dir}/a.u8`, gemm.a.data as Uint8Array);
await Deno.writeFile(`${dir}/b.i8`, new Uint8Array((gemm.b.data as Int8Array).buffer));
await Deno.writeFile(`${dir}/x.u8`, conv.x.data as Uint8Array);
await Deno.writeFile(`${dir}/w.i8`, new Uint8Array((conv.w.data as Int8Array).buffer));
const peer = await runPeer<Record<string, number> & { torch: string; engine: string }>(
  new URL("./integer_peer.py", import.meta.url),
  {
    ...ITER,
    gemm: {
      a: `${dir}/a.u8`,
      b: `${dir}/b.i8`,
      out: `${dir}/y_linear.u8`,
      m: M,
      k: K,
      n: N,
      aScale: gemm.aScale,
      aZeroPoint: gemm.aZeroPoint,
      bScale: gemm.bScale,
      yScale: gemm.yScale,
      yZeroPoint: gemm.yZeroPoint,
    },
    conv: {
      x: `${dir}/x.u8`,
      w: `${dir}/w.i8`,
      out: `${dir}/y_conv.u8`,
      xShape: conv.x.shape,
      wShape: conv.w.shape,
      xScale: conv.xScale,
      xZeroPoint: conv.xZeroPoint,
      wScale: conv.wScale,
      bias: Array.from(conv.bias),
      pad: 1,
      yScale: conv.yScale,
      yZeroPoint: conv.yZeroPoint,
    },
  },
);

function agreement(ours: ArrayLike<number>, path: string): string {
  const theirs = Deno.readFileSync(path);
  let exact = 0, maxDiff = 0;
  for (let i = 0; i < theirs.length; i++) {
    const d = Math.abs(ours[i] - theirs[i]);
    if (d === 0) exact++;
    maxDiff = Math.max(maxDiff, d);
  }
  return `${exact}/${theirs.length} codes identical, max diff ${maxDiff}`;
}
const notes: string[] = [];
if (peer) {
  notes.push(`linear dyadic: ${agreement(qlinearMatMul(gemm).data, `${dir}/y_linear.u8`)}`);
  notes.push(`linear float: ${agreement(qlinearMatMul(gemm, { rounding: "float" }).data, `${dir}/y_linear.u8`)}`);
  notes.push(`conv dyadic: ${agreement(qlinearConv(conv, { pads: 1 }).data, `${dir}/y_conv.u8`)}`);
}
await Deno.remove(dir, { recursive: true });

printComparison(
  "integer-only kernels vs PyTorch quantized (one thread)",
  `PyTorch ${peer?.torch ?? ""} ${peer?.engine ?? ""}`,
  [
    { name: "qgemmInt32 256^3 (int32 out) vs linear, prepacked", oursMs: tGemm, peerMs: peer?.linear_prepacked ?? NaN },
    {
      name: "qlinearMatMul 256^3 dyadic vs linear, prepacked",
      oursMs: tLinear,
      peerMs: peer?.linear_prepacked ?? NaN,
    },
    {
      name: "qlinearMatMul 256^3 float requant vs linear, prepacked",
      oursMs: tLinearFloat,
      peerMs: peer?.linear_prepacked ?? NaN,
    },
    {
      name: "qlinearMatMul 256^3 dyadic vs functional linear (packs per call)",
      oursMs: tLinear,
      peerMs: peer?.linear_functional ?? NaN,
    },
    { name: "qlinearConv 1x16x28x28->32 3x3 vs conv2d, prepacked", oursMs: tConv, peerMs: peer?.conv_prepacked ?? NaN },
    {
      name: "qlinearConv 1x16x28x28->32 3x3 vs functional conv2d (packs per call)",
      oursMs: tConv,
      peerMs: peer?.conv_functional ?? NaN,
    },
  ],
);
console.log("");
for (const n of notes) console.log(`- ${n}`);
const gops = (ms: number, ops: number) => (ops / ms / 1e6).toFixed(2);
console.log(
  `- quantlab GOP/s: gemm ${gops(tGemm, 2 * M * N * K)}, conv ${gops(tConv, 2 * OC * C * 9 * H * W)}`,
);
