/**
 * Entropy (KL-divergence) calibration, TensorRT's procedure (Migacz, "8-bit
 * Inference with TensorRT", GTC 2017), following the open-source reference
 * `_compute_amax_entropy` of NVIDIA's pytorch-quantization.
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import type { QuantScheme } from "../params.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { checkBins, SlotHistograms } from "./histogram.ts";
import type { Calibrator, CalibratorRecipe, ClipRange, Observer, ObserverContext } from "./observer.ts";
import { checkBatch, PerSlotState, slotLayout } from "./slot_state.ts";

/** Options of {@link entropy}. */
export interface EntropyOptions {
  /** Bins of the `|x|` histogram, even (default 2048). */
  readonly bins?: number;
  /**
   * Levels the reference distribution is quantized into. Default: from the
   * scheme, see {@link entropyLevels} (128 for int8 and symmetric uint8, 256
   * for asymmetric uint8 on non-negative data).
   */
  readonly quantizedBins?: number;
  /** First candidate threshold, in bins (default 128). */
  readonly startBin?: number;
}

/**
 * The smoothing mass (in counts) given to a populated reference bin whose candidate mass is zero (MXNet's eps).
 *
 * @example
 * ```ts
 * import { KL_SMOOTHING_EPS } from "./entropy.ts";
 * if (KL_SMOOTHING_EPS !== 1e-4) throw new Error("bad");
 * ```
 */
export const KL_SMOOTHING_EPS = 1e-4;

/** Divergences within this of the minimum count as ties (the closed-form sums carry ~1e-14 of rounding). */
const KL_TIE = 1e-12;

/**
 * Quantization levels covering `[0, T]` for a scheme: `2^bits` when every code
 * maps into `[0, T]` (an asymmetric scheme on non-negative data: the range is
 * `[0, T]`), else `2^(bits-1)` (symmetric schemes and asymmetric schemes on
 * mixed-sign data, where half the codes cover `[0, T]`). This is
 * pytorch-quantization's `1 << (num_bits - 1 + unsigned)`, whose `unsigned`
 * flag means "the grid covers `[0, amax]`"; a signed symmetric restricted grid
 * has `2^(bits-1) - 1` positive codes, and TensorRT's documentation says 128
 * for int8, so the power of two is kept there too.
 *
 * @example
 * ```ts
 * import { entropyLevels } from "./entropy.ts";
 * const int8 = { bits: 8, signed: true, symmetric: true, range: "restricted" } as const;
 * const uint8 = { bits: 8, signed: false, symmetric: false, range: "full" } as const;
 * if (entropyLevels(int8, true) !== 128 || entropyLevels(uint8, true) !== 256) throw new Error("bad");
 * if (entropyLevels(uint8, false) !== 128) throw new Error("bad");
 * ```
 */
export function entropyLevels(scheme: QuantScheme, nonNegative: boolean): number {
  return !scheme.symmetric && nonNegative ? 2 ** scheme.bits : 2 ** (scheme.bits - 1);
}

/**
 * The KL-optimal number of kept bins `i` of a histogram of `|x|` (so the
 * threshold is `i * binWidth`), and its divergence. Candidates run from
 * `startBin` to `lastBin` (default: all bins).
 *
 * For every candidate `i` from `startBin` to `counts.length`:
 * - reference `P`: the first `i` bins, with all counts beyond (outliers) added
 *   to bin `i - 1` (clipping);
 * - candidate `Q`: the first `i` bins (without outliers) merged into `levels`
 *   groups — bin `k` belongs to group `j` when `j i / levels <= k < (j+1) i / levels`
 *   (NumPy `digitize` over `linspace(0, i, levels + 1)`, as pytorch-quantization;
 *   computed in integers here) — and each group's count spread evenly over its
 *   bins where `P` is non-zero (TensorRT's "expand"; the outlier bin counts as
 *   populated, as in MXNet/TVM/ONNX Runtime);
 * - zero smoothing: a populated bin whose group has no count gets
 *   {@link KL_SMOOTHING_EPS} counts so the divergence stays finite (MXNet's
 *   `_smooth_distribution` epsilon; MXNet also subtracts a compensating
 *   `eps * zeros / nonzeros` from populated bins, a change of at most 1e-4 of a
 *   count that is omitted here); pytorch-quantization instead scores such a
 *   candidate `+inf`. It happens only when bin `i - 1` is empty and outliers exist.
 * - `D(P || Q) = sum p ln(p / q)` after normalising both.
 *
 * As in pytorch-quantization, bin 0 is first replaced by bin 1 (so a spike of
 * exact zeros, e.g. after ReLU, does not dominate), and ties (divergences within
 * 1e-12 of the minimum, the rounding noise of the closed form) go to the largest `i`. The sums are evaluated in closed form from prefix sums (`P ln P` and
 * per-group counts), `O(levels)` per candidate, in float64.
 *
 * @example
 * ```ts
 * import { entropyThreshold } from "./entropy.ts";
 * // Uniform counts: nothing is gained by clipping, all bins are kept.
 * const { bin } = entropyThreshold(new Float64Array(256).fill(10), 128, 128);
 * if (bin !== 256) throw new Error("bad");
 * ```
 */
export function entropyThreshold(
  counts: ArrayLike<number>,
  levels: number,
  startBin = 128,
  lastBin: number = counts.length,
): { bin: number; divergence: number } {
  const B = counts.length;
  if (B === 0) throw new QuantlabError("EMPTY_TENSOR", "entropyThreshold: histogram has no bins");
  if (!Number.isInteger(levels) || levels < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `entropyThreshold: levels must be a positive integer, got ${levels}`);
  }
  const c = Float64Array.from(counts);
  if (B > 1) c[0] = c[1];
  const S = new Float64Array(B + 1), NZ = new Float64Array(B + 1), L = new Float64Array(B + 1);
  for (let k = 0; k < B; k++) {
    const v = c[k];
    S[k + 1] = S[k] + v;
    NZ[k + 1] = NZ[k] + (v > 0 ? 1 : 0);
    L[k + 1] = L[k] + (v > 0 ? v * Math.log(v) : 0);
  }
  const N = S[B];
  if (N === 0) return { bin: B, divergence: 0 };
  const lnN = Math.log(N);
  const lnEps = Math.log(KL_SMOOTHING_EPS);
  const first = Math.min(Math.max(1, Math.floor(startBin)), B);
  const stop = Math.min(Math.max(first, Math.floor(lastBin)), B);
  const kls = new Float64Array(stop - first + 1);
  let best = Infinity;
  for (let i = first; i <= stop; i++) {
    const O = N - S[i];
    const ci = c[i - 1];
    const last = ci + O;
    const plogp = L[i - 1] + (last > 0 ? last * Math.log(last) : 0);
    let cross = 0;
    let Z = S[i];
    if (levels >= i) {
      // Every bin is its own group: Q is the clipped-off histogram itself.
      cross = L[i - 1];
      if (last > 0) {
        if (ci > 0) cross += last * Math.log(ci);
        else {
          cross += last * lnEps;
          Z += KL_SMOOTHING_EPS;
        }
      }
    } else {
      let s0 = 0;
      for (let j = 0; j < levels; j++) {
        const s1 = Math.floor(((j + 1) * i + levels - 1) / levels);
        if (s1 > s0) {
          const G = S[s1] - S[s0];
          let nz = NZ[s1] - NZ[s0];
          let pm = G;
          if (s1 === i) {
            pm += O;
            if (ci === 0 && O > 0) nz += 1;
          }
          if (pm > 0) {
            if (G > 0) cross += pm * Math.log(G / nz);
            else {
              cross += pm * lnEps;
              Z += KL_SMOOTHING_EPS;
            }
          }
          s0 = s1;
        }
      }
    }
    // KL >= 0; the closed form can land a few ulps below 0 when P = Q.
    const kl = Math.max(0, (plogp - cross) / N - lnN + Math.log(Z));
    kls[i - first] = kl;
    if (kl < best) best = kl;
  }
  // Ties (within float64 noise of the closed form, KL_TIE) go to the largest candidate, as in the reference.
  let bestI = stop;
  while (bestI > first && !(kls[bestI - first] <= best + KL_TIE)) bestI--;
  return { bin: bestI, divergence: kls[bestI - first] };
}

class EntropyObserver implements Observer {
  readonly name = "entropy";
  batches = 0;
  #state: PerSlotState;
  #hist: SlotHistograms;
  constructor(private readonly ctx: ObserverContext, private readonly opts: Required<EntropyOptions>) {
    this.#state = new PerSlotState(ctx);
    this.#hist = new SlotHistograms(opts.bins, "abs");
  }
  observe(batch: Tensor<"float32">): void {
    checkBatch(batch, this.ctx, this.name);
    const b = this.#state.update(batch);
    this.#hist.add(batch, slotLayout(batch, this.ctx), b.min, b.max);
    this.batches++;
  }
  range(): ClipRange {
    if (this.batches === 0) {
      throw new QuantlabError("NOT_CALIBRATED", `${this.ctx.name ?? "tensor"}: entropy observer has seen no batch`);
    }
    const { min, max } = this.#state;
    const h = this.#hist, B = h.bins;
    const n = min.length;
    const lo = new Float64Array(n), hi = new Float64Array(n);
    for (let s = 0; s < n; s++) {
      const levels = this.opts.quantizedBins || entropyLevels(this.ctx.scheme, min[s] >= 0);
      const amax = Math.max(-min[s], max[s]);
      let t = 0;
      if (h.width[s] > 0) {
        const { bin } = entropyThreshold(h.counts.subarray(s * B, (s + 1) * B), levels, this.opts.startBin);
        t = Math.min(amax, bin * h.width[s]);
      }
      hi[s] = Math.min(max[s], t);
      lo[s] = Math.min(Math.max(min[s], -t), hi[s]);
    }
    return { min: lo, max: hi };
  }
}

/**
 * Entropy (KL-divergence) calibration, streamed. Each slot keeps a
 * `bins`-bin histogram of `|x|` over `[0, T_hist]` (see `histogram.ts`:
 * power-of-two range growth with exact bin merging, no data held); at the end
 * {@link entropyThreshold} picks the threshold `T = i * binWidth` minimising
 * `KL(P || Q)` over `i >= startBin`, with `P` and `Q` quantized into
 * `quantizedBins` levels (default {@link entropyLevels} of the scheme).
 *
 * Threshold: `T = i * binWidth` is the right edge of the last kept bin, as
 * pytorch-quantization and MXNet (TensorRT's slides use the bin centre
 * `(i - 0.5) * binWidth`); it is capped at the observed `max|x|`.
 *
 * Streaming: when later batches grow the range, the histogram is the exact
 * histogram of all data on a grid up to twice as coarse as the one a single
 * batch would give, and the KL optimum over a flat tail can move by more than
 * a bin; put a batch holding the extremes first (or calibrate on one batch)
 * to get the single-batch result exactly.
 *
 * Output range: `[-T, T]` intersected with the observed `[min, max]`, so
 * non-negative data gives `[min, T]` (which `paramsFromRange` maps as `[0, T]`)
 * and the range never exceeds min-max. With per-channel contexts each channel
 * gets its own histogram and threshold.
 *
 * @example
 * ```ts
 * import { entropy } from "./entropy.ts";
 * import { Prng } from "../../tensor/prng.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const rng = new Prng(1);
 * const x = Float32Array.from({ length: 20000 }, () => rng.nextNormal());
 * x[0] = 40; // an outlier
 * const obs = entropy().create({ scheme: { bits: 8, signed: true, symmetric: true, range: "restricted" } });
 * obs.observe(Tensor.from(x));
 * if (!(obs.range().max[0] < 40)) throw new Error("the outlier should be clipped");
 * if (entropy().toString() !== "entropy(bins=2048, startBin=128)") throw new Error("bad");
 * ```
 */
export function entropy(options: EntropyOptions = {}): Calibrator {
  const bins = options.bins ?? 2048;
  const startBin = options.startBin ?? 128;
  const quantizedBins = options.quantizedBins ?? 0;
  checkBins(bins, "entropy bins");
  if (!Number.isInteger(startBin) || startBin < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `entropy startBin must be a positive integer, got ${startBin}`);
  }
  if (options.quantizedBins !== undefined && (!Number.isInteger(quantizedBins) || quantizedBins < 2)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `entropy quantizedBins must be an integer >= 2, got ${options.quantizedBins}`,
    );
  }
  const opts = { bins, startBin, quantizedBins };
  const q = quantizedBins ? `, quantizedBins=${quantizedBins}` : "";
  return Object.freeze({
    name: "entropy",
    create: (ctx: ObserverContext) => new EntropyObserver(ctx, opts),
    toString: () => `entropy(bins=${bins}${q}, startBin=${startBin})`,
    toRecipe: (): CalibratorRecipe => ({
      name: "entropy",
      options: quantizedBins ? { bins, quantizedBins, startBin } : { bins, startBin },
    }),
  });
}
