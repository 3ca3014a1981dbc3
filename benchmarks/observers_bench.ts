// deno bench -A benchmarks/observers_bench.ts
// Every calibrator on 1M float32 values (one batch: observe + range), per-tensor and per-channel.
import { calibrate } from "../lib/quant/calibrate/mod.ts";
import type { Calibrator } from "../lib/quant/calibrate/observer.ts";
import type { QuantScheme } from "../lib/quant/params.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const N = 1 << 20;
const rng = new Prng(0);
const data = Float32Array.from({ length: N }, () => rng.nextNormal());
for (let i = 0; i < 100; i++) data[i * 9973] = 20 * (rng.nextFloat() - 0.5);
const x = Tensor.from(data);
const xc = Tensor.from(data, [64, N / 64]); // 64 channels along axis 0
const INT8: QuantScheme = { bits: 8, signed: true, symmetric: true, range: "restricted" };
const UINT8: QuantScheme = { bits: 8, signed: false, symmetric: false, range: "full" };

const cals: Calibrator[] = [
  calibrate.minMax(),
  calibrate.movingAverage(),
  calibrate.percentile(),
  calibrate.entropy(),
  calibrate.mse(),
  calibrate.aciq(),
  calibrate.aciq({ prior: "gaussian" }),
];

for (const cal of cals) {
  for (const [label, scheme] of [["int8 sym", INT8], ["uint8 asym", UINT8]] as const) {
    Deno.bench(`${cal} ${label}, 1M per-tensor`, { group: label }, () => {
      const o = cal.create({ scheme });
      o.observe(x);
      o.range();
    });
  }
  Deno.bench(`${cal} int8 sym, 1M per-channel (64 x 16384)`, { group: "per-channel" }, () => {
    const o = cal.create({ scheme: INT8, axis: 0 });
    o.observe(xc);
    o.range();
  });
}
