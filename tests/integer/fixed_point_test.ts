import assert from "node:assert/strict";
import {
  multiplyByQuantizedMultiplier,
  multiplyByQuantizedMultiplierSingleRounding,
  multiplyByQuantizedMultiplierSingleRoundingBig,
  roundingDivideByPOT,
  saturatingRoundingDoublingHighMul,
  saturatingRoundingDoublingHighMulBig,
} from "../../lib/integer/fixed_point.ts";
import { quantizeMultiplier } from "../../lib/integer/dyadic.ts";
import { Prng } from "../../lib/tensor/prng.ts";

interface Fixture {
  srdhm: [number, number, number][];
  roundingDivideByPOT: [number, number, number][];
  multiplyByQuantizedMultiplier: [number, number, number, number, number][];
}
const fx: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/integer_multipliers.json", import.meta.url)),
);

Deno.test("SaturatingRoundingDoublingHighMul equals the TFLite port on every fixture", () => {
  assert.ok(fx.srdhm.length > 500);
  for (const [a, b, r] of fx.srdhm) {
    assert.equal(saturatingRoundingDoublingHighMul(a, b), r, `srdhm(${a}, ${b})`);
    assert.equal(saturatingRoundingDoublingHighMulBig(a, b), r, `big srdhm(${a}, ${b})`);
  }
});

Deno.test("RoundingDivideByPOT equals the TFLite port on every fixture", () => {
  assert.ok(fx.roundingDivideByPOT.length > 300);
  for (const [x, e, r] of fx.roundingDivideByPOT) assert.equal(roundingDivideByPOT(x, e), r, `rdbpot(${x}, ${e})`);
});

Deno.test("MultiplyByQuantizedMultiplier (double and single rounding) equals the TFLite port", () => {
  assert.ok(fx.multiplyByQuantizedMultiplier.length > 500);
  let differ = 0;
  for (const [x, q, s, dbl, single] of fx.multiplyByQuantizedMultiplier) {
    assert.equal(multiplyByQuantizedMultiplier(x, q, s), dbl, `double(${x}, ${q}, ${s})`);
    assert.equal(multiplyByQuantizedMultiplierSingleRounding(x, q, s), single, `single(${x}, ${q}, ${s})`);
    if (dbl !== single) differ++;
  }
  // The two builds must disagree somewhere (negative ties), or the fixture would not tell them apart.
  assert.ok(differ > 0);
});

Deno.test("fast SRDHM equals the BigInt oracle on 20000 seeded random pairs", () => {
  const rng = new Prng(11);
  for (let i = 0; i < 20000; i++) {
    const a = rng.nextUint32() | 0;
    const b = i % 3 === 0 ? (rng.nextUint32() | 0) : (1073741824 + rng.nextInt(1073741824)) * (i % 2 ? 1 : -1) | 0;
    const small = i % 5 === 0 ? (a >> rng.nextInt(31)) : a; // small magnitudes too
    assert.equal(saturatingRoundingDoublingHighMul(small, b), saturatingRoundingDoublingHighMulBig(small, b));
  }
});

Deno.test("fast single-rounding multiply equals the BigInt oracle", () => {
  const rng = new Prng(12);
  for (let i = 0; i < 20000; i++) {
    const m = 2 ** (rng.nextFloat() * 40 - 31);
    const { multiplier, shift } = quantizeMultiplier(m);
    if (multiplier === 0 || shift > 30) continue;
    const limit = Math.min(2147483647, Math.floor(2 ** 31 / Math.max(m, 1)) - 1);
    const x = Math.floor((rng.nextFloat() * 2 - 1) * limit);
    assert.equal(
      multiplyByQuantizedMultiplierSingleRounding(x, multiplier, shift),
      multiplyByQuantizedMultiplierSingleRoundingBig(x, multiplier, shift),
      `x=${x} m0=${multiplier} shift=${shift}`,
    );
  }
});

Deno.test("MultiplyByQuantizedMultiplier error bounds versus x * M0 * 2^(shift-31) (closed form)", () => {
  const rng = new Prng(13);
  for (let i = 0; i < 5000; i++) {
    const m = 10 ** (rng.nextFloat() * 6 - 6);
    const q = quantizeMultiplier(m);
    const x = rng.nextInt(2000001) - 1000000;
    const exact = x * q.multiplier * 2 ** (q.shift - 31);
    // double rounding: 1/2 output step plus half a step of the intermediate 2^-rightShift grid
    const right = Math.max(0, -q.shift);
    assert.ok(Math.abs(multiplyByQuantizedMultiplier(x, q.multiplier, q.shift) - exact) <= 0.5 + 0.5 * 2 ** -right);
    assert.ok(Math.abs(multiplyByQuantizedMultiplierSingleRounding(x, q.multiplier, q.shift) - exact) <= 0.5 + 1e-9);
  }
});
