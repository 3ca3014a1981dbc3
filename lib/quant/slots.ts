/**
 * Iterating a tensor by quantization slot without copying.
 *
 * A tensor seen along the granularity's axis is a sequence of contiguous
 * *segments*; within a segment, element `k` uses slot `slot0 + k * slotStride`
 * (stride 0 for per-tensor and per-channel, 1 for per-group).
 *
 * @module
 */
import { axisView } from "../tensor/layout.ts";
import type { Granularity } from "./params.ts";

/** Visit each contiguous segment: `fn(start, end, slot0, slotStride)`. */
export function forEachSegment(
  shape: readonly number[],
  g: Granularity,
  fn: (start: number, end: number, slot0: number, slotStride: number) => void,
): void {
  let size = 1;
  for (const d of shape) size *= d;
  if (g.kind === "tensor") {
    if (size > 0) fn(0, size, 0, 0);
    return;
  }
  const { outer, axisLength, inner } = axisView(shape, g.axis);
  if (g.kind === "channel") {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < axisLength; c++) {
        const start = (o * axisLength + c) * inner;
        fn(start, start + inner, c, 0);
      }
    }
    return;
  }
  const groups = axisLength / g.groupSize;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < axisLength; c++) {
      const start = (o * axisLength + c) * inner;
      const slot0 = (o * groups + Math.floor(c / g.groupSize)) * inner;
      fn(start, start + inner, slot0, 1);
    }
  }
}

/**
 * Per-slot minimum and maximum of `data` (float64 results).
 *
 * @example
 * ```ts
 * import { slotMinMax } from "./slots.ts";
 * const { min, max } = slotMinMax(new Float32Array([1, -2, 3, 4]), [2, 2], { kind: "channel", axis: 0 }, 2);
 * if (min[0] !== -2 || max[1] !== 4) throw new Error("bad");
 * ```
 */
export function slotMinMax(
  data: Float32Array,
  shape: readonly number[],
  g: Granularity,
  slots: number,
  into?: { min: Float64Array; max: Float64Array },
): { min: Float64Array; max: Float64Array } {
  const min = into?.min ?? new Float64Array(slots).fill(Infinity);
  const max = into?.max ?? new Float64Array(slots).fill(-Infinity);
  forEachSegment(shape, g, (start, end, slot0, stride) => {
    if (stride === 0) {
      let lo = min[slot0], hi = max[slot0];
      for (let j = start; j < end; j++) {
        const v = data[j];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      min[slot0] = lo;
      max[slot0] = hi;
    } else {
      for (let j = start, s = slot0; j < end; j++, s++) {
        const v = data[j];
        if (v < min[s]) min[s] = v;
        if (v > max[s]) max[s] = v;
      }
    }
  });
  return { min, max };
}
