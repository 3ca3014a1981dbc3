import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import {
  checkRoundingMode,
  ROUND_MAGIC,
  roundArray,
  rounder,
  roundHalfAway,
  roundHalfEven,
  ROUNDING_MODES,
} from "../../lib/quant/rounding.ts";
import { Prng } from "../../lib/tensor/prng.ts";

const CASES = [-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -2.3, 2.7, 0.49999997, -0.49999997, 1e6 + 0.5, 0, 7];
const WANT: Record<string, number[]> = {
  "nearest-even": [-4, -2, -2, 0, 0, 2, 2, 4, -2, 3, 0, 0, 1e6, 0, 7],
  "nearest-away": [-4, -3, -2, -1, 1, 2, 3, 4, -2, 3, 0, 0, 1e6 + 1, 0, 7],
  floor: [-4, -3, -2, -1, 0, 1, 2, 3, -3, 2, 0, -1, 1e6, 0, 7],
  ceil: [-3, -2, -1, 0, 1, 2, 3, 4, -2, 3, 1, 0, 1e6 + 1, 0, 7],
};

Deno.test("deterministic modes on hand cases: scalar functions, rounder() and roundArray() agree", () => {
  for (const [mode, want] of Object.entries(WANT)) {
    const r = rounder(mode as "floor");
    assert.deepEqual(CASES.map((x) => r(x) + 0), want, mode);
    assert.deepEqual(Array.from(roundArray(CASES, mode as "floor")).map((v) => v + 0), want, mode);
  }
  assert.deepEqual(CASES.map((x) => roundHalfEven(x) + 0), WANT["nearest-even"]);
  assert.deepEqual(CASES.map((x) => roundHalfAway(x) + 0), WANT["nearest-away"]);
  assert.equal(ROUND_MAGIC, 1.5 * 2 ** 52);
});

Deno.test("roundHalfEven equals IEEE round-to-nearest-even (Float32Array conversion) on random halves", () => {
  const rng = new Prng(3);
  for (let i = 0; i < 5000; i++) {
    const k = rng.nextInt(2 ** 20) - 2 ** 19;
    const x = k + (rng.nextFloat() < 0.5 ? 0.5 : rng.nextFloat());
    const r = roundHalfEven(x);
    assert.ok(Number.isInteger(r) && Math.abs(r - x) <= 0.5);
    if (Math.abs(r - x) === 0.5) assert.equal(Math.abs(r % 2), 0, `${x} -> ${r}`);
  }
});

Deno.test("roundArray writes into a given output and is seeded for stochastic rounding", () => {
  const out = new Float32Array(3);
  assert.equal(roundArray([0.5, 1.5, 2.5], "nearest-even", { out }), out);
  assert.deepEqual(Array.from(out), [0, 2, 2]);
  const x = new Prng(1).fillNormal(new Float64Array(100));
  const a = roundArray(x, "stochastic", { seed: 5 }), b = roundArray(x, "stochastic", { seed: 5 });
  const c = roundArray(x, "stochastic", { seed: 6 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  for (let i = 0; i < 100; i++) assert.ok(a[i] === Math.floor(x[i]) || a[i] === Math.ceil(x[i]));
  // integers never move
  assert.deepEqual(Array.from(roundArray([-3, 0, 4], "stochastic", { seed: 1 })), [-3, 0, 4]);
});

Deno.test("stochastic rounding is unbiased (|mean error| < 4 sigma/sqrt(n), shrinking with n) with variance frac(1-frac)", () => {
  const rng = new Prng(77);
  for (let trial = 0; trial < 8; trial++) {
    const x = rng.nextNormal() * 10;
    const frac = x - Math.floor(x);
    const pq = frac * (1 - frac);
    let prevBound = Infinity;
    for (const n of [1000, 10000, 100000]) {
      const y = roundArray(new Float64Array(n).fill(x), "stochastic", { seed: trial * 31 + n });
      let mean = 0, m2 = 0;
      for (const v of y) {
        mean += v - x;
        m2 += (v - x) ** 2;
      }
      mean /= n;
      const variance = m2 / n - mean * mean;
      const bound = 4 * Math.sqrt(pq / n);
      assert.ok(Math.abs(mean) < bound, `x=${x} n=${n} mean=${mean} bound=${bound}`);
      assert.ok(bound < prevBound);
      prevBound = bound;
      assert.ok(
        Math.abs(variance - pq) <= 4 * Math.sqrt(pq * (1 - 4 * pq) / n) + 1e-9,
        `x=${x} n=${n} var=${variance}`,
      );
    }
  }
});

Deno.test("rounder('stochastic') draws from the given Prng; checkRoundingMode rejects unknown names", () => {
  const a = rounder("stochastic", new Prng(9)), b = rounder("stochastic", new Prng(9));
  for (let i = 0; i < 50; i++) assert.equal(a(i / 7), b(i / 7));
  for (const m of ROUNDING_MODES) assert.equal(checkRoundingMode(m), m);
  assert.throws(
    () => checkRoundingMode("round"),
    (e: unknown) => e instanceof QuantlabError && e.code === "INVALID_ARGUMENT",
  );
});
