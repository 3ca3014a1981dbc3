import assert from "node:assert/strict";
import { runAffineRound, runMinMax, simdAvailable, useSimd } from "../../lib/tensor/simd.ts";
import { Prng } from "../../lib/tensor/prng.ts";

function both(fn: () => void): void {
  useSimd(true);
  fn();
  useSimd(false);
  try {
    fn();
  } finally {
    useSimd(true);
  }
}

Deno.test("Wasm SIMD kernels load here (Deno/V8 has Wasm SIMD)", () => {
  assert.ok(simdAvailable());
});

Deno.test("runMinMax over odd lengths, offsets and chunk boundaries", () => {
  const rng = new Prng(1);
  const x = rng.fillNormal(new Float32Array(40000)) as Float32Array;
  const out = new Float64Array(2);
  both(() => {
    for (const [a, b] of [[0, 40000], [3, 35], [5, 16389], [16384, 32771], [7, 7], [100, 101]]) {
      let lo = Infinity, hi = -Infinity;
      for (let i = a; i < b; i++) {
        lo = Math.min(lo, x[i]);
        hi = Math.max(hi, x[i]);
      }
      assert.ok(runMinMax(x, a, b, out));
      assert.deepEqual([out[0], out[1]], [lo, hi], `${a}..${b}`);
    }
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const at of [0, 17, 16390, 39999]) {
        const y = x.slice();
        y[at] = bad;
        assert.equal(runMinMax(y, 0, 40000, out), false, `${bad} at ${at}`);
        assert.equal(runMinMax(y, 0, at, out), true);
      }
    }
  });
});

Deno.test("runAffineRound: ties to even, clamping, +0 for -0, exact float32 products", () => {
  both(() => {
    const n = 64;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i - 32) / 2 - (i % 2 ? 0 : 0.001); // halves and near-halves
    x[0] = -0;
    const y = new Float32Array(n);
    assert.ok(runAffineRound(x, y, 0, n, 1, Math.fround(0.1), -10, 9)); // S must be a float32 value
    for (let i = 0; i < n; i++) {
      const v = x[i];
      let q = Math.round(v);
      if (v - Math.floor(v) === 0.5 && q % 2 !== 0) q -= 1;
      q = Math.min(9, Math.max(-10, q)) + 0;
      assert.ok(Object.is(y[i], Math.fround(q * Math.fround(0.1))), `i=${i} x=${v} got ${y[i]}`);
    }
    const bad = x.slice();
    bad[40] = NaN;
    assert.equal(runAffineRound(bad, y, 0, n, 1, 1, -10, 9), false);
    bad[40] = Infinity;
    assert.equal(runAffineRound(bad, y, 0, n, 1, 1, -10, 9), false);
  });
});
