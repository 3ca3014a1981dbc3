import assert from "node:assert/strict";
import { requantize } from "../../lib/integer/requantize.ts";
import {
  multiplyByQuantizedMultiplier,
  multiplyByQuantizedMultiplierSingleRounding,
} from "../../lib/integer/fixed_point.ts";
import { quantizeMultiplier } from "../../lib/integer/dyadic.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Prng } from "../../lib/tensor/prng.ts";

function randomAcc(rng: Prng, n: number, range: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextInt(2 * range + 1) - range;
  return a;
}

Deno.test("dyadic requantize equals scalar MultiplyByQuantizedMultiplier + zero point + clamp, per channel", () => {
  const rng = new Prng(21);
  for (let trial = 0; trial < 40; trial++) {
    const channels = 1 + rng.nextInt(5), inner = 1 + rng.nextInt(30), outer = 1 + rng.nextInt(3);
    const mult = Array.from({ length: channels }, () => 2 ** (rng.nextFloat() * 26 - 24)); // 6e-8 .. 4
    const dtype = trial % 2 ? "int8" : "uint8";
    const zp = dtype === "int8" ? rng.nextInt(256) - 128 : rng.nextInt(256);
    const acc = randomAcc(rng, outer * channels * inner, trial % 3 === 0 ? 2 ** 31 - 1 : 100000);
    for (const rounding of ["dyadic", "dyadic-single"] as const) {
      const y = requantize(acc, { multiplier: mult, zeroPoint: zp, dtype, rounding, inner });
      const [lo, hi] = dtype === "int8" ? [-128, 127] : [0, 255];
      for (let i = 0; i < acc.length; i++) {
        const c = Math.floor(i / inner) % channels;
        const q = quantizeMultiplier(mult[c]);
        const r = rounding === "dyadic"
          ? multiplyByQuantizedMultiplier(acc[i], q.multiplier, q.shift)
          : multiplyByQuantizedMultiplierSingleRounding(acc[i], q.multiplier, q.shift);
        assert.equal(y[i], Math.min(hi, Math.max(lo, r + zp)), `${rounding} trial ${trial} i ${i}`);
      }
    }
  }
});

Deno.test("requantize rounding modes on exact ties (closed form)", () => {
  // x / 4 = -3.5 -3 -2.5 -1.5 -1 -0.5 0 0.5 1 1.5 2.5 3 3.5; M = 0.25 has shift -1, so
  // SRDHM is exact on even x and RoundingDivideByPOT decides the tie.
  const acc = new Int32Array([-14, -12, -10, -6, -4, -2, 0, 2, 4, 6, 10, 12, 14]);
  const opts = { multiplier: 0.25, zeroPoint: 0, dtype: "int8" as const };
  assert.deepEqual(Array.from(requantize(acc, { ...opts, rounding: "dyadic" })), [
    -4,
    -3,
    -3,
    -2,
    -1,
    -1,
    0,
    1,
    1,
    2,
    3,
    3,
    4, // ties away from zero
  ]);
  assert.deepEqual(Array.from(requantize(acc, { ...opts, rounding: "dyadic-single" })), [
    -3,
    -3,
    -2,
    -1,
    -1,
    0,
    0,
    1,
    1,
    2,
    3,
    3,
    4, // ties toward +infinity
  ]);
  assert.deepEqual(Array.from(requantize(acc, { ...opts, rounding: "float" })), [
    -4,
    -3,
    -2,
    -2,
    -1,
    0,
    0,
    0,
    1,
    2,
    2,
    3,
    4, // ties to even
  ]);
  // M = 0.5 has shift 0: no right shift, the tie is decided by SRDHM (toward +infinity).
  const half = requantize(new Int32Array([-3, -1, 1, 3]), { multiplier: 0.5, rounding: "dyadic" });
  assert.deepEqual(Array.from(half), [-1, 0, 1, 2]);
});

Deno.test("all rounding modes agree within 1 with exact rounding on random data", () => {
  const rng = new Prng(22);
  const acc = randomAcc(rng, 20000, 300000);
  let diffs = 0;
  for (const rounding of ["dyadic", "dyadic-single", "float"] as const) {
    const m = 0.000731;
    const y = requantize(acc, { multiplier: m, zeroPoint: 0, dtype: "int8", rounding });
    for (let i = 0; i < acc.length; i++) {
      const exact = Math.max(-128, Math.min(127, Math.round(acc[i] * m)));
      const d = Math.abs(y[i] - exact);
      assert.ok(d <= 1);
      diffs += d;
    }
  }
  assert.ok(diffs < 20, `only near-ties may differ, got ${diffs}`);
});

Deno.test("requantize rejects bad arguments with QuantlabError", () => {
  const acc = new Int32Array(6);
  const bad: [() => unknown, string, RegExp][] = [
    [() => requantize(acc, { multiplier: 0 }), "INVALID_ARGUMENT", /multiplier must be > 0/],
    [() => requantize(acc, { multiplier: NaN }), "NON_FINITE", /multiplier/],
    [() => requantize(acc, { multiplier: [0.1, -1, 0.1] }), "INVALID_ARGUMENT", /multiplier\[1\]/],
    [() => requantize(acc, { multiplier: 0.1, zeroPoint: 300, dtype: "uint8" }), "INVALID_ARGUMENT", /zeroPoint/],
    [() => requantize(acc, { multiplier: 0.1, zeroPoint: -1, dtype: "uint8" }), "INVALID_ARGUMENT", /zeroPoint/],
    [() => requantize(acc, { multiplier: 0.1, zeroPoint: 1.5 }), "INVALID_ARGUMENT", /zeroPoint/],
    [() => requantize(acc, { multiplier: [0.1, 0.2, 0.3, 0.4] }), "SHAPE_MISMATCH", /4 channels/],
    [() => requantize(acc, { multiplier: 2 ** 31 }), "UNSUPPORTED", /multiplier/],
    [() => requantize(acc, { multiplier: 0.1, dtype: "int16" as never }), "INVALID_ARGUMENT", /dtype/],
    [() => requantize(acc, { multiplier: 0.1, rounding: "up" as never }), "INVALID_ARGUMENT", /rounding/],
    [() => requantize(acc, { multiplier: 0.1, out: new Int8Array(2) }), "SHAPE_MISMATCH", /out/],
  ];
  for (const [fn, code, msg] of bad) {
    assert.throws(fn, (e: unknown) => e instanceof QuantlabError && e.code === code && msg.test(e.message), String(fn));
  }
});
