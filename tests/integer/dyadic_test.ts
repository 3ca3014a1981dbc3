import assert from "node:assert/strict";
import {
  dyadicApproximation,
  dyadicValue,
  frexp,
  quantizeMultiplier,
  quantizeMultipliers,
} from "../../lib/integer/dyadic.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Prng } from "../../lib/tensor/prng.ts";

interface Fixture {
  quantizeMultiplier: { m: number; multiplier: number; shift: number }[];
}
const fx: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/integer_multipliers.json", import.meta.url)),
);

Deno.test("quantizeMultiplier equals TFLite's QuantizeMultiplier (Python port) exactly", () => {
  assert.ok(fx.quantizeMultiplier.length > 200);
  let flushed = 0, large = 0;
  for (const { m, multiplier, shift } of fx.quantizeMultiplier) {
    const q = quantizeMultiplier(m);
    assert.equal(q.multiplier, multiplier, `M0 of ${m}`);
    assert.equal(q.shift, shift, `shift of ${m}`);
    assert.equal(q.rightShift, 31 - shift);
    if (multiplier === 0) flushed++;
    else {
      assert.ok(multiplier >= 2 ** 30 && multiplier < 2 ** 31);
      assert.ok(Math.abs(dyadicValue(q) - m) <= m * 2 ** -31, `relative error of ${m}`);
    }
    if (shift > 0) large++;
  }
  assert.ok(flushed >= 3 && large >= 5, "fixture covers flush-to-zero and multipliers >= 1");
});

Deno.test("quantizeMultipliers matches quantizeMultiplier element-wise", () => {
  const ms = [0.001, 0.5, 3.25, 1e-7];
  const { multipliers, shifts } = quantizeMultipliers(ms);
  ms.forEach((m, i) => {
    const q = quantizeMultiplier(m);
    assert.equal(multipliers[i], q.multiplier);
    assert.equal(shifts[i], q.shift);
  });
});

Deno.test("frexp is exact for normals, subnormals and extremes", () => {
  const rng = new Prng(5);
  const xs = [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1, 0.5, 0.75, 3];
  for (let i = 0; i < 1000; i++) xs.push(2 ** (rng.nextFloat() * 200 - 100) * (1 + rng.nextFloat()));
  for (const x of xs) {
    const { fraction, exponent } = frexp(x);
    assert.ok(fraction >= 0.5 && fraction < 1, `fraction of ${x}`);
    // reconstruct in two steps to avoid overflow/underflow of 2^exponent
    const half = Math.trunc(exponent / 2);
    assert.equal(fraction * 2 ** half * 2 ** (exponent - half), x);
  }
});

Deno.test("dyadicApproximation: bits, error target and fixed shift", async (t) => {
  await t.step("bits: b has exactly `bits` bits and error <= 2^-bits", () => {
    const rng = new Prng(3);
    for (let i = 0; i < 2000; i++) {
      const m = 10 ** (rng.nextFloat() * 10 - 7);
      const bits = 1 + rng.nextInt(31);
      const d = dyadicApproximation(m, { bits });
      assert.ok(d.b >= 2 ** (bits - 1) && d.b < 2 ** bits, `b=${d.b} bits=${bits}`);
      assert.equal(d.value, d.b * 2 ** -d.c);
      assert.ok(d.relError <= 2 ** -bits, `${m} ${bits} ${d.relError}`);
      assert.equal(d.relError, Math.abs(d.value - m) / m);
      // b is the nearest numerator for this c
      assert.ok(Math.abs(m * 2 ** d.c - d.b) <= 0.5 || d.b === 2 ** (bits - 1));
    }
  });
  await t.step("maxRelError picks the fewest bits", () => {
    for (const [m, target] of [[0.1, 1e-3], [0.7071, 1e-5], [123.456, 1e-7], [1e-5, 0.01]] as const) {
      const d = dyadicApproximation(m, { maxRelError: target });
      assert.ok(d.relError <= target);
      if (d.bits > 1) assert.ok(dyadicApproximation(m, { bits: d.bits - 1 }).relError > target);
    }
  });
  await t.step("closed forms", () => {
    const d = dyadicApproximation(0.375, { bits: 2 }); // 0.375 = 3/8
    assert.deepEqual([d.b, d.c, d.relError], [3, 3, 0]);
    const e = dyadicApproximation(0.3, { shift: 4 }); // round(4.8) = 5 -> 5/16
    assert.deepEqual([e.b, e.c], [5, 4]);
    assert.ok(Math.abs(e.relError - (0.3125 - 0.3) / 0.3) < 1e-15);
    const big = dyadicApproximation(1000, { bits: 4 }); // 1000 ~ 1024 = 8 * 2^7 -> c = -7
    assert.equal(big.value, 1024);
    assert.equal(big.c, -7);
  });
});

Deno.test("bad multipliers and precisions throw QuantlabError naming the argument", () => {
  const cases: [() => unknown, string, RegExp][] = [
    [() => quantizeMultiplier(0), "INVALID_ARGUMENT", /multiplier must be > 0/],
    [() => quantizeMultiplier(-0.5), "INVALID_ARGUMENT", /multiplier must be > 0/],
    [() => quantizeMultiplier(NaN), "NON_FINITE", /multiplier/],
    [() => quantizeMultiplier(Infinity, "effective scale"), "NON_FINITE", /effective scale/],
    [() => quantizeMultipliers([0.5, -1]), "INVALID_ARGUMENT", /multipliers\[1\]/],
    [() => dyadicApproximation(0.5, { bits: 0 }), "BITS_OUT_OF_RANGE", /bits/],
    [() => dyadicApproximation(0.5, { maxRelError: 0 }), "INVALID_ARGUMENT", /maxRelError/],
    [() => dyadicApproximation(0.1, { maxRelError: 1e-12 }), "INVALID_ARGUMENT", /not reachable/],
    [() => dyadicApproximation(1e-9, { shift: 4 }), "INVALID_ARGUMENT", /numerator 0/],
    [() => dyadicApproximation(0.5, { bits: 4, shift: 2 } as never), "INVALID_ARGUMENT", /exactly one/],
    [() => dyadicApproximation(-1), "INVALID_ARGUMENT", /dyadic multiplier/],
  ];
  for (const [fn, code, msg] of cases) {
    assert.throws(fn, (e: unknown) => e instanceof QuantlabError && e.code === code && msg.test(e.message));
  }
});
