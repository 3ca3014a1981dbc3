/**
 * Percentile calibration: clip at a high percentile of the observed values,
 * streamed through a histogram.
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { checkBins, SlotHistograms } from "./histogram.ts";
import type { Calibrator, CalibratorRecipe, ClipRange, Observer, ObserverContext } from "./observer.ts";
import { checkBatch, PerSlotState, slotLayout } from "./slot_state.ts";

/** Options of {@link percentile}. */
export interface PercentileOptions {
  /** Upper percentile in `(0, 100]` (default 99.99). */
  readonly percentile?: number;
  /**
   * Lower percentile in `[0, percentile)` for asymmetric schemes (default
   * `100 - percentile`). Symmetric schemes clip `|x|` and do not use it.
   */
  readonly lowerPercentile?: number;
  /** Histogram bins per slot, even (default 2048). */
  readonly bins?: number;
}

class PercentileObserver implements Observer {
  readonly name = "percentile";
  batches = 0;
  #state: PerSlotState;
  #hist: SlotHistograms;
  constructor(
    private readonly ctx: ObserverContext,
    private readonly upper: number,
    private readonly lower: number,
    bins: number,
  ) {
    this.#state = new PerSlotState(ctx);
    this.#hist = new SlotHistograms(bins, ctx.scheme.symmetric ? "abs" : "signed");
  }
  observe(batch: Tensor<"float32">): void {
    checkBatch(batch, this.ctx, this.name);
    const b = this.#state.update(batch);
    this.#hist.add(batch, slotLayout(batch, this.ctx), b.min, b.max);
    this.batches++;
  }
  range(): ClipRange {
    if (this.batches === 0) {
      throw new QuantlabError("NOT_CALIBRATED", `${this.ctx.name ?? "tensor"}: percentile observer has seen no batch`);
    }
    const { min, max } = this.#state;
    const n = min.length;
    const lo = new Float64Array(n), hi = new Float64Array(n);
    for (let s = 0; s < n; s++) {
      if (this.ctx.scheme.symmetric) {
        const t = this.#hist.quantile(s, this.upper / 100);
        hi[s] = Math.min(max[s], t);
        lo[s] = Math.min(Math.max(min[s], -t), hi[s]);
      } else {
        lo[s] = Math.min(max[s], Math.max(min[s], this.#hist.quantile(s, this.lower / 100)));
        hi[s] = Math.max(lo[s], Math.min(max[s], this.#hist.quantile(s, this.upper / 100)));
      }
    }
    return { min: lo, max: hi };
  }
}

/**
 * Percentile calibration, streamed: each slot keeps a histogram (see
 * `histogram.ts`: fixed `bins`, power-of-two range growth, exact re-binning)
 * and the clipping value is read off its cumulative counts with linear
 * interpolation inside the crossing bin.
 *
 * - Symmetric schemes: `T` = the `percentile`-th percentile of `|x|` (as
 *   NVIDIA's pytorch-quantization `_compute_amax_percentile`); the range is
 *   `[-T, T]` intersected with the observed `[min, max]`.
 * - Asymmetric schemes: `[P_lower(x), P_upper(x)]` of the signed values, with
 *   `lowerPercentile` defaulting to `100 - percentile`, intersected with `[min, max]`.
 *
 * Approximation: the result is within one bin width of the exact sample
 * quantile `x_(ceil(p N))` (that order statistic lies in the crossing bin).
 * The bin width is `span / bins` when the first batch holds the extremes, and
 * below `2 span / bins` otherwise (`span` = `max|x|`, or `max(x_max, 0) -
 * min(x_min, 0)` for the signed histogram). The range never exceeds the
 * observed `[min, max]`.
 *
 * @example
 * ```ts
 * import { percentile } from "./percentile.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const x = Float32Array.from({ length: 10001 }, (_, i) => i / 10000); // uniform on [0, 1]
 * const obs = percentile({ percentile: 90 }).create({ scheme: { bits: 8, signed: false, symmetric: false, range: "full" } });
 * obs.observe(Tensor.from(x));
 * const r = obs.range();
 * if (Math.abs(r.max[0] - 0.9) > 1 / 2048) throw new Error("bad");
 * ```
 */
export function percentile(options: PercentileOptions = {}): Calibrator {
  const upper = options.percentile ?? 99.99;
  const bins = options.bins ?? 2048;
  if (typeof upper !== "number" || !(upper > 0 && upper <= 100)) {
    throw new QuantlabError("INVALID_ARGUMENT", `percentile must be in (0, 100], got ${upper}`);
  }
  const lower = options.lowerPercentile ?? 100 - upper;
  if (typeof lower !== "number" || !(lower >= 0 && lower < upper)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `lowerPercentile must be in [0, percentile = ${upper}), got ${options.lowerPercentile}`,
    );
  }
  checkBins(bins, "percentile bins");
  const extra = options.lowerPercentile === undefined ? "" : `, lowerPercentile=${lower}`;
  return Object.freeze({
    name: "percentile",
    create: (ctx: ObserverContext) => new PercentileObserver(ctx, upper, lower, bins),
    toString: () => `percentile(percentile=${upper}${extra}, bins=${bins})`,
    toRecipe: (): CalibratorRecipe => ({
      name: "percentile",
      options: options.lowerPercentile === undefined
        ? { percentile: upper, bins }
        : { percentile: upper, lowerPercentile: lower, bins },
    }),
  });
}
