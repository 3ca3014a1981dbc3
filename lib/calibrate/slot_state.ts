/**
 * Shared bookkeeping for per-tensor / per-channel observers.
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import { resolveGranularity } from "../quant/params.ts";
import type { Granularity } from "../quant/params.ts";
import { slotMinMax } from "../quant/slots.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { ObserverContext } from "./observer.ts";

/** The granularity an observer context asks for. */
export function contextGranularity(ctx: ObserverContext): Granularity {
  return ctx.axis === undefined ? { kind: "tensor" } : { kind: "channel", axis: ctx.axis };
}

/** Validate a batch: non-empty, finite. */
export function checkBatch(batch: Tensor<"float32">, ctx: ObserverContext, observer: string): void {
  const what = `${ctx.name ?? "tensor"} (${observer} observer)`;
  if (batch.size === 0) {
    throw new QuantlabError("EMPTY_TENSOR", `${what}: batch is empty; expected at least one element`);
  }
  assertFinite(batch.data, what);
}

/** Running per-slot min/max with a fixed slot count after the first batch. */
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
    return { ...slotMinMax(batch.data, batch.shape, granularity, slots), granularity };
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
