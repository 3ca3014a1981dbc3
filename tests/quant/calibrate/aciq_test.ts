import assert from "node:assert/strict";
import fixture from "../../fixtures/observers.json" with { type: "json" };
import { aciq, SlotMoments } from "../../../lib/quant/calibrate/aciq.ts";
import { aciqMultiplier, erfc, lambertW } from "../../../lib/quant/calibrate/aciq_alpha.ts";
import { QuantlabError } from "../../../lib/errors.ts";
import type { QuantScheme } from "../../../lib/quant/params.ts";
import { Prng } from "../../../lib/tensor/prng.ts";
import { Tensor } from "../../../lib/tensor/tensor.ts";

const ASYM = (bits: number): QuantScheme => ({ bits, signed: true, symmetric: false, range: "full" });
const SYM = (bits: number): QuantScheme => ({ bits, signed: true, symmetric: true, range: "restricted" });

Deno.test("ACIQ multipliers reproduce the paper's table (bits 2..8, Laplace 9 bits)", () => {
  const laplace = [2.83, 3.89, 5.03, 6.2, 7.41, 8.64, 9.89, 11.16];
  const gauss = [1.71, 2.15, 2.55, 2.94, 3.29, 3.61, 3.92, 4.2];
  for (let i = 0; i < 8; i++) {
    // The paper's two decimals are truncated (3.897 is printed 3.89).
    assert.ok(Math.abs(aciqMultiplier("laplace", i + 2) - laplace[i]) < 0.01, `laplace ${i + 2}`);
    assert.ok(Math.abs(aciqMultiplier("gaussian", i + 2) - gauss[i]) < 0.02, `gaussian ${i + 2}`);
  }
});

Deno.test("ACIQ multipliers equal scipy's minimisers of the paper's MSE formulas, bits 2..16", () => {
  fixture.aciq.bits.forEach((bits, i) => {
    // minimize_scalar on a flat minimum is accurate to a few 1e-7.
    assert.ok(Math.abs(aciqMultiplier("laplace", bits) - fixture.aciq.laplace[i]) < 1e-6, `laplace ${bits}`);
    assert.ok(Math.abs(aciqMultiplier("gaussian", bits) - fixture.aciq.gaussian[i]) < 1e-6, `gaussian ${bits}`);
  });
  // Our Gaussian multipliers sit at a zero of the derivative of E(alpha) (central differences).
  for (let m = 2; m <= 16; m++) {
    const a = aciqMultiplier("gaussian", m);
    const e = (x: number) =>
      (1 + x * x) * erfc(x / Math.SQRT2) - Math.sqrt(2 / Math.PI) * x * Math.exp(-x * x / 2) + x * x / (3 * 4 ** m);
    const h = 1e-4;
    assert.ok(e(a) <= e(a + h) && e(a) <= e(a - h), `gaussian minimum ${m}`);
  }
  // Increasing in the bit width.
  for (let m = 3; m <= 16; m++) {
    assert.ok(aciqMultiplier("laplace", m) > aciqMultiplier("laplace", m - 1));
    assert.ok(aciqMultiplier("gaussian", m) > aciqMultiplier("gaussian", m - 1));
  }
  assert.throws(() => aciqMultiplier("laplace", 1), QuantlabError);
  assert.throws(() => aciqMultiplier("laplace", 17), QuantlabError);
});

Deno.test("erfc and Lambert W against known values", () => {
  const known: [number, number][] = [
    [0, 1],
    [0.5, 0.4795001221869535],
    [1, 0.15729920705028513],
    [2, 0.004677734981047266],
    [2.5, 4.069520174449590e-4],
    [3, 2.209049699858544e-5],
    [4, 1.541725790028002e-8],
    [5, 1.537459794428035e-12],
    [-1, 1.8427007929497148],
  ];
  for (const [x, v] of known) assert.ok(Math.abs(erfc(x) / v - 1) < 1e-12, `erfc(${x})`);
  for (const z of [0.1, 1, Math.E, 48, 1e6, 3 * 4 ** 16]) {
    const w = lambertW(z);
    assert.ok(Math.abs(w * Math.exp(w) / z - 1) < 1e-13, `W(${z})`);
  }
  assert.ok(Math.abs(lambertW(Math.E) - 1) < 1e-15);
});

Deno.test("streamed moments equal the two-pass statistics", () => {
  const rng = new Prng(21);
  const x = Float32Array.from({ length: 9000 }, () => rng.nextNormal() * 3 + 100);
  const m = new SlotMoments();
  for (let i = 0; i < x.length; i += 2000) {
    const b = x.subarray(i, i + 2000);
    m.add(Tensor.from(b), { outer: 1, slots: 1, inner: b.length });
  }
  let mu = 0;
  for (const v of x) mu += v;
  mu /= x.length;
  let m2 = 0;
  for (const v of x) m2 += (v - mu) ** 2;
  assert.ok(Math.abs(m.mean[0] - mu) < 1e-10);
  assert.ok(Math.abs(m.m2[0] / m2 - 1) < 1e-10);
});

function laplaceSample(n: number, seed: number, b: number, mu = 0): Float32Array {
  const rng = new Prng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = rng.nextFloat() - 0.5;
    return mu - b * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  });
}

Deno.test("ACIQ Laplace: alpha = multiplier * E|x - mean|, centred at the mean (asymmetric)", () => {
  const x = laplaceSample(100000, 5, 0.5, 0.2);
  let mu = 0;
  for (const v of x) mu += v;
  mu /= x.length;
  let b = 0;
  for (const v of x) b += Math.abs(v - mu);
  b /= x.length;
  const obs = aciq().create({ scheme: ASYM(4) });
  for (let i = 0; i < x.length; i += 30000) obs.observe(Tensor.from(x.subarray(i, i + 30000)));
  const r = obs.range();
  const alpha = aciqMultiplier("laplace", 4) * b;
  // E|x - mean| from the histogram with per-bin sums: only the bin holding the mean is approximated.
  assert.ok(Math.abs(r.min[0] - (mu - alpha)) < 1e-3 * alpha, `${r.min[0]} vs ${mu - alpha}`);
  assert.ok(Math.abs(r.max[0] - (mu + alpha)) < 1e-3 * alpha);
  assert.ok(Math.abs(b - 0.5) < 0.01); // the sample's b is the prior's
});

Deno.test("ACIQ Gaussian: alpha = multiplier * sigma; symmetric T = |mean| + alpha", () => {
  const rng = new Prng(6);
  const x = Float32Array.from({ length: 50000 }, () => rng.nextNormal() * 2);
  x[3] = 40;
  let mu = 0, s2 = 0;
  for (const v of x) mu += v;
  mu /= x.length;
  for (const v of x) s2 += (v - mu) ** 2;
  const sigma = Math.sqrt(s2 / x.length);
  const obs = aciq({ prior: "gaussian" }).create({ scheme: SYM(3) });
  obs.observe(Tensor.from(x));
  const t = Math.abs(mu) + aciqMultiplier("gaussian", 3) * sigma;
  assert.ok(Math.abs(obs.range().max[0] - t) < 1e-9 * t);
  assert.ok(Math.abs(obs.range().min[0] + t) < 1e-9 * t);
});

Deno.test("ACIQ: more bits, wider (non-decreasing) clipping; never wider than min-max", () => {
  const x = laplaceSample(20000, 9, 1);
  for (const prior of ["laplace", "gaussian"] as const) {
    let prev = 0;
    for (let bits = 2; bits <= 16; bits++) {
      const o = aciq({ prior }).create({ scheme: SYM(bits) });
      o.observe(Tensor.from(x));
      const t = o.range().max[0];
      assert.ok(t >= prev, `${prior} ${bits}`);
      assert.ok(t <= Math.max(...x.map(Math.abs)));
      prev = t;
    }
  }
  const o = aciq().create({ scheme: ASYM(16) });
  o.observe(Tensor.from(x));
  assert.equal(o.range().min[0], Math.min(...x));
  assert.equal(o.range().max[0], Math.max(...x));
});

Deno.test("aciq options are validated", () => {
  // deno-lint-ignore no-explicit-any
  assert.throws(() => aciq({ prior: "cauchy" as any }), QuantlabError);
  assert.throws(() => aciq({ bins: 3 }), QuantlabError);
  assert.equal(aciq({ prior: "laplace", bins: 512 }).toString(), "aciq(prior=laplace, bins=512)");
});
