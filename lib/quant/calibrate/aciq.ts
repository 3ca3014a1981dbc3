/**
 * ACIQ analytic clipping (Banner et al. 2019): clip at a bit-width-dependent
 * multiple of the prior's scale, estimated from streamed moments.
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { aciqMultiplier, type AciqPrior } from "./aciq_alpha.ts";
import { checkBins, SlotHistograms } from "./histogram.ts";
import type { Calibrator, CalibratorRecipe, ClipRange, Observer, ObserverContext } from "./observer.ts";
import { checkBatch, PerSlotState, type SlotLayout, slotLayout } from "./slot_state.ts";

/** Options of {@link aciq}. */
export interface AciqOptions {
  /** The prior: `"laplace"` (default, scale `b = E|x - mean|`) or `"gaussian"` (scale = standard deviation). */
  readonly prior?: AciqPrior;
  /** Laplace only: bins of the histogram that gives `E|x - mean|` (even, default 2048). */
  readonly bins?: number;
}

/**
 * Streaming per-slot count, mean and sum of squared deviations (Chan et al.'s
 * pairwise update of each batch's two-pass mean and M2), float64.
 *
 * @example
 * ```ts
 * import { SlotMoments } from "./aciq.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const m = new SlotMoments();
 * m.add(Tensor.from([1, 2]), { outer: 1, slots: 1, inner: 2 });
 * m.add(Tensor.from([3, 4, 5]), { outer: 1, slots: 1, inner: 3 });
 * if (m.mean[0] !== 3 || m.m2[0] !== 10) throw new Error("bad");
 * ```
 */
export class SlotMoments {
  /** Counts per slot. */
  count = new Float64Array(0);
  /** Means per slot. */
  mean = new Float64Array(0);
  /** Sums of squared deviations from the mean per slot. */
  m2 = new Float64Array(0);

  /** Fold in a batch seen through `layout`. */
  add(batch: Tensor<"float32">, layout: SlotLayout): void {
    const { outer, slots, inner } = layout;
    const x = batch.data;
    if (this.count.length === 0) {
      this.count = new Float64Array(slots);
      this.mean = new Float64Array(slots);
      this.m2 = new Float64Array(slots);
    }
    const sum = new Float64Array(slots), dev = new Float64Array(slots);
    for (let o = 0; o < outer; o++) {
      for (let s = 0; s < slots; s++) {
        const start = (o * slots + s) * inner;
        let acc = 0;
        for (let j = start; j < start + inner; j++) acc += x[j];
        sum[s] += acc;
      }
    }
    const nb = outer * inner;
    for (let s = 0; s < slots; s++) sum[s] /= nb;
    for (let o = 0; o < outer; o++) {
      for (let s = 0; s < slots; s++) {
        const start = (o * slots + s) * inner, mu = sum[s];
        let acc = 0;
        for (let j = start; j < start + inner; j++) {
          const d = x[j] - mu;
          acc += d * d;
        }
        dev[s] += acc;
      }
    }
    for (let s = 0; s < slots; s++) {
      const na = this.count[s], n = na + nb, delta = sum[s] - this.mean[s];
      this.mean[s] += delta * nb / n;
      this.m2[s] += dev[s] + delta * delta * na * nb / n;
      this.count[s] = n;
    }
  }
}

/**
 * Mean absolute deviation `E|x - mu|` of slot `s` from a histogram with per-bin
 * sums: exact for every bin wholly on one side of `mu` (`|sum - count * mu|`);
 * the bin holding `mu` assumes its values uniform, an error of at most
 * `(its count / total) * binWidth`.
 *
 * @example
 * ```ts
 * import { meanAbsDeviation } from "./aciq.ts";
 * import { SlotHistograms } from "./histogram.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const h = new SlotHistograms(4, "signed", true);
 * h.add(Tensor.from([-2, -2, 2, 2]), { outer: 1, slots: 1, inner: 4 }, [-2], [2]);
 * if (Math.abs(meanAbsDeviation(h, 0, 0, 4) - 2) > 1e-9) throw new Error("bad");
 * ```
 */
export function meanAbsDeviation(h: SlotHistograms, s: number, mu: number, total: number): number {
  const B = h.bins, off = s * B, w = h.width[s], lo = h.lo[s], c = h.counts, m = h.sums!;
  if (w === 0 || total === 0) return Math.abs(mu); // every value seen is 0
  let acc = 0;
  for (let k = 0; k < B; k++) {
    const n = c[off + k];
    if (n === 0) continue;
    const a = lo + k * w, b = a + w;
    if (b <= mu) acc += n * mu - m[off + k];
    else if (a >= mu) acc += m[off + k] - n * mu;
    else acc += n * ((mu - a) * (mu - a) + (b - mu) * (b - mu)) / (2 * w);
  }
  return acc / total;
}

class AciqObserver implements Observer {
  readonly name = "aciq";
  batches = 0;
  #state: PerSlotState;
  #moments = new SlotMoments();
  #hist: SlotHistograms | undefined;
  constructor(private readonly ctx: ObserverContext, private readonly prior: AciqPrior, bins: number) {
    this.#state = new PerSlotState(ctx);
    if (prior === "laplace") this.#hist = new SlotHistograms(bins, "signed", true);
  }
  observe(batch: Tensor<"float32">): void {
    checkBatch(batch, this.ctx, this.name);
    const b = this.#state.update(batch);
    const layout = slotLayout(batch, this.ctx);
    this.#moments.add(batch, layout);
    this.#hist?.add(batch, layout, b.min, b.max);
    this.batches++;
  }
  /** Per-slot prior scale (`b` or `sigma`) and mean. */
  stats(): { scale: Float64Array; mean: Float64Array } {
    const { count, mean, m2 } = this.#moments;
    const scale = new Float64Array(count.length);
    for (let s = 0; s < count.length; s++) {
      scale[s] = this.#hist ? meanAbsDeviation(this.#hist, s, mean[s], count[s]) : Math.sqrt(m2[s] / count[s]);
    }
    return { scale, mean: mean.slice() };
  }
  range(): ClipRange {
    if (this.batches === 0) {
      throw new QuantlabError("NOT_CALIBRATED", `${this.ctx.name ?? "tensor"}: aciq observer has seen no batch`);
    }
    const { min, max } = this.#state;
    const { scale, mean } = this.stats();
    const mult = aciqMultiplier(this.prior, this.ctx.scheme.bits);
    const n = min.length;
    const lo = new Float64Array(n), hi = new Float64Array(n);
    for (let s = 0; s < n; s++) {
      const alpha = mult * scale[s], mu = mean[s];
      if (this.ctx.scheme.symmetric) {
        const t = Math.min(Math.max(-min[s], max[s]), Math.abs(mu) + alpha);
        hi[s] = Math.min(max[s], t);
        lo[s] = Math.min(Math.max(min[s], -t), hi[s]);
      } else {
        const width = Math.min(2 * alpha, max[s] - min[s]);
        lo[s] = Math.min(Math.max(mu - alpha, min[s]), max[s] - width);
        hi[s] = Math.min(max[s], lo[s] + width);
      }
    }
    return { min: lo, max: hi };
  }
}

/**
 * ACIQ analytic clipping, streamed. Per slot it keeps the count, mean and
 * variance (exact streaming moments, {@link SlotMoments}) and, for the Laplace
 * prior, a signed histogram with per-bin sums giving `b = E|x - mean|` after
 * the last batch ({@link meanAbsDeviation}; the mean is not known while
 * streaming). The clipping half-width is `alpha = aciqMultiplier(prior, bits)
 * * scale` (Laplace `b`, Gaussian `sigma`, the population standard deviation).
 *
 * - Asymmetric schemes: a window of width `2 alpha` centred at the mean,
 *   shifted to stay inside `[min, max]` and shrunk to `max - min` if wider (the
 *   authors' `alpha2DeltaOffset`/`get_clip` keep the width `2 alpha` and clamp
 *   the lower end at `min`; the upper end is clamped too, so min-max is never widened).
 * - Symmetric schemes: `T = min(max|x|, |mean| + alpha)`, range `[-T, T]`
 *   intersected with `[min, max]`.
 *
 * The multipliers assume the two-sided prior and `2^bits` levels over the
 * window for every scheme (the paper's model), including restricted symmetric
 * grids (`2^bits - 1` levels) and one-sided (post-ReLU) data, for which the
 * authors also tabulate separate "positive" multipliers that are not used here.
 *
 * @example
 * ```ts
 * import { aciq } from "./aciq.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const obs = aciq({ prior: "gaussian" }).create({ scheme: { bits: 2, signed: true, symmetric: false, range: "full" } });
 * obs.observe(Tensor.from([-3, -1, -1, 1, 1, 3])); // mean 0, sigma = sqrt(22/6)
 * const r = obs.range(); // alpha = 1.7106 * 1.915 = 3.28 > 3: not clipped
 * if (r.min[0] !== -3 || r.max[0] !== 3) throw new Error("bad");
 * if (aciq().toString() !== "aciq(prior=laplace)") throw new Error("bad");
 * ```
 */
export function aciq(options: AciqOptions = {}): Calibrator {
  const prior = options.prior ?? "laplace";
  const bins = options.bins ?? 2048;
  if (prior !== "laplace" && prior !== "gaussian") {
    throw new QuantlabError("INVALID_ARGUMENT", `aciq prior must be "laplace" or "gaussian", got "${prior}"`);
  }
  checkBins(bins, "aciq bins");
  const extra = options.bins !== undefined && prior === "laplace" ? `, bins=${bins}` : "";
  return Object.freeze({
    name: "aciq",
    create: (ctx: ObserverContext) => new AciqObserver(ctx, prior, bins),
    toString: () => `aciq(prior=${prior}${extra})`,
    toRecipe: (): CalibratorRecipe => ({
      name: "aciq",
      options: options.bins === undefined ? { prior } : { prior, bins },
    }),
  });
}
