import assert from "node:assert/strict";
import { Prng } from "../../lib/tensor/prng.ts";

Deno.test("determinism: same seed, same sequence; different seeds differ; known first outputs", () => {
  const a = new Prng(12345), b = new Prng(12345), c = new Prng(12346);
  const sa = Array.from({ length: 20 }, () => a.nextUint32());
  const sb = Array.from({ length: 20 }, () => b.nextUint32());
  const sc = Array.from({ length: 20 }, () => c.nextUint32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  for (const v of sa) assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32);
  // pinned values (the generator before seeds were hashed in full): any change to the generator or to the seeding
  // of seeds below 2^32 breaks reproducibility of experiments and committed fixtures
  for (const [seed, want] of PINNED) {
    const p = new Prng(seed);
    assert.deepEqual([p.nextUint32(), p.nextUint32(), p.nextUint32()], want, `seed ${seed}`);
  }
  // seeds are hashed in full (issue 15): 2^32 + 5 is not 5
  assert.notEqual(new Prng(2 ** 32 + 5).nextUint32(), new Prng(5).nextUint32());
});
const PINNED: [number, number[]][] = [
  [0, [3809008728, 1133695204, 53579671]],
  [5, [3616982058, 3568987857, 2681310436]],
  [12345, [518667457, 440444462, 4232892992]],
  [2 ** 32 - 1, [835879718, 1921286648, 2356205009]],
];

Deno.test("uniform floats: range, mean 1/2, variance 1/12, chi-square over 16 bins", () => {
  const p = new Prng(7), n = 200000;
  const bins = new Float64Array(16);
  let s = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    const u = p.nextFloat();
    assert.ok(u >= 0 && u < 1);
    s += u;
    s2 += u * u;
    bins[Math.floor(u * 16)]++;
  }
  const mean = s / n, variance = s2 / n - mean * mean;
  assert.ok(Math.abs(mean - 0.5) < 4 * Math.sqrt(1 / 12 / n));
  assert.ok(Math.abs(variance - 1 / 12) < 0.002);
  let chi = 0;
  for (const b of bins) chi += (b - n / 16) ** 2 / (n / 16);
  assert.ok(chi < 37.7, `chi-square ${chi}`); // 15 dof, p = 0.001
  const out = p.fillUniform(new Float32Array(100));
  assert.ok(out.every((v) => v >= 0 && v <= 1));
});

Deno.test("nextInt is unbiased over [0, n); shuffle is a permutation", () => {
  const p = new Prng(3);
  const counts = new Float64Array(7);
  const n = 70000;
  for (let i = 0; i < n; i++) counts[p.nextInt(7)]++;
  for (const c of counts) assert.ok(Math.abs(c - n / 7) < 4 * Math.sqrt(n / 7));
  assert.equal(p.nextInt(1), 0);
  const arr = Array.from({ length: 50 }, (_, i) => i);
  p.shuffle(arr);
  assert.deepEqual([...arr].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.notDeepEqual(arr, Array.from({ length: 50 }, (_, i) => i));
});

Deno.test("normal and Laplace moments", () => {
  const p = new Prng(11), n = 200000;
  const x = p.fillNormal(new Float64Array(n), 2, 3);
  let m = 0, v = 0, k = 0;
  for (const e of x) m += e;
  m /= n;
  for (const e of x) {
    v += (e - m) ** 2;
    k += (e - m) ** 4;
  }
  v /= n;
  k = k / n / (v * v);
  assert.ok(Math.abs(m - 2) < 4 * 3 / Math.sqrt(n));
  assert.ok(Math.abs(v - 9) < 0.15);
  assert.ok(Math.abs(k - 3) < 0.1, `kurtosis ${k}`);
  let lm = 0, la = 0;
  for (let i = 0; i < n; i++) {
    const l = p.nextLaplace(0.5);
    lm += l;
    la += Math.abs(l);
  }
  assert.ok(Math.abs(lm / n) < 0.01);
  assert.ok(Math.abs(la / n - 0.5) < 0.01); // E|X| = b
});
