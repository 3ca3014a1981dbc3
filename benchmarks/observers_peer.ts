// deno run -A benchmarks/observers_peer.ts
// KL (entropy) calibration of 1M float32 values against PyTorch's HistogramObserver (forward +
// calculate_qparams), and min-max / moving average against their PyTorch observers, same inputs,
// same run, one thread each. Prints a table with speed-ups (PyTorch ms / quantlab ms).
import { printComparison, runPeer, timeMs } from "./peer_harness.ts";
import { calibrate } from "../lib/quant/calibrate/mod.ts";
import type { Calibrator } from "../lib/quant/calibrate/observer.ts";
import { paramsFromRange, type QuantScheme } from "../lib/quant/params.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const N = 1_000_000;
const rng = new Prng(0);
const data = Float32Array.from({ length: N }, () => rng.nextNormal());
for (let i = 0; i < 100; i++) data[i * 9973] = 20 * (rng.nextFloat() - 0.5);
const x = Tensor.from(data);
const INT8: QuantScheme = { bits: 8, signed: true, symmetric: true, range: "full" }; // torch.qint8 symmetric

const path = await Deno.makeTempFile({ suffix: ".f32" });
await Deno.writeFile(path, new Uint8Array(data.buffer));
const iterations = 11;
const peer = await runPeer<Record<string, number | string>>(new URL("./observers_peer.py", import.meta.url), {
  path,
  iterations,
});
await Deno.remove(path);

function run(cal: Calibrator) {
  const o = cal.create({ scheme: INT8 });
  o.observe(x);
  const r = o.range();
  return paramsFromRange(r.min, r.max, INT8, { kind: "tensor" });
}
const ours = (cal: Calibrator) => timeMs(() => run(cal), { iterations });
const p = (k: string) => (peer && typeof peer[k] === "number" ? peer[k] as number : NaN);

printComparison("Range calibration of 1M float32 values (per-tensor int8 symmetric, one thread)", "PyTorch", [
  {
    name: "entropy (KL, 2048 bins) vs HistogramObserver",
    oursMs: ours(calibrate.entropy()),
    peerMs: p("histogram"),
    maxRatio: 1,
  },
  { name: "minMax vs MinMaxObserver", oursMs: ours(calibrate.minMax()), peerMs: p("minmax") },
  {
    name: "movingAverage vs MovingAverageMinMaxObserver",
    oursMs: ours(calibrate.movingAverage()),
    peerMs: p("movingaverage"),
  },
  {
    name: "percentile (not in PyTorch) vs HistogramObserver",
    oursMs: ours(calibrate.percentile()),
    peerMs: p("histogram"),
  },
  { name: "mse (not in PyTorch) vs HistogramObserver", oursMs: ours(calibrate.mse()), peerMs: p("histogram") },
]);
const kl = run(calibrate.entropy()).scale[0];
console.log(
  `\nscales: quantlab entropy ${kl.toPrecision(6)}, PyTorch HistogramObserver (L2 search) ${
    Number(p("histogram_scale")).toPrecision(6)
  }, min-max ${run(calibrate.minMax()).scale[0].toPrecision(6)} (torch ${peer?.torch ?? "n/a"})`,
);
