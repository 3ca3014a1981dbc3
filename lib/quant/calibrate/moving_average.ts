/**
 * Moving-average min-max observer (PyTorch `MovingAverageMinMaxObserver`,
 * `MovingAveragePerChannelMinMaxObserver`).
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { Calibrator, CalibratorRecipe, ClipRange, Observer, ObserverContext } from "./observer.ts";
import { checkBatch, PerSlotState } from "./slot_state.ts";

/** Options of {@link movingAverage}. */
export interface MovingAverageOptions {
  /** Weight `c` of the newest batch, in `(0, 1]` (PyTorch's `averaging_constant`, default 0.01). */
  readonly averagingConstant?: number;
}

class MovingAverageObserver implements Observer {
  readonly name = "movingaverage";
  batches = 0;
  #state: PerSlotState;
  #min = new Float64Array(0);
  #max = new Float64Array(0);
  #c: number;
  constructor(private readonly ctx: ObserverContext, c: number) {
    this.#state = new PerSlotState(ctx);
    this.#c = Math.fround(c);
  }
  observe(batch: Tensor<"float32">): void {
    checkBatch(batch, this.ctx, this.name);
    // The running state validates the channel count; its update returns this batch's min/max.
    const b = this.#state.update(batch);
    if (this.batches === 0) {
      this.#min = b.min.slice();
      this.#max = b.max.slice();
    } else {
      // float32 arithmetic in PyTorch's order: min + c * (batch_min - min).
      const f = Math.fround, c = this.#c, mn = this.#min, mx = this.#max;
      for (let i = 0; i < mn.length; i++) {
        mn[i] = f(mn[i] + f(c * f(b.min[i] - mn[i])));
        mx[i] = f(mx[i] + f(c * f(b.max[i] - mx[i])));
      }
    }
    this.batches++;
  }
  range(): ClipRange {
    if (this.batches === 0) {
      throw new QuantlabError(
        "NOT_CALIBRATED",
        `${this.ctx.name ?? "tensor"}: moving-average observer has seen no batch`,
      );
    }
    return { min: this.#min.slice(), max: this.#max.slice() };
  }
}

/**
 * Moving-average min-max calibration, exactly as PyTorch's
 * `MovingAverageMinMaxObserver` / `MovingAveragePerChannelMinMaxObserver`:
 * the first batch sets `min`/`max`; each later batch updates
 * `min += c * (batch_min - min)` and `max += c * (batch_max - max)`, per slot,
 * in float32 arithmetic (so the state matches PyTorch's float32 buffers bit for
 * bit). The range is not widened to include zero here; `paramsFromRange` does
 * that when parameters are computed, as PyTorch's `_calculate_qparams` does.
 *
 * @example
 * ```ts
 * import { movingAverage } from "./moving_average.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const obs = movingAverage({ averagingConstant: 0.5 }).create({
 *   scheme: { bits: 8, signed: true, symmetric: true, range: "full" },
 * });
 * obs.observe(Tensor.from([-1, 2]));
 * obs.observe(Tensor.from([-3, 4]));
 * const r = obs.range(); // min = -1 + 0.5 * (-3 + 1) = -2, max = 2 + 0.5 * (4 - 2) = 3
 * if (r.min[0] !== -2 || r.max[0] !== 3) throw new Error("bad");
 * ```
 */
export function movingAverage(options: MovingAverageOptions = {}): Calibrator {
  const c = options.averagingConstant ?? 0.01;
  if (typeof c !== "number" || !(c > 0 && c <= 1)) {
    throw new QuantlabError("INVALID_ARGUMENT", `movingAverage averagingConstant must be in (0, 1], got ${c}`);
  }
  return Object.freeze({
    name: "movingaverage",
    create: (ctx: ObserverContext) => new MovingAverageObserver(ctx, c),
    toString: () => `movingAverage(averagingConstant=${c})`,
    toRecipe: (): CalibratorRecipe => ({ name: "movingaverage", options: { averagingConstant: c } }),
  });
}
