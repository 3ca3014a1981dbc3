/**
 * Peer comparison: per-channel int8 fake quantization with abs-max (symmetric, restricted) scales of a
 * 256 x 4096 float32 matrix, quantlab vs PyTorch (`amax` + `fake_quantize_per_channel_affine`, one thread),
 * in one run on the same input. Also checks that both outputs are bit-identical.
 *
 * Run: `deno run -A benchmarks/fake_quant_peer.ts` (PyTorch from /usr/bin/python3 or $QUANTLAB_PYTHON).
 *
 * @module
 */
import { printComparison, runPeer, timeMs } from "./peer_harness.ts";
import { quantizer } from "../lib/quant/quantizer.ts";
import { fakeQuantizeTensor } from "../lib/quant/affine.ts";
import { paramsFromRange, type QuantScheme } from "../lib/quant/params.ts";
import { slotMinMax } from "../lib/quant/slots.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { simdAvailable } from "../lib/tensor/simd.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const ROWS = 256, COLS = 4096, N = ROWS * COLS;
const ITER = { warmup: 5, iterations: 31 };
const w = new Prng(7).fillNormal(new Float32Array(N), 0, 0.05) as Float32Array;
const t = Tensor.from(w, [ROWS, COLS]);
const scheme: QuantScheme = { bits: 8, signed: true, symmetric: true, range: "restricted" };
const channel = { kind: "channel", axis: 0 } as const;
const q = quantizer().int(8).symmetric().perChannel(0);

// quantlab, three ways: the fluent builder (allocates its output), the kernels into a reused buffer, and
// fake quantization alone with fixed parameters.
const out = new Float32Array(N);
const kernels = () => {
  const { min, max } = slotMinMax(w, t.shape, channel, ROWS);
  return fakeQuantizeTensor(t, paramsFromRange(min, max, scheme, channel), { out });
};
const fixed = q.fit(t).params;
const oursBuilder = timeMs(() => q.fakeQuantize(t), ITER);
const oursKernels = timeMs(kernels, ITER);
const oursFq = timeMs(() => fakeQuantizeTensor(t, fixed, { out }), ITER);

const dir = await Deno.makeTempDir({ prefix: "quantlab_fq_peer" });
const input = `${dir}/w.f32`, output = `${dir}/torch_y.f32`;
await Deno.writeFile(input, new Uint8Array(w.buffer));
const peer = await runPeer<{ full: number; fq: number; threads: number; torch: string }>(
  new URL("./fake_quant_peer.py", import.meta.url),
  { input, output, rows: ROWS, cols: COLS, qmin: -127, qmax: 127, ...ITER },
);

let identical = "n/a (PyTorch unavailable)";
if (peer) {
  const theirs = new Float32Array((await Deno.readFile(output)).buffer);
  const ours = q.fakeQuantize(t).values.data;
  let diff = 0;
  for (let i = 0; i < N; i++) if (!Object.is(ours[i], theirs[i])) diff++;
  identical = diff === 0 ? `yes, all ${N} elements bit-identical` : `NO: ${diff} of ${N} elements differ`;
}
await Deno.remove(dir, { recursive: true });

const gps = (ms: number) => (N / ms / 1e6).toFixed(3);
printComparison(
  `per-channel int8 fake quantization, abs-max scales, ${ROWS} x ${COLS} float32 (one thread)`,
  `PyTorch ${peer?.torch ?? ""}`,
  [
    {
      name: "full path: quantizer().perChannel(0).fakeQuantize",
      oursMs: oursBuilder,
      peerMs: peer?.full ?? NaN,
      maxRatio: 0.25,
    },
    {
      name: "full path: slotMinMax + paramsFromRange + fakeQuantizeTensor(out)",
      oursMs: oursKernels,
      peerMs: peer?.full ?? NaN,
      maxRatio: 0.25,
    },
    { name: "fake quantization alone (fixed scales)", oursMs: oursFq, peerMs: peer?.fq ?? NaN },
  ],
);
console.log("");
console.log(
  `throughput G elements/s: quantlab builder ${gps(oursBuilder)}, kernels ${gps(oursKernels)}, fq alone ${
    gps(oursFq)
  };` +
    ` PyTorch full ${peer ? gps(peer.full) : "n/a"}, fq alone ${peer ? gps(peer.fq) : "n/a"} (threads=${
      peer?.threads ?? "n/a"
    })`,
);
console.log(
  `Wasm SIMD kernels: ${simdAvailable() ? "on" : "off (scalar fallback)"}; outputs identical to PyTorch: ${identical}`,
);
