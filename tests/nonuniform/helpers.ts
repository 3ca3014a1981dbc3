/**
 * Shared helpers for the non-uniform and extreme quantizer tests.
 *
 * @module
 */
import { Prng } from "../../lib/tensor/prng.ts";

/** The committed reference fixture (see tests/fixtures/make_nonuniform_fixtures.py). */
export interface NonUniformFixture {
  data: Record<string, number[]>;
  kmeans: { data: string; bits: number; init: number[]; centers: number[]; inertia: number; n_iter: number }[];
  binary_code: { data: string; bits: number; rounds: number; alphas: number[]; sse: number }[];
  ste: {
    shape: number[];
    w: number[];
    g: number[];
    binary_grad: number[];
    xnor_channel_grad: number[];
    xnor_tensor_grad: number[];
    ttq_tensor: TtqCase;
    ttq_channel: TtqCase;
  };
}

/** One TTQ reference case. */
export interface TtqCase {
  delta: number[];
  wp: number[];
  wn: number[];
  values: number[];
  grad_w: number[];
  grad_wp: number[];
  grad_wn: number[];
}

/** Load the fixture. */
export function loadFixture(): NonUniformFixture {
  return JSON.parse(Deno.readTextFileSync(new URL("../fixtures/nonuniform_fixtures.json", import.meta.url)));
}

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normInv(p: number): number {
  const a = [
    -3.969683028665376e1,
    2.209460984245205e2,
    -2.759285104469687e2,
    1.38357751867269e2,
    -3.066479806614716e1,
    2.506628277459239,
  ];
  const b = [
    -5.447609879822406e1,
    1.615858368580409e2,
    -1.556989798598866e2,
    6.680131188771972e1,
    -1.328068155288572e1,
  ];
  const c = [
    -7.784894002430293e-3,
    -3.223964580411365e-1,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
  ];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - pl) return -normInv(1 - p);
  const q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** `n` standard-normal quantile points `Phi^-1((i + 0.5) / n)` (a deterministic stand-in for N(0, 1)). */
export function gaussianQuantiles(n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = normInv((i + 0.5) / n);
  return out;
}

/** Seeded normal samples as float32. */
export function normal(n: number, seed: number, std = 1): Float32Array {
  return new Prng(seed).fillNormal(new Float32Array(n), 0, std) as Float32Array;
}

/** Mean squared error (float64). */
export function mseOf(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

/** Assert that `fn` throws a QuantlabError with `code`. */
export function throwsCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (c !== code) throw new Error(`expected code ${code}, got ${c}: ${(e as Error).message}`);
    if ((e as Error).name !== "QuantlabError") throw new Error(`expected a QuantlabError, got ${(e as Error).name}`);
    return;
  }
  throw new Error(`expected a QuantlabError with code ${code}, nothing was thrown`);
}
