/**
 * Min-max observer: the running minimum and maximum (PyTorch `MinMaxObserver`,
 * `PerChannelMinMaxObserver`).
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import { checkBatch, PerSlotState } from "./slot_state.ts";
import type { Calibrator, CalibratorRecipe, ClipRange, Observer, ObserverContext } from "./observer.ts";
import type { Tensor } from "../../tensor/tensor.ts";

class MinMaxObserver implements Observer {
  readonly name = "minmax";
  batches = 0;
  #state: PerSlotState;
  constructor(private readonly ctx: ObserverContext) {
    this.#state = new PerSlotState(ctx);
  }
  observe(batch: Tensor<"float32">): void {
    checkBatch(batch, this.ctx, this.name);
    this.#state.update(batch);
    this.batches++;
  }
  range(): ClipRange {
    if (this.batches === 0) {
      throw new QuantlabError("NOT_CALIBRATED", `${this.ctx.name ?? "tensor"}: min-max observer has seen no batch`);
    }
    return { min: this.#state.min.slice(), max: this.#state.max.slice() };
  }
}

/**
 * Min-max calibration: the clipping range is the observed `[min, max]`.
 *
 * @example
 * ```ts
 * import { minMax } from "./min_max.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const obs = minMax().create({ scheme: { bits: 8, signed: true, symmetric: true, range: "full" } });
 * obs.observe(Tensor.from([-1, 2]));
 * obs.observe(Tensor.from([3, 0]));
 * const r = obs.range();
 * if (r.min[0] !== -1 || r.max[0] !== 3) throw new Error("bad");
 * ```
 */
export function minMax(): Calibrator {
  return {
    name: "minmax",
    create: (ctx) => new MinMaxObserver(ctx),
    toString: () => "minMax()",
    toRecipe: (): CalibratorRecipe => ({ name: "minmax", options: {} }),
  };
}
