/**
 * Streaming per-slot histograms with a fixed bin count and power-of-two range
 * growth, for the histogram-based calibrators (percentile, entropy, MSE, ACIQ).
 *
 * Each slot has `bins` equal bins of width `w` over `[lo, lo + bins * w]`.
 * The first batch with a non-zero value sets `w` so the bins exactly span
 * `[0, max|x|]` (`"abs"` mode) or `[min(x_min, 0), max(x_max, 0)]` (`"signed"`
 * mode). When a later batch falls outside, the width doubles and adjacent bin
 * pairs merge (`new[k] = old[2k] + old[2k+1]`); growing to the right keeps `lo`,
 * growing to the left moves `lo` down by `bins * w` so old bin `j` lands in new
 * bin `(j + bins) / 2`. Every old bin lies wholly inside one new bin, so the
 * re-binning is exact: the result equals binning all data on the final grid
 * directly (up to floating-point ties at bin edges), and no data is held.
 * The width at the end is less than `2 * span / bins`, where `span` is the
 * width of the smallest range holding all data and zero (equal to it when the
 * first batch holds the extremes).
 *
 * Counts and (optional) per-bin sums of values are float64. Memory is
 * `slots * bins * 8` bytes (twice that with sums): per-channel histograms of
 * many channels are large (1024 channels x 2048 bins = 16 MiB).
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { SlotLayout } from "./slot_state.ts";

/** `"abs"`: histogram of `|x|` over `[0, T]`; `"signed"`: histogram of `x` over a range holding 0. */
export type HistogramMode = "abs" | "signed";

/**
 * Check a histogram bin count: an even integer from 2 to 2^20.
 *
 * @example
 * ```ts
 * import { checkBins } from "./histogram.ts";
 * checkBins(2048, "bins");
 * try {
 *   checkBins(3, "bins");
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("even integer")) throw e;
 * }
 * ```
 */
export function checkBins(bins: number, what: string): void {
  if (!Number.isInteger(bins) || bins < 2 || bins > 1 << 20 || bins % 2 !== 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `${what} must be an even integer from 2 to 1048576, got ${bins}`);
  }
}

/**
 * Streaming histograms, one per slot.
 *
 * @example
 * ```ts
 * import { SlotHistograms } from "./histogram.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const h = new SlotHistograms(4, "abs");
 * const layout = { outer: 1, slots: 1, inner: 4 };
 * h.add(Tensor.from([0, 1, -3, 4]), layout, [-3], [4]); // bins of width 1 over [0, 4]
 * h.add(Tensor.from([7, 0.5]), { outer: 1, slots: 1, inner: 2 }, [0.5], [7]); // width 2 over [0, 8]
 * if (h.width[0] !== 2 || h.counts.join() !== "3,2,0,1") throw new Error("bad");
 * ```
 */
export class SlotHistograms {
  /** Number of slots (0 before the first batch). */
  slots = 0;
  /** Counts, `slots x bins`, row-major. */
  counts = new Float64Array(0);
  /** Per-bin sums of the binned values (`|x|` in abs mode), when requested. */
  sums: Float64Array | undefined;
  /** Left edge of each slot's first bin. */
  lo = new Float64Array(0);
  /** Bin width of each slot (0 while every value seen is 0). */
  width = new Float64Array(0);
  /** Right edge of each slot's last bin. */
  hi = new Float64Array(0);
  /** Zeros seen while a slot's width is still 0. */
  #pending = new Float64Array(0);

  /** `bins` must be even (see {@link checkBins}); `withSums` keeps per-bin sums. */
  constructor(readonly bins: number, readonly mode: HistogramMode, readonly withSums = false) {
    checkBins(bins, "histogram bins");
  }

  /** Total count of slot `s`. */
  total(s: number): number {
    const b = this.bins;
    let n = this.#pending[s];
    for (let k = s * b; k < (s + 1) * b; k++) n += this.counts[k];
    return n;
  }

  /** Fold a batch in; `bmin`/`bmax` are the batch's per-slot min and max (already validated). */
  add(batch: Tensor<"float32">, layout: SlotLayout, bmin: ArrayLike<number>, bmax: ArrayLike<number>): void {
    const B = this.bins;
    const S = layout.slots;
    if (this.slots === 0) {
      this.slots = S;
      this.counts = new Float64Array(S * B);
      if (this.withSums) this.sums = new Float64Array(S * B);
      this.lo = new Float64Array(S);
      this.width = new Float64Array(S);
      this.hi = new Float64Array(S);
      this.#pending = new Float64Array(S);
    }
    for (let s = 0; s < S; s++) {
      let nlo: number, nhi: number;
      if (this.mode === "abs") {
        nlo = 0;
        nhi = Math.max(-bmin[s], bmax[s], 0);
      } else {
        nlo = Math.min(bmin[s], 0);
        nhi = Math.max(bmax[s], 0);
      }
      if (this.width[s] === 0) {
        if (nhi > nlo) this.#init(s, nlo, nhi);
      } else {
        while (nhi > this.hi[s]) this.#growRight(s);
        while (nlo < this.lo[s]) this.#growLeft(s);
      }
    }
    this.#bin(batch.data, layout);
  }

  #init(s: number, lo: number, hi: number): void {
    const B = this.bins;
    this.lo[s] = lo;
    this.hi[s] = hi;
    this.width[s] = (hi - lo) / B;
    const z = this.#pending[s];
    if (z > 0) {
      // Everything seen so far was exactly 0.
      const k = Math.min(B - 1, Math.floor((0 - lo) / this.width[s]));
      this.counts[s * B + k] += z;
      this.#pending[s] = 0;
    }
  }

  #growRight(s: number): void {
    const B = this.bins, off = s * B, c = this.counts, m = this.sums;
    for (let k = 0; k < B / 2; k++) {
      c[off + k] = c[off + 2 * k] + c[off + 2 * k + 1];
      if (m) m[off + k] = m[off + 2 * k] + m[off + 2 * k + 1];
    }
    c.fill(0, off + B / 2, off + B);
    if (m) m.fill(0, off + B / 2, off + B);
    this.width[s] *= 2;
    this.hi[s] = this.lo[s] + B * this.width[s];
  }

  #growLeft(s: number): void {
    const B = this.bins, off = s * B, c = this.counts, m = this.sums;
    for (let k = B / 2 - 1; k >= 0; k--) {
      c[off + B / 2 + k] = c[off + 2 * k] + c[off + 2 * k + 1];
      if (m) m[off + B / 2 + k] = m[off + 2 * k] + m[off + 2 * k + 1];
    }
    c.fill(0, off, off + B / 2);
    if (m) m.fill(0, off, off + B / 2);
    this.lo[s] -= B * this.width[s];
    this.width[s] *= 2;
  }

  #bin(x: Float32Array, layout: SlotLayout): void {
    const B = this.bins, last = B - 1, c = this.counts, m = this.sums, abs = this.mode === "abs";
    const { outer, slots, inner } = layout;
    for (let o = 0; o < outer; o++) {
      for (let s = 0; s < slots; s++) {
        const start = (o * slots + s) * inner, end = start + inner;
        const w = this.width[s];
        if (w === 0) {
          this.#pending[s] += inner;
          continue;
        }
        const off = s * B, lo = this.lo[s], inv = 1 / w;
        if (abs && !m) {
          for (let j = start; j < end; j++) {
            const v = x[j];
            let k = (Math.abs(v) * inv) | 0;
            if (k > last) k = last;
            c[off + k]++;
          }
        } else if (!m) {
          for (let j = start; j < end; j++) {
            let k = ((x[j] - lo) * inv) | 0;
            if (k > last) k = last;
            c[off + k]++;
          }
        } else {
          for (let j = start; j < end; j++) {
            let v = x[j];
            if (abs && v < 0) v = -v;
            let k = ((v - lo) * inv) | 0;
            if (k > last) k = last;
            c[off + k]++;
            m[off + k] += v;
          }
        }
      }
    }
  }

  /**
   * The value below which a fraction `q` (0..1) of slot `s`'s data lies,
   * interpolating linearly inside the bin where the cumulative count crosses
   * `q * total` (values assumed uniform within a bin). The exact order
   * statistic `x_(ceil(q * total))` lies in the same bin, so the error is at
   * most one bin width.
   */
  quantile(s: number, q: number): number {
    const B = this.bins, off = s * B, c = this.counts;
    const w = this.width[s];
    if (w === 0) return 0;
    const total = this.total(s);
    const r = q * total;
    let cum = 0;
    for (let k = 0; k < B; k++) {
      const n = c[off + k];
      if (n > 0 && cum + n >= r) {
        const frac = r <= cum ? 0 : (r - cum) / n;
        return this.lo[s] + w * (k + frac);
      }
      cum += n;
    }
    return this.hi[s];
  }
}
