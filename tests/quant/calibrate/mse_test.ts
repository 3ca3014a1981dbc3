import assert from "node:assert/strict";
import { expectedSquaredError, mse } from "../../../lib/quant/calibrate/mse.ts";
import { QuantlabError } from "../../../lib/errors.ts";
import { fakeQuantizeTensor } from "../../../lib/quant/affine.ts";
import { paramsFromRange, type QuantScheme } from "../../../lib/quant/params.ts";
import { Prng } from "../../../lib/tensor/prng.ts";
import { Tensor } from "../../../lib/tensor/tensor.ts";

const sym = (bits: number): QuantScheme => ({ bits, signed: true, symmetric: true, range: "restricted" });
const asym = (bits: number): QuantScheme => ({ bits, signed: false, symmetric: false, range: "full" });

/** Actual mean squared error of fake-quantizing `x` with the scheme's parameters for `[lo, hi]`. */
function actualMse(x: Float32Array, lo: number, hi: number, scheme: QuantScheme): number {
  const p = paramsFromRange([lo], [hi], scheme, { kind: "tensor" });
  const y = fakeQuantizeTensor(Tensor.from(x), p).data;
  let e = 0;
  for (let i = 0; i < x.length; i++) e += (y[i] - x[i]) ** 2;
  return e / x.length;
}

function gaussianWithOutliers(n: number, seed: number): Float32Array {
  const rng = new Prng(seed);
  const x = Float32Array.from({ length: n }, () => rng.nextNormal());
  for (let i = 0; i < 8; i++) x[i * 1013] = (i % 2 ? -1 : 1) * (15 + 5 * rng.nextFloat());
  return x;
}

Deno.test("expectedSquaredError: closed forms", () => {
  // Rounding noise s^2/12 per value for data spread over whole steps inside the grid.
  const bins = { a: Float64Array.of(-1), b: Float64Array.of(1), n: Float64Array.of(100) };
  const s = 1 / 64;
  assert.ok(Math.abs(expectedSquaredError(bins, s, 0, -128, 127) - 100 * s * s / 12) < 1e-15);
  // Pure clipping: data uniform on [2, 3], grid top at 1 (and rounding to it): E[(x - 1)^2] = (8 - 1) / 3.
  const far = { a: Float64Array.of(2), b: Float64Array.of(3), n: Float64Array.of(1) };
  assert.ok(Math.abs(expectedSquaredError(far, 1 / 127, 0, -127, 127) - 7 / 3) < 1e-12);
  // A zero point shifts the grid: uniform on [0, 1] with the grid [-0.5, 0.5] (z = 64, s = 1/128 on 0..127).
  const e = expectedSquaredError(
    { a: Float64Array.of(0), b: Float64Array.of(1), n: Float64Array.of(1) },
    1 / 128,
    64,
    0,
    127,
  );
  const top = (127 - 64) / 128; // 0.4921875
  const want = top * (1 / 128) ** 2 / 12 + (1 - top) ** 3 / 3;
  assert.ok(Math.abs(e - want) < 1e-12);
});

Deno.test("expectedSquaredError predicts the actual error of fake quantization", () => {
  const rng = new Prng(17);
  const x = Float32Array.from({ length: 100000 }, () => rng.nextNormal());
  const hist = new Float64Array(256);
  const lo = -5, w = 10 / 256;
  for (const v of x) hist[Math.floor((v - lo) / w)]++;
  const a = new Float64Array(256), b = new Float64Array(256);
  for (let k = 0; k < 256; k++) (a[k] = lo + k * w), (b[k] = lo + (k + 1) * w);
  for (const [scheme, t] of [[sym(4), 2.5], [sym(8), 3], [asym(3), 2]] as const) {
    const p = paramsFromRange([-t], [t], scheme, { kind: "tensor" });
    const pred = expectedSquaredError({ a, b, n: hist }, p.scale[0], p.zeroPoint[0], p.qmin, p.qmax) / x.length;
    const act = actualMse(x, -t, t, scheme);
    assert.ok(Math.abs(pred / act - 1) < 0.02, `${scheme.bits} bits: predicted ${pred}, actual ${act}`);
  }
});

Deno.test("mse observer: optimum on the data matches a brute-force search of the actual error", () => {
  const x = gaussianWithOutliers(20000, 2);
  for (const scheme of [sym(4), sym(6), asym(4)]) {
    const o = mse().create({ scheme });
    o.observe(Tensor.from(x));
    const r = o.range();
    const chosen = actualMse(x, r.min[0], r.max[0], scheme);
    let mn = Infinity, mx = -Infinity;
    for (const v of x) (mn = Math.min(mn, v)), (mx = Math.max(mx, v));
    let best = Infinity;
    if (scheme.symmetric) {
      const m = Math.max(-mn, mx);
      for (let k = 1; k <= 400; k++) best = Math.min(best, actualMse(x, -m * k / 400, m * k / 400, scheme));
    } else {
      for (let i = 1; i <= 40; i++) {
        for (let j = 1; j <= 40; j++) best = Math.min(best, actualMse(x, mn * i / 40, mx * j / 40, scheme));
      }
    }
    assert.ok(chosen <= best * 1.03, `${JSON.stringify(scheme)}: chosen ${chosen} vs brute force ${best}`);
    // At 4 bits the 8 outliers (~17) are clipped; at 6 bits keeping most of them is cheaper
    // (clipping 8/20000 values by ~14 costs more than the coarser step) and the search agrees.
    if (scheme.bits === 4) assert.ok(r.max[0] < mx / 4, "outliers are clipped");
    assert.ok(chosen < actualMse(x, mn, mx, scheme) / (scheme.bits === 4 ? 4 : 1), "better than min-max");
  }
});

Deno.test("mse observer: uniform data calibrates to about min-max (closed form)", () => {
  const rng = new Prng(1);
  const x = Float32Array.from({ length: 200000 }, () => 2 * rng.nextFloat() - 1);
  for (const bits of [3, 4, 8]) {
    // U(-1, 1), restricted grid with q = 2^(bits-1) - 1 steps per side, s = T / q:
    // E(T) ~ T s^2 / 12 + (1 - T)^3 / 3 (per half), minimal at 1 - T = T / (2q), T* = 2q / (2q + 1).
    const q = 2 ** (bits - 1) - 1;
    const o = mse().create({ scheme: sym(bits) });
    o.observe(Tensor.from(x));
    const t = o.range().max[0];
    assert.ok(Math.abs(t - (2 * q) / (2 * q + 1)) < 3e-3, `${bits} bits: ${t} vs ${(2 * q) / (2 * q + 1)}`);
  }
  const o = mse().create({ scheme: asym(8) });
  o.observe(Tensor.from(x));
  assert.ok(o.range().max[0] > 0.97 && o.range().min[0] < -0.97);
});

Deno.test("mse observer: more bits, non-decreasing clipping value", () => {
  const x = gaussianWithOutliers(30000, 4);
  let prev = 0;
  for (let bits = 2; bits <= 12; bits++) {
    const o = mse().create({ scheme: sym(bits) });
    o.observe(Tensor.from(x));
    const t = o.range().max[0];
    assert.ok(t >= prev * (1 - 1e-9), `${bits} bits: ${t} < ${prev}`);
    prev = t;
  }
});

Deno.test("mse options are validated", () => {
  assert.throws(() => mse({ bins: 5 }), QuantlabError);
  assert.throws(() => mse({ grid: 1 }), QuantlabError);
  assert.equal(mse().toString(), "mse(bins=2048, grid=100)");
});
