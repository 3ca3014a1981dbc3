/**
 * MSE-optimal clipping: minimise the expected quantization + clipping error of
 * the scheme, computed from a streamed histogram.
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import type { QuantScheme } from "../params.ts";
import { paramsFromRange } from "../params.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { checkBins, SlotHistograms } from "./histogram.ts";
import type { Calibrator, CalibratorRecipe, ClipRange, Observer, ObserverContext } from "./observer.ts";
import { checkBatch, PerSlotState, slotLayout } from "./slot_state.ts";

/** Options of {@link mse}. */
export interface MseOptions {
  /** Histogram bins per slot, even (default 2048). */
  readonly bins?: number;
  /** Grid points per searched dimension before golden-section refinement (default 100; 2-D grids use a fifth, at least 8). */
  readonly grid?: number;
}

/** Non-empty histogram bins as edges and counts (the only data the error needs). */
export interface BinList {
  /** Left edges. */
  readonly a: Float64Array;
  /** Right edges. */
  readonly b: Float64Array;
  /** Counts. */
  readonly n: Float64Array;
}

/** Antiderivative of the squared rounding error `(round(u) - u)^2` (period 1, integral 1/12 per period). */
function roundErrIntegral(u: number): number {
  const k = Math.floor(u + 0.5);
  const r = u - k;
  return k / 12 + (r * r * r + 0.125) / 3;
}

/**
 * Expected sum of squared errors `sum (x~ - x)^2` of fake quantization with
 * scale `s` and zero point `z` on `[qmin, qmax]` (`x~ = s (clamp(round(x/s) + z) - z)`)
 * over histogram bins, treating values as uniform within each bin and
 * integrating exactly: clipping error `(x - edge)^2` beyond the grid's
 * extremes `s (qmin - z)` and `s (qmax - z)`, and the rounding error between
 * them (piecewise quadratic in `x / s`, integrated in closed form). Float64.
 *
 * @example
 * ```ts
 * import { expectedSquaredError } from "./mse.ts";
 * // One bin [0, 1) of 12 values, step 1/8 inside the grid: each value's expected error is s^2/12.
 * const bins = { a: Float64Array.of(0), b: Float64Array.of(1), n: Float64Array.of(12) };
 * const e = expectedSquaredError(bins, 1 / 8, 0, -128, 127);
 * if (Math.abs(e - 12 * (1 / 64) / 12) > 1e-12) throw new Error("bad");
 * ```
 */
export function expectedSquaredError(bins: BinList, s: number, z: number, qmin: number, qmax: number): number {
  const glo = s * (qmin - z), ghi = s * (qmax - z), s3 = s * s * s, inv = 1 / s;
  const A = bins.a, Bv = bins.b, N = bins.n;
  let total = 0;
  for (let k = 0; k < A.length; k++) {
    const a = A[k], b = Bv[k];
    let e = 0;
    if (a < glo) {
      const u = b < glo ? b : glo;
      const d0 = glo - a, d1 = glo - u;
      e += (d0 * d0 * d0 - d1 * d1 * d1) / 3;
    }
    if (b > ghi) {
      const u = a > ghi ? a : ghi;
      const d0 = b - ghi, d1 = u - ghi;
      e += (d0 * d0 * d0 - d1 * d1 * d1) / 3;
    }
    const ra = a > glo ? a : glo, rb = b < ghi ? b : ghi;
    if (rb > ra) e += s3 * (roundErrIntegral(rb * inv) - roundErrIntegral(ra * inv));
    total += N[k] * e / (b - a);
  }
  return total;
}

/**
 * The non-empty bins of slot `s` of a histogram.
 *
 * @example
 * ```ts
 * import { binList } from "./mse.ts";
 * import { SlotHistograms } from "./histogram.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const h = new SlotHistograms(4, "abs");
 * h.add(Tensor.from([0, 1, -3, 4]), { outer: 1, slots: 1, inner: 4 }, [-3], [4]); // bins of width 1 over [0, 4]
 * const b = binList(h, 0);
 * if (b.n.join() !== "1,1,2" || b.a[2] !== 3 || b.b[2] !== 4) throw new Error("bad");
 * ```
 */
export function binList(h: SlotHistograms, s: number): BinList {
  const B = h.bins, off = s * B, w = h.width[s], lo = h.lo[s];
  let m = 0;
  for (let k = 0; k < B; k++) if (h.counts[off + k] > 0) m++;
  const a = new Float64Array(m), b = new Float64Array(m), n = new Float64Array(m);
  for (let k = 0, i = 0; k < B; k++) {
    const c = h.counts[off + k];
    if (c > 0) {
      a[i] = lo + k * w;
      b[i] = lo + (k + 1) * w;
      n[i++] = c;
    }
  }
  return { a, b, n };
}

/** Expected squared error of the scheme's parameters for the range `[lo, hi]` (via `paramsFromRange`). */
function rangeError(bins: BinList, lo: number, hi: number, scheme: QuantScheme): number {
  const p = paramsFromRange([lo], [hi], scheme, { kind: "tensor" });
  return expectedSquaredError(bins, p.scale[0], p.zeroPoint[0], p.qmin, p.qmax);
}

const GOLD = (Math.sqrt(5) - 1) / 2;

/** Minimise `f` on `[a, b]` by golden-section search (`iters` steps); returns the best point seen. */
function golden(f: (x: number) => number, a: number, b: number, iters: number): { x: number; fx: number } {
  let x1 = b - GOLD * (b - a), x2 = a + GOLD * (b - a);
  let f1 = f(x1), f2 = f(x2);
  for (let i = 0; i < iters; i++) {
    if (f1 <= f2) {
      b = x2;
      x2 = x1;
      f2 = f1;
      x1 = b - GOLD * (b - a);
      f1 = f(x1);
    } else {
      a = x1;
      x1 = x2;
      f1 = f2;
      x2 = a + GOLD * (b - a);
      f2 = f(x2);
    }
  }
  return f1 <= f2 ? { x: x1, fx: f1 } : { x: x2, fx: f2 };
}

/** 1-D search of `f` on `(0, 1]`: grid of `k` points, then golden section around the best. */
function search1d(f: (t: number) => number, k: number): number {
  let bestT = 1, bestF = f(1);
  for (let i = k - 1; i >= 1; i--) {
    const v = f(i / k);
    if (v < bestF) {
      bestF = v;
      bestT = i / k;
    }
  }
  const g = golden(f, Math.max(bestT - 1 / k, 1e-9), Math.min(bestT + 1 / k, 1), 40);
  return g.fx < bestF ? g.x : bestT;
}

class MseObserver implements Observer {
  readonly name = "mse";
  batches = 0;
  #state: PerSlotState;
  #hist: SlotHistograms;
  constructor(private readonly ctx: ObserverContext, private readonly grid: number, bins: number) {
    this.#state = new PerSlotState(ctx);
    this.#hist = new SlotHistograms(bins, "signed");
  }
  observe(batch: Tensor<"float32">): void {
    checkBatch(batch, this.ctx, this.name);
    const b = this.#state.update(batch);
    this.#hist.add(batch, slotLayout(batch, this.ctx), b.min, b.max);
    this.batches++;
  }
  range(): ClipRange {
    if (this.batches === 0) {
      throw new QuantlabError("NOT_CALIBRATED", `${this.ctx.name ?? "tensor"}: mse observer has seen no batch`);
    }
    const { min, max } = this.#state;
    const scheme = this.ctx.scheme;
    const n = min.length;
    const lo = new Float64Array(n), hi = new Float64Array(n);
    for (let s = 0; s < n; s++) {
      const a0 = Math.min(min[s], 0), b0 = Math.max(max[s], 0);
      if (b0 - a0 === 0) continue;
      const bins = binList(this.#hist, s);
      if (scheme.symmetric) {
        const m = Math.max(-a0, b0);
        const t = m * search1d((f) => rangeError(bins, -f * m, f * m, scheme), this.grid);
        hi[s] = Math.min(max[s], t);
        lo[s] = Math.min(Math.max(min[s], -t), hi[s]);
      } else if (a0 === 0 || b0 === 0) {
        const f = search1d((f) => rangeError(bins, f * a0, f * b0, scheme), this.grid);
        hi[s] = Math.min(max[s], f * b0);
        lo[s] = Math.min(Math.max(min[s], f * a0), hi[s]);
      } else {
        const [fa, fb] = search2d(bins, a0, b0, scheme, Math.max(8, Math.round(this.grid / 5)));
        hi[s] = Math.min(max[s], fb * b0);
        lo[s] = Math.min(Math.max(min[s], fa * a0), hi[s]);
      }
    }
    return { min: lo, max: hi };
  }
}

/** 2-D search of scalings `(fa, fb)` of `[a0, b0]`: grid, then coordinate-wise golden sections. */
function search2d(bins: BinList, a0: number, b0: number, scheme: QuantScheme, k: number): [number, number] {
  let fa = 1, fb = 1, best = rangeError(bins, a0, b0, scheme);
  for (let i = 1; i <= k; i++) {
    for (let j = 1; j <= k; j++) {
      const v = rangeError(bins, (i / k) * a0, (j / k) * b0, scheme);
      if (v < best) {
        best = v;
        fa = i / k;
        fb = j / k;
      }
    }
  }
  for (let round = 0, span = 1 / k; round < 3; round++, span /= 2) {
    const ga = golden(
      (f) => rangeError(bins, f * a0, fb * b0, scheme),
      Math.max(fa - span, 1e-9),
      Math.min(fa + span, 1),
      30,
    );
    if (ga.fx < best) {
      best = ga.fx;
      fa = ga.x;
    }
    const gb = golden(
      (f) => rangeError(bins, fa * a0, f * b0, scheme),
      Math.max(fb - span, 1e-9),
      Math.min(fb + span, 1),
      30,
    );
    if (gb.fx < best) {
      best = gb.fx;
      fb = gb.x;
    }
  }
  return [fa, fb];
}

/**
 * MSE-optimal clipping (OMSE-style), streamed. Each slot keeps a signed
 * histogram of `x` (see `histogram.ts`); at the end the clipping range whose
 * parameters (computed exactly as `paramsFromRange` computes them for the
 * scheme, float32 scale and integer zero point included) minimise the expected
 * squared error {@link expectedSquaredError} — clipping plus rounding, with
 * values uniform within each bin and integrated exactly — is searched:
 *
 * - symmetric schemes: `[-T, T]` with `T = f * max|x|`, `f` on a grid of
 *   `grid` points in `(0, 1]`, then 40 golden-section steps around the best;
 * - asymmetric schemes: `[fa * min, fb * max]` (with `min <= 0 <= max`): a
 *   `grid/5 x grid/5` grid of `(fa, fb)`, then three rounds of coordinate-wise
 *   golden sections; one-sided data searches one factor as above.
 *
 * The objective is not guaranteed unimodal, hence the grid first. The result
 * is intersected with the observed `[min, max]`, so it never widens min-max.
 * Unlike pytorch-quantization's `_compute_amax_mse`, which scores candidate
 * bin centres with the data at the bin centres, the error here accounts for
 * the spread of values inside each bin, so it stays meaningful when a bin is
 * wider than the quantization step (high bit widths).
 *
 * @example
 * ```ts
 * import { mse } from "./mse.ts";
 * import { Prng } from "../../tensor/prng.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const rng = new Prng(3);
 * const x = Float32Array.from({ length: 20000 }, () => rng.nextNormal());
 * x[7] = 30; // an outlier
 * const obs = mse().create({ scheme: { bits: 4, signed: true, symmetric: true, range: "restricted" } });
 * obs.observe(Tensor.from(x));
 * const t = obs.range().max[0];
 * if (!(t > 1.5 && t < 5)) throw new Error(`bad clip ${t}`);
 * ```
 */
export function mse(options: MseOptions = {}): Calibrator {
  const bins = options.bins ?? 2048;
  const grid = options.grid ?? 100;
  checkBins(bins, "mse bins");
  if (!Number.isInteger(grid) || grid < 2 || grid > 10000) {
    throw new QuantlabError("INVALID_ARGUMENT", `mse grid must be an integer from 2 to 10000, got ${grid}`);
  }
  return Object.freeze({
    name: "mse",
    create: (ctx: ObserverContext) => new MseObserver(ctx, grid, bins),
    toString: () => `mse(bins=${bins}, grid=${grid})`,
    toRecipe: (): CalibratorRecipe => ({ name: "mse", options: { bins, grid } }),
  });
}
