/**
 * Iterating a tensor by quantization slot without copying.
 *
 * A tensor seen along the granularity's axis is a sequence of contiguous
 * *segments*; within a segment, element `k` uses slot `slot0 + k * slotStride`
 * (stride 0: one slot for the whole segment; stride 1: one slot per element).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { axisView } from "../tensor/layout.ts";
import { runMinMax } from "../tensor/simd.ts";
import type { Granularity } from "./params.ts";

/**
 * Visit each contiguous segment: `fn(start, end, slot0, slotStride)`.
 *
 * Per-tensor: one stride-0 segment. Per-channel: one stride-0 segment per
 * `(outer, channel)` pair (of length `inner`). Per-group: one stride-0
 * segment per block when the axis is the innermost one (`inner === 1`, the
 * common ONNX blocked layout), else stride-1 segments of length `inner`.
 *
 * @example
 * ```ts
 * import { forEachSegment } from "./slots.ts";
 * const seen: string[] = [];
 * forEachSegment([2, 4], { kind: "group", axis: 1, groupSize: 2 }, (s, e, k, st) => seen.push(`${s}-${e}:${k}/${st}`));
 * if (seen.join() !== "0-2:0/0,2-4:1/0,4-6:2/0,6-8:3/0") throw new Error(seen.join());
 * ```
 */
export function forEachSegment(
  shape: readonly number[],
  g: Granularity,
  fn: (start: number, end: number, slot0: number, slotStride: number) => void,
): void {
  let size = 1;
  for (const d of shape) size *= d;
  if (size === 0) return;
  if (g.kind === "tensor") {
    fn(0, size, 0, 0);
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
  const gs = g.groupSize;
  const groups = axisLength / gs;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      for (let b = 0; b < groups; b++) {
        const start = (o * groups + b) * gs;
        fn(start, start + gs, o * groups + b, 0);
      }
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < axisLength; c++) {
      const start = (o * axisLength + c) * inner;
      const slot0 = (o * groups + Math.floor(c / gs)) * inner;
      fn(start, start + inner, slot0, 1);
    }
  }
}

/**
 * Like {@link forEachSegment}, but per-channel along the innermost axis
 * (`inner === 1`) is visited as one stride-1 run per outer row (slot = channel)
 * instead of one segment per element. Kernels use this; it is not for
 * callers that ignore `slotStride`.
 *
 * @example
 * ```ts
 * import { forEachRun } from "./slots.ts";
 * const seen: string[] = [];
 * forEachRun([2, 3], { kind: "channel", axis: 1 }, (s, e, k, st) => seen.push(`${s}-${e}:${k}/${st}`));
 * if (seen.join() !== "0-3:0/1,3-6:0/1") throw new Error(seen.join());
 * ```
 */
export function forEachRun(
  shape: readonly number[],
  g: Granularity,
  fn: (start: number, end: number, slot0: number, slotStride: number) => void,
): void {
  if (g.kind === "channel") {
    const { outer, axisLength, inner } = axisView(shape, g.axis);
    if (inner === 1 && axisLength > 1) {
      for (let o = 0; o < outer; o++) fn(o * axisLength, (o + 1) * axisLength, 0, 1);
      return;
    }
  }
  forEachSegment(shape, g, fn);
}

/**
 * Per-slot minimum and maximum of `data` (float64 results). Throws
 * `NON_FINITE` naming `name` if `data` holds NaN or ±Infinity (the check is
 * fused into the reduction, so it costs no extra pass).
 *
 * Stride-0 segments of 128 or more elements run on the Wasm SIMD kernel
 * ({@link runMinMax}).
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
  name = "tensor",
): { min: Float64Array; max: Float64Array } {
  const min = into?.min ?? new Float64Array(slots).fill(Infinity);
  const max = into?.max ?? new Float64Array(slots).fill(-Infinity);
  const mm = new Float64Array(2);
  let finite = true;
  forEachRun(shape, g, (start, end, slot0, stride) => {
    if (stride === 0 && end - start >= 128) {
      if (!runMinMax(data, start, end, mm)) finite = false;
      if (mm[0] < min[slot0]) min[slot0] = mm[0];
      if (mm[1] > max[slot0]) max[slot0] = mm[1];
    } else if (stride === 0) {
      let lo = min[slot0], hi = max[slot0];
      for (let j = start; j < end; j++) {
        const v = data[j];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        else if (v !== v) finite = false;
      }
      min[slot0] = lo;
      max[slot0] = hi;
    } else if (!minMaxStrided(data, start, end, slot0, min, max)) {
      finite = false;
    }
  });
  // ±Infinity shows up in the extremes; NaN was flagged in the loops.
  for (let k = 0; k < min.length && finite; k++) if (min[k] === -Infinity || max[k] === Infinity) finite = false;
  if (!finite) {
    // Locate the first offender for the message (cold path).
    let i = 0;
    while (i < data.length && data[i] - data[i] === 0) i++;
    throw new QuantlabError(
      "NON_FINITE",
      `${name} holds a non-finite value (${data[i]}) at flat index ${i}; expected only finite numbers`,
    );
  }
  return { min, max };
}

function minMaxStrided(
  data: Float32Array,
  start: number,
  end: number,
  slot0: number,
  min: Float64Array,
  max: Float64Array,
): boolean {
  let nan = false; // ±Infinity is caught by the caller from the extremes
  for (let j = start, s = slot0; j < end; j++, s++) {
    const v = data[j];
    if (v < min[s]) min[s] = v;
    if (v > max[s]) max[s] = v;
    else if (v !== v) nan = true;
  }
  if (nan) return false;
  return true;
}
