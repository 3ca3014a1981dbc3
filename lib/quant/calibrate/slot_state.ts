/**
 * Shared bookkeeping for per-tensor / per-channel observers.
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import { resolveGranularity } from "../params.ts";
import type { Granularity } from "../params.ts";
import { slotMinMax } from "../slots.ts";
import { axisView } from "../../tensor/layout.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { ObserverContext } from "./observer.ts";

/**
 * The granularity an observer context asks for.
 *
 * @example
 * ```ts
 * import { contextGranularity } from "./slot_state.ts";
 * const g = contextGranularity({ scheme: { bits: 8, signed: true, symmetric: true, range: "full" }, axis: 0 });
 * if (g.kind !== "channel") throw new Error("bad");
 * ```
 */
export function contextGranularity(ctx: ObserverContext): Granularity {
  return ctx.axis === undefined ? { kind: "tensor" } : { kind: "channel", axis: ctx.axis };
}

/**
 * Validate a batch is non-empty (`EMPTY_TENSOR`). Finiteness (`NON_FINITE`) is
 * checked by {@link PerSlotState.update}, fused into its min/max pass, which
 * every observer runs before using the data.
 *
 * @example
 * ```ts
 * import { checkBatch } from "./slot_state.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const ctx = { scheme: { bits: 8, signed: true, symmetric: true, range: "full" } } as const;
 * checkBatch(Tensor.from([1, 2]), ctx, "minmax"); // passes
 * let threw = false;
 * try { checkBatch(Tensor.from([]), ctx, "minmax"); } catch { threw = true; }
 * if (!threw) throw new Error("bad");
 * ```
 */
export function checkBatch(batch: Tensor<"float32">, ctx: ObserverContext, observer: string): void {
  const what = `${ctx.name ?? "tensor"} (${observer} observer)`;
  if (batch.size === 0) {
    throw new QuantlabError("EMPTY_TENSOR", `${what}: batch is empty; expected at least one element`);
  }
}

/**
 * A batch seen as `outer x slots x inner` (row-major): element `(o, s, i)` is at
 * flat index `(o * slots + s) * inner + i` and belongs to slot `s`. Per-tensor
 * batches are `1 x 1 x size`.
 */
export interface SlotLayout {
  /** Product of the dimensions before the channel axis (1 per-tensor). */
  readonly outer: number;
  /** Number of slots (channels; 1 per-tensor). */
  readonly slots: number;
  /** Product of the dimensions after the channel axis (the size per-tensor). */
  readonly inner: number;
}

/**
 * The {@link SlotLayout} of a batch for an observer context (throws `AXIS_OUT_OF_RANGE`).
 *
 * @example
 * ```ts
 * import { slotLayout } from "./slot_state.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const l = slotLayout(Tensor.zeros([2, 3, 4]), { scheme: { bits: 8, signed: true, symmetric: true, range: "full" }, axis: 1 });
 * if (l.outer !== 2 || l.slots !== 3 || l.inner !== 4) throw new Error("bad");
 * ```
 */
export function slotLayout(batch: Tensor<"float32">, ctx: ObserverContext): SlotLayout {
  if (ctx.axis === undefined) return { outer: 1, slots: 1, inner: batch.size };
  const { granularity } = resolveGranularity(contextGranularity(ctx), batch.shape, ctx.name);
  const v = axisView(batch.shape, (granularity as { axis: number }).axis);
  return { outer: v.outer, slots: v.axisLength, inner: v.inner };
}

/**
 * Running per-slot min/max with a fixed slot count after the first batch
 * (a batch with another channel count throws `SHAPE_MISMATCH`).
 *
 * @example
 * ```ts
 * import { PerSlotState } from "./slot_state.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * const st = new PerSlotState({ scheme: { bits: 8, signed: true, symmetric: true, range: "full" }, axis: 0 });
 * st.update(Tensor.from([1, -2, 3, 4], [2, 2]));
 * st.update(Tensor.from([0, 9, -5, 4], [2, 2]));
 * if (st.min.join() !== "-2,-5" || st.max.join() !== "9,4") throw new Error("bad");
 * ```
 */
export class PerSlotState {
  min = new Float64Array(0);
  max = new Float64Array(0);
  readonly granularity: Granularity;
  constructor(private readonly ctx: ObserverContext) {
    this.granularity = contextGranularity(ctx);
  }
  /** Number of slots (0 before the first batch). */
  get slots(): number {
    return this.min.length;
  }
  /** Per-slot min/max of one batch (does not touch the running state). */
  batchMinMax(batch: Tensor<"float32">): { min: Float64Array; max: Float64Array; granularity: Granularity } {
    const { slots, granularity } = resolveGranularity(this.granularity, batch.shape, this.ctx.name);
    if (this.min.length !== 0 && slots !== this.min.length) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${
          this.ctx.name ?? "tensor"
        }: batch of shape [${batch.shape}] has ${slots} channels but earlier batches had ${this.min.length}`,
      );
    }
    const name = this.ctx.name ?? "tensor";
    return { ...slotMinMax(batch.data, batch.shape, granularity, slots, undefined, name), granularity };
  }
  /** Fold a batch into the running min/max; returns the batch's own min/max. */
  update(batch: Tensor<"float32">): { min: Float64Array; max: Float64Array } {
    const b = this.batchMinMax(batch);
    if (this.min.length === 0) {
      this.min = b.min.slice();
      this.max = b.max.slice();
    } else {
      for (let i = 0; i < this.min.length; i++) {
        if (b.min[i] < this.min[i]) this.min[i] = b.min[i];
        if (b.max[i] > this.max[i]) this.max[i] = b.max[i];
      }
    }
    return b;
  }
}
