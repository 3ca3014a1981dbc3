import assert from "node:assert";
import { binary } from "../../lib/extreme/binary.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { normal, throwsCode } from "../nonuniform/helpers.ts";

Deno.test("BinaryConnect: sign with sign(0) = +1, no scale, 1 bit per weight", () => {
  const { values, fitted } = binary().fakeQuantize([0, -0, -1e-30, 2.5, -3]);
  const signs = binary().quantize([0, -0, -1e-30, 2.5, -3]).codes;
  assert.deepStrictEqual(values.toArray(), [1, 1, -1, 1, -1]);
  assert.deepStrictEqual(signs.toArray(), [1, 1, -1, 1, -1]);
  assert.strictEqual(signs.dtype, "int8");
  assert.deepStrictEqual(Array.from(fitted.scales), [1]);
  const a = fitted.accounting();
  assert.strictEqual(a.bitsPerWeight, 1);
  assert.strictEqual(a.compressionRatio, 32);
  assert.strictEqual(binary().binaryConnect().toString(), "binary(sign, per-tensor, deterministic)");
});

Deno.test("XNOR-Net: alpha = mean|W| per output channel, by hand", () => {
  const w = [1, -2, 3, 0, 0.5, -0.5, 0.25, -0.75];
  const { values, fitted } = binary().xnor().fakeQuantize(w, [2, 4]);
  assert.deepStrictEqual(Array.from(fitted.scales), [1.5, 0.5]);
  assert.deepStrictEqual(values.toArray(), [1.5, -1.5, 1.5, 1.5, 0.5, -0.5, 0.5, -0.5]);
  assert.deepStrictEqual(Array.from(values.shape), [2, 4]);
  assert.strictEqual(fitted.decode(fitted.signs(w, [2, 4])).toArray().join(), values.toArray().join());
  // per-tensor mean|W| = 8 / 8
  assert.deepStrictEqual(Array.from(binary().scale("mean-abs").fit(w).scales), [1]);
  // alpha = mean|W| is the least-squares scale for fixed signs: perturbing it raises the error
  const x = normal(1000, 3);
  const f = binary().scale("mean-abs").fit(x);
  const err = (a: number) => x.reduce((s, v) => s + (v - a * (v >= 0 ? 1 : -1)) ** 2, 0);
  const a0 = f.scales[0];
  assert.ok(err(a0) < err(a0 * 1.01) && err(a0) < err(a0 * 0.99));
  // per-channel along axis 1 of a [4, 2] layout equals the [2, 4] case transposed
  const wt = [1, 0.5, -2, -0.5, 3, 0.25, 0, -0.75];
  assert.deepStrictEqual(Array.from(binary().xnor(1).fit(wt, [4, 2]).scales), [1.5, 0.5]);
  assert.strictEqual(binary().xnor().fit(w, [2, 4]).accounting().bitsPerWeight, 1 + 64 / 8);
  assert.match(binary().xnor().fit(w, [2, 4]).toString(), /scales=\[1\.500, 0\.5000\]/);
});

Deno.test("stochastic binarization: hard-sigmoid probability, unbiased, seeded", () => {
  const probes = [-1, -0.6, -0.1, 0, 0.3, 0.9, 1.5];
  const reps = 30000;
  const x = new Float32Array(probes.length * reps);
  for (let i = 0; i < x.length; i++) x[i] = probes[i % probes.length];
  const q = binary().rounding("stochastic", { seed: 5 });
  const a = q.fakeQuantize(x).values.data, b = q.fakeQuantize(x).values.data;
  assert.deepStrictEqual(a, b);
  assert.notDeepStrictEqual(a, binary().rounding("stochastic", { seed: 6 }).fakeQuantize(x).values.data);
  probes.forEach((p, j) => {
    let s = 0;
    for (let r = 0; r < reps; r++) s += a[r * probes.length + j];
    const mean = s / reps;
    const expected = Math.max(-1, Math.min(1, p)); // E[b] = 2 hard_sigmoid(w) - 1
    const pr = Math.max(0, Math.min(1, (p + 1) / 2));
    const sd = 2 * Math.sqrt(pr * (1 - pr) / reps);
    assert.ok(Math.abs(mean - expected) <= 5 * sd + 1e-12, `w ${p}: mean ${mean}`);
  });
  // with a scale, p = hard_sigmoid(w / alpha), so E[alpha b] = w inside [-alpha, alpha]
  const w = new Float32Array(100000).fill(0.2);
  w[0] = -1; // mean|W| = (99999 * 0.2 + 1) / 100000
  const r = binary().scale("mean-abs").rounding("stochastic", { seed: 1 }).fakeQuantize(w);
  const alpha = r.fitted.scales[0];
  let s = 0;
  for (let i = 1; i < w.length; i++) s += r.values.data[i];
  assert.ok(Math.abs(s / (w.length - 1) - 0.2) < 5 * alpha / Math.sqrt(w.length), `${s / (w.length - 1)}`);
});

Deno.test("binary: bad input raises typed errors", () => {
  throwsCode(() => binary().fit([]), "EMPTY_TENSOR");
  throwsCode(() => binary().fit([1, NaN]), "NON_FINITE");
  throwsCode(() => binary().quantize([1, -Infinity]), "NON_FINITE");
  throwsCode(() => binary().xnor().fit([1, 2, NaN, 3], [2, 2]), "NON_FINITE");
  throwsCode(() => binary().scale("mean-abs").quantize([Infinity, 1]), "NON_FINITE");
  throwsCode(() => binary().xnor(3).fit([1, 2, 3, 4], [2, 2]), "AXIS_OUT_OF_RANGE");
  throwsCode(() => binary().perChannel(1.5), "AXIS_OUT_OF_RANGE");
  throwsCode(() => binary().scale("max" as "none"), "INVALID_ARGUMENT");
  throwsCode(() => binary().rounding("nearest" as "deterministic"), "INVALID_ARGUMENT");
  throwsCode(() => binary().rounding("stochastic", { seed: 0.5 }), "INVALID_ARGUMENT");
  const f = binary().xnor().fit([1, 2, 3, 4], [2, 2]);
  throwsCode(() => f.fakeQuantize([1, 2, 3, 4, 5, 6], [3, 2]), "SHAPE_MISMATCH");
  throwsCode(() => f.decode(new Tensor(new Int8Array(3), [3])), "SHAPE_MISMATCH");
});
