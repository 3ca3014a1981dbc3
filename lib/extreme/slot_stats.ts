/**
 * Per-slot statistics and validation shared by the binary and ternary quantizers.
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import { resolveGranularity } from "../quant/params.ts";
import { forEachSegment } from "../quant/slots.ts";
import { asFloatTensor, type FloatInput, type Tensor } from "../tensor/tensor.ts";

/** Granularities the extreme quantizers support: per tensor or per (output) channel. */
export type ExtremeGranularity = { readonly kind: "tensor" } | { readonly kind: "channel"; readonly axis: number };

/** A validated input: float tensor, resolved granularity and slot count. */
export interface SlotInput {
  /** The tensor. */
  readonly tensor: Tensor<"float32">;
  /** Granularity with the axis normalised. */
  readonly granularity: ExtremeGranularity;
  /** Number of slots. */
  readonly slots: number;
}

/**
 * Validate `x` (non-empty, finite) and resolve the granularity against its shape.
 *
 * @example
 * ```ts
 * import { slotInput } from "./slot_stats.ts";
 * const s = slotInput([1, 2, 3, 4], [2, 2], { kind: "channel", axis: -1 }, "w");
 * if (s.slots !== 2 || s.granularity.kind !== "channel" || s.granularity.axis !== 1) throw new Error("bad");
 * ```
 */
export function slotInput(
  x: FloatInput,
  shape: readonly number[] | undefined,
  g: ExtremeGranularity,
  name: string,
  checkFinite = true,
): SlotInput {
  const t0 = asFloatTensor(x, name);
  const tensor = shape ? t0.reshape(shape) : t0;
  if (tensor.size === 0) {
    throw new QuantlabError(
      "EMPTY_TENSOR",
      `${name}: tensor of shape [${tensor.shape}] is empty; expected at least one element`,
    );
  }
  if (checkFinite) assertFinite(tensor.data, name);
  const r = resolveGranularity(g, tensor.shape, name);
  return { tensor, granularity: r.granularity as ExtremeGranularity, slots: r.slots };
}

/**
 * Per-slot count and sum of `|x|` (float64).
 *
 * @example
 * ```ts
 * import { slotAbsSums } from "./slot_stats.ts";
 * const { count, absSum } = slotAbsSums(new Float32Array([1, -2, 3, -4]), [2, 2], { kind: "channel", axis: 0 }, 2);
 * if (count[1] !== 2 || absSum[1] !== 7) throw new Error("bad");
 * ```
 */
export function slotAbsSums(
  x: Float32Array,
  shape: readonly number[],
  g: ExtremeGranularity,
  slots: number,
): { count: Float64Array; absSum: Float64Array; absMax: Float64Array } {
  const count = new Float64Array(slots), absSum = new Float64Array(slots), absMax = new Float64Array(slots);
  forEachSegment(shape, g, (start, end, slot) => {
    let s = 0, m = absMax[slot];
    for (let i = start; i < end; i++) {
      const a = Math.abs(x[i]);
      s += a;
      if (a > m) m = a;
    }
    absSum[slot] += s;
    absMax[slot] = m;
    count[slot] += end - start;
  });
  return { count, absSum, absMax };
}

/**
 * Check that per-slot parameters hold one value per slot; throws `SHAPE_MISMATCH`.
 *
 * @example
 * ```ts
 * import { checkSlotParams } from "./slot_stats.ts";
 * checkSlotParams(new Float32Array(2), 2, "scales", "w"); // passes
 * ```
 */
export function checkSlotParams(p: ArrayLike<number>, slots: number, what: string, name: string): void {
  if (p.length !== slots) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${name}: ${what} hold ${p.length} values but the tensor has ${slots} slot(s)`,
    );
  }
}

/**
 * Number of slots a granularity gives a tensor of `shape` (throws `AXIS_OUT_OF_RANGE`).
 *
 * @example
 * ```ts
 * import { slotCount } from "./slot_stats.ts";
 * if (slotCount([3, 4], { kind: "channel", axis: 0 }, "codes") !== 3) throw new Error("bad");
 * ```
 */
export function slotCount(shape: readonly number[], g: ExtremeGranularity, name: string): number {
  return resolveGranularity(g, shape, name).slots;
}
