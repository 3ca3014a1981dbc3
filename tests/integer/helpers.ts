/**
 * Shared helpers for the integer-kernel tests: seeded random tensors and
 * naive (obviously correct) reference loops.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

/** The requantization roundings every integer-only kernel test runs. */
export const ROUNDINGS = ["dyadic", "dyadic-single", "float"] as const;

/** Fields shared by the PyTorch quantized conv and linear cases of tests/fixtures/integer_torch.json. */
interface TorchQuantCase {
  name: string;
  x: number[];
  xShape: number[];
  xScale: number;
  xZeroPoint: number;
  w: number[];
  wShape: number[];
  wScale: number | number[];
  wZeroPoint: number | number[];
  bias: number[];
  yScale: number;
  yZeroPoint: number;
  y: number[];
}

/** A `torch.ao.nn.quantized.Conv2d` case. */
export interface ConvCase extends TorchQuantCase {
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
  yShape: number[];
}

/** A `torch.ao.nn.quantized.Linear` case. */
export type LinearCase = TorchQuantCase;

/** The PyTorch fixtures made by tests/fixtures/make_integer_fixtures.py. */
export const torchFx: { conv: ConvCase[]; linear: LinearCase[]; engine: string } = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/integer_torch.json", import.meta.url)),
);

/** A random zero point: in `[-spread, spread]` for int8, `128 +` that for uint8. */
export function randZeroPoint(rng: Prng, dtype: string, spread: number): number {
  return dtype === "int8" ? randInt(rng, -spread, spread) : 128 + randInt(rng, -spread, spread);
}

/**
 * Per-rounding tallies of integer outputs against a reference: {@link check} asserts every output is
 * within 1 LSB and counts exact matches; {@link countUnsaturated} counts outputs strictly inside the range.
 */
export class Tally {
  readonly stats: Record<(typeof ROUNDINGS)[number], [exact: number, n: number]> = {
    dyadic: [0, 0],
    "dyadic-single": [0, 0],
    float: [0, 0],
  };
  unsaturated = 0;

  check(rounding: (typeof ROUNDINGS)[number], got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
    const r = compare(got, want);
    assert.ok(r.maxDiff <= 1, `${what} ${rounding}: max diff ${r.maxDiff}`);
    this.stats[rounding][0] += r.exact;
    this.stats[rounding][1] += r.n;
  }

  countUnsaturated(y: ArrayLike<number>, dtype: "int8" | "uint8"): void {
    const [lo, hi] = dtype === "int8" ? [-128, 127] : [0, 255];
    for (let i = 0; i < y.length; i++) if (y[i] > lo && y[i] < hi) this.unsaturated++;
  }

  /** `"dyadic e/n exact, dyadic-single e/n exact, float e/n exact"`. */
  summary(): string {
    return Object.entries(this.stats).map(([k, [e, n]]) => `${k} ${e}/${n} exact`).join(", ");
  }
}

/** A random int8 or uint8 tensor. */
export function randomQ(rng: Prng, dtype: "int8" | "uint8", shape: number[]): Tensor {
  let n = 1;
  for (const d of shape) n *= d;
  const data = dtype === "int8" ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = dtype === "int8" ? rng.nextInt(256) - 128 : rng.nextInt(256);
  return new Tensor(data, shape);
}

/** Random integer in [lo, hi]. */
export function randInt(rng: Prng, lo: number, hi: number): number {
  return lo + rng.nextInt(hi - lo + 1);
}

/** A float32-representable scale, log-uniform in [lo, hi]. */
export function randScale(rng: Prng, lo: number, hi: number): number {
  return Math.fround(lo * (hi / lo) ** rng.nextFloat());
}

/** Naive int conv (NCHW) with zero points and bias, exact in float64. */
export function naiveConvInt(
  x: Tensor,
  zx: number,
  w: Tensor,
  zw: ArrayLike<number>,
  bias: Int32Array | undefined,
  s: [number, number],
  p: [number, number, number, number],
  d: [number, number],
  group: number,
): { data: number[]; shape: number[] } {
  const [n, c, h, wd] = x.shape;
  const [m, cg, kh, kw] = w.shape;
  const oh = Math.floor((h + p[0] + p[2] - d[0] * (kh - 1) - 1) / s[0]) + 1;
  const ow = Math.floor((wd + p[1] + p[3] - d[1] * (kw - 1) - 1) / s[1]) + 1;
  const mg = m / group;
  const out: number[] = [];
  for (let b = 0; b < n; b++) {
    for (let mi = 0; mi < m; mi++) {
      const g = Math.floor(mi / mg);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let acc = bias ? bias[mi] : 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * s[0] - p[0] + ky * d[0], ix = ox * s[1] - p[1] + kx * d[1];
                const xv = iy < 0 || iy >= h || ix < 0 || ix >= wd
                  ? 0
                  : x.data[((b * c + g * cg + ci) * h + iy) * wd + ix] - zx;
                acc += xv * (w.data[((mi * cg + ci) * kh + ky) * kw + kx] - (zw.length === 1 ? zw[0] : zw[mi]));
              }
            }
          }
          out.push(acc);
        }
      }
    }
  }
  return { data: out, shape: [n, m, oh, ow] };
}

/** Largest |a[i] - b[i]| and the count of exact matches. */
export function compare(a: ArrayLike<number>, b: ArrayLike<number>): { maxDiff: number; exact: number; n: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let maxDiff = 0, exact = 0;
  for (let i = 0; i < a.length; i++) {
    const dd = Math.abs(a[i] - b[i]);
    if (dd > maxDiff) maxDiff = dd;
    if (dd === 0) exact++;
  }
  return { maxDiff, exact, n: a.length };
}
