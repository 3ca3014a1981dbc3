import assert from "node:assert/strict";
import { formatMeanCi, studentTCdf, studentTQuantile, summarize } from "../../lib/stats/summary.ts";

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

Deno.test("Student t quantiles match the closed forms (df 1, 2, 4) and the normal limit", () => {
  for (const p of [0.6, 0.9, 0.95, 0.975, 0.995]) {
    // df = 1 (Cauchy): tan(π (p - 1/2)); df = 2: (2p - 1) / √(2 p (1 - p)).
    close(studentTQuantile(p, 1), Math.tan(Math.PI * (p - 0.5)), 1e-8 * Math.tan(Math.PI * (p - 0.5)), `df1 p${p}`);
    close(studentTQuantile(p, 2), (2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 1e-9, `df2 p${p}`);
    // df = 4: F(t) = 1/2 + (3/8) s (1 - s²/3) · ... in closed form F(t) = 1/2 + (t (t² + 6)) / (2 (t² + 4)^{3/2}).
    const t4 = studentTQuantile(p, 4);
    close(0.5 + (t4 * (t4 * t4 + 6)) / (2 * (t4 * t4 + 4) ** 1.5), p, 1e-12, `df4 p${p}`);
  }
  close(studentTQuantile(0.025, 4), -2.7764451051977987, 1e-9, "lower tail");
  close(studentTQuantile(0.975, 1e6), 1.959963984540054, 1e-5, "normal limit");
  close(studentTCdf(0, 3), 0.5, 1e-15, "cdf(0)");
});

Deno.test("t-interval of the mean against hand-computed cases", () => {
  // [1..5]: mean 3, s = √2.5, se = √0.5, t(0.975, 4) = 2.7764451051977987.
  const s = summarize([1, 2, 3, 4, 5]);
  assert.equal(s.n, 5);
  assert.equal(s.mean, 3);
  close(s.sd, Math.sqrt(2.5), 1e-14, "sd");
  close(s.se, Math.sqrt(0.5), 1e-14, "se");
  close(s.halfWidth, 2.7764451051977987 * Math.sqrt(0.5), 1e-9, "half width");
  assert.deepEqual([s.min, s.q25, s.median, s.q75, s.max], [1, 2, 3, 4, 5]);
  // Two values a, b: half width = t(0.975, 1) · |a - b| / 2 = 12.706204736174705 · |a - b| / 2.
  const two = summarize([10, 14]);
  close(two.halfWidth, 12.706204736174705 * 2, 1e-7, "n = 2");
  close(two.ci[0], 12 - 12.706204736174705 * 2, 1e-7, "n = 2 lower");
  // Three values: t(0.975, 2) = 4.302652729911275; [0, 3, 6]: s = 3, se = √3.
  close(summarize([0, 3, 6]).halfWidth, 4.302652729911275 * Math.sqrt(3), 1e-8, "n = 3");
  // A 90% interval uses t(0.95, n - 1); df 2: 2.919985580355516.
  close(summarize([0, 3, 6], 0.9).halfWidth, 2.919985580355516 * Math.sqrt(3), 1e-8, "90%");
  // Constant values: zero width; one value: no interval.
  assert.equal(summarize([2, 2, 2]).halfWidth, 0);
  assert.ok(Number.isNaN(summarize([7]).halfWidth));
  assert.equal(formatMeanCi(summarize([7])), "7.00");
  // Quantiles interpolate linearly (R type 7).
  const q = summarize([1, 2, 3, 4]);
  assert.deepEqual([q.q25, q.median, q.q75], [1.75, 2.5, 3.25]);
});

Deno.test("t-interval coverage is ~95% on normal samples (n = 5)", () => {
  let seed = 12345;
  const uniform = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  let covered = 0;
  const trials = 4000;
  for (let t = 0; t < trials; t++) {
    const s = summarize(Array.from({ length: 5 }, () => 2 + normal()));
    if (s.ci[0] <= 2 && 2 <= s.ci[1]) covered++;
  }
  close(covered / trials, 0.95, 0.015, "coverage");
});

Deno.test("summarize rejects empty and non-finite input", () => {
  assert.throws(() => summarize([]), /at least one/);
  assert.throws(() => summarize([1, NaN]), /non-finite/);
  assert.throws(() => summarize([1, 2], 1), /confidence level/);
});
