import assert from "node:assert";
import { ternary } from "../../lib/extreme/ternary.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { normal, throwsCode } from "../nonuniform/helpers.ts";

const W = [0.9, -0.2, 0.05, -1.3, 0.6, 0.1, -0.75, 0.4];
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} vs ${b}`);

Deno.test("TWN on a known vector, by hand", () => {
  // mean|W| = 4.3 / 8 = 0.5375, delta = 0.7 * 0.5375 = 0.37625
  // beyond delta: 0.9, -1.3, 0.6, -0.75, 0.4 -> alpha = 3.95 / 5 = 0.79
  const { values, fitted } = ternary().fakeQuantize(W);
  const { codes } = ternary().quantize(W);
  close(fitted.thresholds[0], 0.37625, "delta");
  close(fitted.positiveScale[0], 0.79, "alpha");
  assert.strictEqual(fitted.positiveScale[0], fitted.negativeScale[0]);
  assert.deepStrictEqual(codes.toArray(), [1, 0, 0, -1, 1, 0, -1, 1]);
  const a = fitted.positiveScale[0];
  assert.deepStrictEqual(values.toArray(), [a, 0, 0, -a, a, 0, -a, a]);
  assert.strictEqual(fitted.sparsity(W), 3 / 8);
  // storage: 2-bit codes (or 1.6 bits packed 5 per byte) + one float32 scale
  assert.strictEqual(fitted.accounting().bitsPerWeight, 2 + 32 / 8);
  assert.strictEqual(fitted.accounting("base3").bitsPerWeight, 1.6 + 32 / 8);
  assert.strictEqual(
    fitted.toString(),
    "ternary(twn, threshold=0.7 x mean|W|, per-tensor, deterministic) delta=[0.3762] Wp=[0.7900] Wn=[0.7900]",
  );
  // a value exactly at the threshold is zero (|w| <= delta)
  const at = ternary().threshold(1).fit([1, -1, 1, -1]);
  assert.deepStrictEqual(at.codes([1, -1, 0.5]).toArray(), [0, 0, 0]);
  assert.deepStrictEqual(Array.from(at.positiveScale), [0]);
});

Deno.test("TTQ-style scales and settable thresholds, by hand", () => {
  const { values, fitted } = ternary().ttq().fakeQuantize(W);
  const { codes } = ternary().ttq().quantize(W);
  close(fitted.positiveScale[0], (0.9 + 0.6 + 0.4) / 3, "Wp");
  close(fitted.negativeScale[0], (1.3 + 0.75) / 2, "Wn");
  assert.deepStrictEqual(codes.toArray(), [1, 0, 0, -1, 1, 0, -1, 1]);
  close(values.data[3], -fitted.negativeScale[0], "negative value");
  assert.strictEqual(fitted.accounting().scaleBits, 64);
  // threshold factor 0.2 of mean|W|: delta = 0.1075; 0.1 and 0.05 drop, -0.2 survives
  const f2 = ternary().threshold(0.2).fit(W);
  assert.deepStrictEqual(f2.codes(W).toArray(), [1, -1, 0, -1, 1, 0, -1, 1]);
  // TTQ's paper threshold: 0.05 x max|W| = 0.065
  const f3 = ternary().ttq().threshold(0.05, { of: "max-abs" }).fit(W);
  close(f3.thresholds[0], 0.065, "max-abs delta");
  assert.deepStrictEqual(f3.codes(W).toArray(), [1, -1, 0, -1, 1, 1, -1, 1]);
  // per channel equals per tensor on each row
  const w = normal(5 * 40, 7);
  const fc = ternary().ttq().perChannel(0).fit(w, [5, 40]);
  const vals = fc.fakeQuantize(w, [5, 40]).data;
  for (let c = 0; c < 5; c++) {
    const row = w.subarray(c * 40, (c + 1) * 40);
    const ft = ternary().ttq().fit(row);
    assert.strictEqual(fc.thresholds[c], ft.thresholds[0]);
    assert.strictEqual(fc.positiveScale[c], ft.positiveScale[0]);
    assert.strictEqual(fc.negativeScale[c], ft.negativeScale[0]);
    assert.deepStrictEqual(vals.subarray(c * 40, (c + 1) * 40), ft.fakeQuantize(row).data);
  }
  assert.deepStrictEqual(fc.decode(fc.codes(w, [5, 40])).data, vals);
  // the TWN scale minimises the squared error for its codes
  const x = normal(2000, 8);
  const t = ternary().fit(x);
  const err = (a: number) => {
    const c = t.codes(x).data;
    let s = 0;
    for (let i = 0; i < x.length; i++) s += (x[i] - a * c[i]) ** 2;
    return s;
  };
  const a0 = t.positiveScale[0];
  assert.ok(err(a0) < err(a0 * 1.01) && err(a0) < err(a0 * 0.99));
  // sparsity grows with the threshold
  assert.ok(ternary().threshold(1.2).fit(x).sparsity(x) > t.sparsity(x));
});

Deno.test("stochastic ternarization is unbiased inside [-Wn, Wp] and seeded", () => {
  const f = ternary().ttq().rounding("stochastic", { seed: 9 }).fit(W);
  const wp = f.positiveScale[0], wn = f.negativeScale[0];
  const probes = [0.3, -0.5, 0.05, -0.01, wp, 2];
  const reps = 30000;
  const x = new Float32Array(probes.length * reps);
  for (let i = 0; i < x.length; i++) x[i] = probes[i % probes.length];
  const v = f.fakeQuantize(x).data;
  assert.deepStrictEqual(v, f.fakeQuantize(x).data);
  probes.forEach((p, j) => {
    let s = 0;
    for (let r = 0; r < reps; r++) {
      const q = v[r * probes.length + j];
      assert.ok(q === 0 || q === (p >= 0 ? wp : -wn), `${p} -> ${q}`);
      s += q;
    }
    const top = p >= 0 ? wp : wn;
    const expected = Math.sign(p) * Math.min(Math.abs(p), top);
    const pr = Math.min(1, Math.abs(p) / top);
    assert.ok(Math.abs(s / reps - expected) <= 5 * top * Math.sqrt(pr * (1 - pr) / reps) + 1e-6, `w ${p}: ${s / reps}`);
  });
});

Deno.test("ternary: bad input raises typed errors", () => {
  for (const f of [0, -0.5, NaN, Infinity]) throwsCode(() => ternary().threshold(f), "INVALID_ARGUMENT");
  throwsCode(() => ternary().threshold(0.5, { of: "median" as "max-abs" }), "INVALID_ARGUMENT");
  throwsCode(() => ternary().scales("lsq" as "twn"), "INVALID_ARGUMENT");
  throwsCode(() => ternary().fit([]), "EMPTY_TENSOR");
  throwsCode(() => ternary().fit([0.1, NaN]), "NON_FINITE");
  throwsCode(() => ternary().ttq().perChannel(0).fit([0.1, 1, 2, -Infinity], [2, 2]), "NON_FINITE");
  throwsCode(() => ternary().perChannel(-3).fit([1, 2, 3, 4], [2, 2]), "AXIS_OUT_OF_RANGE");
  const f = ternary().perChannel(0).fit([1, 2, 3, 4], [2, 2]);
  throwsCode(() => f.codes([1, 2, 3], [3, 1]), "SHAPE_MISMATCH");
  throwsCode(() => f.decode(new Tensor(new Int8Array(4), [4, 1])), "SHAPE_MISMATCH");
  throwsCode(() => f.accounting("4bit" as "2bit"), "INVALID_ARGUMENT");
});
