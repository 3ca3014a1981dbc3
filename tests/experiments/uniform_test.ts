import assert from "node:assert/strict";
import { measureError, uniformQuantization } from "../../lib/experiments/uniform.ts";
import { sample, slope } from "../../lib/experiments/sources.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";

Deno.test("uniform: uniform data on a full-range grid has the closed-form SQNR 20 log10(2^b - 2)", () => {
  // x ~ U(-a, a), restricted symmetric grid of 2^b - 1 levels over [-a, a]: step S = 2a / (2^b - 2),
  // noise S^2/12, signal a^2/3 -> SQNR = 10 log10(4 a^2 / S^2) = 20 log10(2^b - 2).
  const x = sample("uniform", 1 << 17, 4);
  for (const b of [4, 6, 8]) {
    const e = measureError(x, quantizer().int(b).symmetric());
    const expected = 20 * Math.log10(2 ** b - 2);
    assert.ok(Math.abs(e.sqnr - expected) < 0.1, `${b} bits: ${e.sqnr} vs ${expected}`);
  }
});

Deno.test("uniform: sources have the documented moments and slope fits lines exactly", () => {
  for (const d of ["gaussian", "laplacian", "uniform"] as const) {
    const x = sample(d, 1 << 16, 9);
    let m = 0, v = 0;
    for (const t of x) m += t / x.length;
    for (const t of x) v += (t - m) ** 2 / x.length;
    assert.ok(Math.abs(m) < 0.02 && Math.abs(v - 1) < 0.03, `${d}: mean ${m} var ${v}`);
  }
  const relu = sample("relu", 10000, 1);
  assert.ok(relu.every((v) => v >= 0));
  const out = sample("outliers", 100000, 2);
  assert.equal(out.filter((v) => Math.abs(v) >= 20).length, 10);
  assert.equal(slope([1, 2, 3, 4], [3, 5, 7, 9]), 2);
  assert.deepEqual(sample("gaussian", 5, 3), sample("gaussian", 5, 3));
});

Deno.test("uniform: the experiment shows ~6 dB/bit and the asymmetric gain on ReLU data", async () => {
  const r = await uniformQuantization({ quick: true, progress: "none" });
  for (const d of ["gaussian", "laplacian", "uniform"]) {
    assert.ok(Math.abs(r.numbers[`slope.${d}`] - 6.02) < 0.3, `${d} slope ${r.numbers[`slope.${d}`]}`);
    assert.ok(Math.abs(r.numbers[`mseRatio.${d}`] - 4) < 0.3);
  }
  assert.ok(r.numbers["asym.reluGainMin"] > 5);
  assert.ok(r.findings.length === 3 && r.findings.every((f) => f.holds), r.findingsText());
  assert.deepEqual(r.charts.map((c) => c.title).length, 4);
});
