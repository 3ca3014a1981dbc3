/**
 * Statistics across seeds: mean, standard deviation, quantiles and a 95 %
 * confidence interval of the mean, with d3-array doing the sums and the
 * quantiles.
 *
 * The interval is the Student t-interval `mean ± t(0.975, n - 1) · s / √n`
 * (s the sample standard deviation, n - 1 in the denominator): exact for
 * normally distributed per-seed values, and the usual choice at the 3-10 seeds
 * a sweep runs (a bootstrap interval needs far more samples to be stable and
 * is too narrow at n = 5). The t quantile comes from the regularized incomplete
 * beta function (Lentz's continued fraction) inverted by bisection: float64,
 * good to ~1e-10. d3-array's `deviation` is Welford's float64 algorithm.
 *
 * @module
 */
// @ts-types="npm:@types/d3-array@3.2.2"
// deno-lint-ignore no-import-prefix
import { deviation, mean, quantileSorted } from "npm:d3-array@3.2.5";
import { QuantlabError } from "../errors.ts";

/** Summary statistics of one quantity across seeds. */
export interface Summary {
  /** Number of values. */
  readonly n: number;
  /** Arithmetic mean. */
  readonly mean: number;
  /** Sample standard deviation (n - 1 in the denominator); 0 for one value. */
  readonly sd: number;
  /** Standard error of the mean, `sd / √n`. */
  readonly se: number;
  /** Smallest value. */
  readonly min: number;
  /** 25th percentile (linear interpolation, as d3-array's `quantile`, R type 7). */
  readonly q25: number;
  /** Median. */
  readonly median: number;
  /** 75th percentile. */
  readonly q75: number;
  /** Largest value. */
  readonly max: number;
  /** Half width of the confidence interval: `t(1 - (1 - level) / 2, n - 1) · se` (NaN for one value). */
  readonly halfWidth: number;
  /** Confidence interval of the mean, `[mean - halfWidth, mean + halfWidth]`. */
  readonly ci: readonly [number, number];
  /** Confidence level of `ci` (default 0.95). */
  readonly level: number;
}

/**
 * Natural log of the gamma function (Lanczos, g = 7, float64, ~1e-15 relative).
 *
 * @example
 * ```ts
 * import { logGamma } from "./summary.ts";
 * if (Math.abs(logGamma(5) - Math.log(24)) > 1e-12) throw new Error("bad");
 * ```
 */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1, d = 1 - (a + b) * x / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/**
 * Regularized incomplete beta function I_x(a, b).
 *
 * @example
 * ```ts
 * import { incompleteBeta } from "./summary.ts";
 * // I_x(1, 1) = x; I_x(a, 1) = x^a
 * if (Math.abs(incompleteBeta(0.3, 1, 1) - 0.3) > 1e-12) throw new Error("bad");
 * if (Math.abs(incompleteBeta(0.5, 3, 1) - 0.125) > 1e-12) throw new Error("bad");
 * ```
 */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2)
    ? front * betaContinuedFraction(a, b, x) / a
    : 1 - front * betaContinuedFraction(b, a, 1 - x) / b;
}

/**
 * Cumulative distribution function of Student's t with `df` degrees of freedom.
 *
 * @example
 * ```ts
 * import { studentTCdf } from "./summary.ts";
 * // df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/π
 * if (Math.abs(studentTCdf(1, 1) - 0.75) > 1e-12) throw new Error("bad");
 * ```
 */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new QuantlabError("INVALID_ARGUMENT", `Student t needs df > 0, got ${df}`);
  const x = df / (df + t * t);
  const tail = 0.5 * incompleteBeta(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * Quantile of Student's t with `df` degrees of freedom (bisection on {@link studentTCdf}, ~1e-12).
 *
 * @example
 * ```ts
 * import { studentTQuantile } from "./summary.ts";
 * // df = 1: tan(π (p - 1/2)); df = 2: (2p - 1) / √(2 p (1 - p))
 * if (Math.abs(studentTQuantile(0.975, 1) - Math.tan(Math.PI * 0.475)) > 1e-8) throw new Error("df1");
 * if (Math.abs(studentTQuantile(0.975, 2) - 0.95 / Math.sqrt(2 * 0.975 * 0.025)) > 1e-9) throw new Error("df2");
 * ```
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new QuantlabError("INVALID_ARGUMENT", `quantile level must be in (0, 1), got ${p}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Summarise values (e.g. one number across seeds): mean, sd, quantiles and the
 * t-interval of the mean at `level` (default 0.95). Throws on no values or non-finite ones.
 *
 * @example
 * ```ts
 * import { summarize } from "./summary.ts";
 * const s = summarize([1, 2, 3, 4, 5]);
 * // sd = √2.5, t(0.975, 4) = 2.7764451
 * if (s.mean !== 3 || Math.abs(s.sd - Math.sqrt(2.5)) > 1e-12) throw new Error("bad");
 * if (Math.abs(s.halfWidth - 2.7764451052 * Math.sqrt(2.5 / 5)) > 1e-8) throw new Error(String(s.halfWidth));
 * ```
 */
export function summarize(values: readonly number[], level = 0.95): Summary {
  if (values.length === 0) throw new QuantlabError("EMPTY_TENSOR", "summarize: needs at least one value");
  if (!(level > 0 && level < 1)) {
    throw new QuantlabError("INVALID_ARGUMENT", `confidence level in (0, 1), got ${level}`);
  }
  for (const v of values) {
    if (!Number.isFinite(v)) throw new QuantlabError("NON_FINITE", `summarize: non-finite value ${v}`);
  }
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  const m = mean(values)!;
  const sd = n > 1 ? deviation(values)! : 0;
  const se = sd / Math.sqrt(n);
  const halfWidth = n > 1 ? studentTQuantile(1 - (1 - level) / 2, n - 1) * se : NaN;
  return {
    n,
    mean: m,
    sd,
    se,
    min: sorted[0],
    q25: quantileSorted(sorted, 0.25)!,
    median: quantileSorted(sorted, 0.5)!,
    q75: quantileSorted(sorted, 0.75)!,
    max: sorted[n - 1],
    halfWidth,
    ci: [m - halfWidth, m + halfWidth],
    level,
  };
}

/**
 * `"2.10 ± 0.62"`: the mean and the half width of its confidence interval
 * (just the mean for a single value).
 *
 * @example
 * ```ts
 * import { formatMeanCi, summarize } from "./summary.ts";
 * if (formatMeanCi(summarize([1, 2, 3]), 1) !== "2.0 ± 2.5") throw new Error(formatMeanCi(summarize([1, 2, 3]), 1));
 * ```
 */
export function formatMeanCi(s: Summary, digits = 2): string {
  return Number.isFinite(s.halfWidth)
    ? `${s.mean.toFixed(digits)} ± ${s.halfWidth.toFixed(digits)}`
    : s.mean.toFixed(digits);
}
