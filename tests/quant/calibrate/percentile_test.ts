import assert from "node:assert/strict";
import { percentile } from "../../../lib/quant/calibrate/percentile.ts";
import { QuantlabError } from "../../../lib/errors.ts";
import type { QuantScheme } from "../../../lib/quant/params.ts";
import { Prng } from "../../../lib/tensor/prng.ts";
import { Tensor } from "../../../lib/tensor/tensor.ts";

const SYM: QuantScheme = { bits: 8, signed: true, symmetric: true, range: "restricted" };
const ASYM: QuantScheme = { bits: 8, signed: false, symmetric: false, range: "full" };

/** The inverted-CDF sample quantile x_(ceil(qN)). */
function exactQuantile(x: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(x).sort();
  return s[Math.max(0, Math.ceil(q * s.length) - 1)];
}

Deno.test("percentile of a uniform sample: closed form and exact sample quantile within a bin width", () => {
  const rng = new Prng(4);
  const n = 200000;
  const x = Float32Array.from({ length: n }, () => 2 * rng.nextFloat() - 1); // U(-1, 1)
  for (const p of [99, 99.9, 99.99]) {
    // asymmetric: [P_(100-p), P_p] of x
    const a = percentile({ percentile: p }).create({ scheme: ASYM });
    for (let i = 0; i < n; i += 50000) a.observe(Tensor.from(x.subarray(i, i + 50000)));
    const r = a.range();
    const w = 2 / 2048;
    assert.ok(Math.abs(r.max[0] - exactQuantile(x, p / 100)) <= w, `upper ${p}`);
    assert.ok(Math.abs(r.min[0] - exactQuantile(x, 1 - p / 100)) <= w, `lower ${p}`);
    assert.ok(Math.abs(r.max[0] - (2 * p / 100 - 1)) < 3e-3); // population quantile of U(-1, 1)
    // symmetric: P_p of |x| (|x| ~ U(0, 1))
    const s = percentile({ percentile: p }).create({ scheme: SYM });
    s.observe(Tensor.from(x));
    const t = s.range().max[0];
    assert.equal(s.range().min[0], -t);
    assert.ok(Math.abs(t - exactQuantile(x.map(Math.abs), p / 100)) <= 1 / 2048);
    assert.ok(Math.abs(t - p / 100) < 3e-3);
  }
});

Deno.test("percentile: explicit lower percentile, 100th percentile is min-max", () => {
  const rng = new Prng(8);
  const x = Float32Array.from({ length: 10000 }, () => rng.nextNormal());
  const o = percentile({ percentile: 90, lowerPercentile: 5 }).create({ scheme: ASYM });
  o.observe(Tensor.from(x));
  const w = (Math.max(...x) - Math.min(...x)) / 2048;
  assert.ok(Math.abs(o.range().min[0] - exactQuantile(x, 0.05)) <= w);
  assert.ok(Math.abs(o.range().max[0] - exactQuantile(x, 0.9)) <= w);
  const full = percentile({ percentile: 100 }).create({ scheme: ASYM });
  full.observe(Tensor.from(x));
  assert.equal(full.range().max[0], Math.max(...x));
  assert.equal(full.range().min[0], Math.min(...x));
});

Deno.test("percentile per-channel equals per-tensor on each channel", () => {
  const rng = new Prng(12);
  const data = Float32Array.from({ length: 4 * 3000 }, (_, i) => rng.nextNormal() * (1 + (i % 4)));
  const o = percentile({ percentile: 99 }).create({ scheme: SYM, axis: -1 });
  o.observe(Tensor.from(data, [3000, 4]));
  for (let c = 0; c < 4; c++) {
    const one = percentile({ percentile: 99 }).create({ scheme: SYM });
    one.observe(Tensor.from(data.filter((_, i) => i % 4 === c)));
    assert.equal(o.range().max[c], one.range().max[0]);
  }
});

Deno.test("percentile options are validated", () => {
  assert.throws(() => percentile({ percentile: 0 }), QuantlabError);
  assert.throws(() => percentile({ percentile: 101 }), QuantlabError);
  assert.throws(() => percentile({ percentile: 90, lowerPercentile: 95 }), QuantlabError);
  assert.equal(percentile().toString(), "percentile(percentile=99.99, bins=2048)");
  assert.equal(
    percentile({ percentile: 99, lowerPercentile: 0.5 }).toString(),
    "percentile(percentile=99, lowerPercentile=0.5, bins=2048)",
  );
});
