/**
 * Sorted 1-D data with prefix sums: the data structure behind the exact, fast
 * scalar quantizer fitters.
 *
 * On sorted data every nearest-level cell is a contiguous index range, so a cell's
 * count, sum and sum of squares come from prefix sums in O(1) and the cell
 * boundaries from a binary search in O(log N). One Lloyd iteration, one
 * least-squares step of binary-code fitting, or one evaluation of the squared
 * error of a candidate codebook then costs O(K log N) instead of O(N K).
 * Sums are accumulated in float64.
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import { forEachSegment } from "../quant/slots.ts";
import type { Granularity } from "../quant/params.ts";

/** One slot's data, sorted ascending, with float64 prefix sums of `x` and `x^2`. */
export interface SortedSlot {
  /** The values, ascending (float64 copies of the float32 inputs). */
  readonly sorted: Float64Array;
  /** `sum[i]` = sum of the first `i` sorted values (length N + 1). */
  readonly sum: Float64Array;
  /** `sumSq[i]` = sum of squares of the first `i` sorted values (length N + 1). */
  readonly sumSq: Float64Array;
}

/**
 * Sort `values` and build prefix sums. A Float32Array is sorted by an LSD radix
 * sort on its bit patterns (3 passes of 11/11/10 bits, O(N), about 5x faster
 * than a comparison sort at 1M values; `-0` sorts before `+0`); a Float64Array
 * is sorted in place with the built-in sort.
 *
 * @example
 * ```ts
 * import { sortedSlot } from "./sorted_slot.ts";
 * const s = sortedSlot(new Float64Array([3, -1, 2]));
 * if (s.sorted.join() !== "-1,2,3" || s.sum[3] !== 4 || s.sumSq[3] !== 14) throw new Error("bad");
 * const t = sortedSlot(new Float32Array([0.5, -2, 1e-30, -1e-30, 7]));
 * if (t.sorted.join() !== [-2, -1e-30, 1e-30, 0.5, 7].map(Math.fround).join()) throw new Error("bad");
 * ```
 */
export function sortedSlot(values: Float64Array | Float32Array): SortedSlot {
  const sorted = values instanceof Float64Array ? values.sort() : radixSortFloat32(values);
  const n = sorted.length;
  const sum = new Float64Array(n + 1);
  const sumSq = new Float64Array(n + 1);
  let s = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    const v = sorted[i];
    s += v;
    s2 += v * v;
    sum[i + 1] = s;
    sumSq[i + 1] = s2;
  }
  return { sorted, sum, sumSq };
}

/**
 * Sort float32 values ascending into a new Float64Array (LSD radix sort on the
 * order-preserving unsigned transform of the bit patterns; NaN not allowed).
 *
 * @example
 * ```ts
 * import { radixSortFloat32 } from "./sorted_slot.ts";
 * if (radixSortFloat32(new Float32Array([2, -3, 0, 1])).join() !== "-3,0,1,2") throw new Error("bad");
 * ```
 */
export function radixSortFloat32(values: Float32Array): Float64Array {
  const n = values.length;
  if (n < 512) return Float64Array.from(values).sort();
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  let a = new Uint32Array(n), b = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const u = bits[i];
    a[i] = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
  }
  const count = new Uint32Array(2048);
  for (let pass = 0; pass < 3; pass++) {
    const shift = pass * 11;
    count.fill(0);
    for (let i = 0; i < n; i++) count[(a[i] >>> shift) & 2047]++;
    let total = 0;
    for (let d = 0; d < 2048; d++) {
      const c = count[d];
      count[d] = total;
      total += c;
    }
    for (let i = 0; i < n; i++) {
      const v = a[i];
      b[count[(v >>> shift) & 2047]++] = v;
    }
    const t = a;
    a = b;
    b = t;
  }
  const f = new Float32Array(b.buffer, 0, n);
  const u = new Uint32Array(b.buffer, 0, n);
  for (let i = 0; i < n; i++) {
    const k = a[i];
    u[i] = k & 0x80000000 ? k & 0x7fffffff : ~k >>> 0;
  }
  return Float64Array.from(f);
}

/**
 * Number of sorted values `<= t` (first index whose value is greater than `t`).
 *
 * @example
 * ```ts
 * import { countAtMost } from "./sorted_slot.ts";
 * if (countAtMost(new Float64Array([1, 2, 2, 5]), 2) !== 3) throw new Error("bad");
 * ```
 */
export function countAtMost(sorted: Float64Array, t: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Number of sorted values `< t` (first index whose value is `>= t`).
 *
 * @example
 * ```ts
 * import { countBelow } from "./sorted_slot.ts";
 * if (countBelow(new Float64Array([1, 2, 2, 5]), 2) !== 1) throw new Error("bad");
 * ```
 */
export function countBelow(sorted: Float64Array, t: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Cell ends of the nearest-level partition for ascending `levels`: cell `j`
 * holds sorted indices `[ends[j-1], ends[j])` (with `ends[-1] = 0`). A value
 * exactly on a midpoint goes to the lower level (the first of equal distances,
 * as `argmin` picks it).
 *
 * @example
 * ```ts
 * import { cellEnds, sortedSlot } from "./sorted_slot.ts";
 * const s = sortedSlot(new Float64Array([-2, -1, 0.5, 1, 3]));
 * const ends = cellEnds(s.sorted, new Float64Array([-1, 1]));
 * if (ends.join() !== "2,5") throw new Error(ends.join());
 * ```
 */
export function cellEnds(sorted: Float64Array, levels: Float64Array, out?: Int32Array): Int32Array {
  const k = levels.length;
  const ends = out ?? new Int32Array(k);
  for (let j = 0; j < k - 1; j++) ends[j] = countAtMost(sorted, 0.5 * (levels[j] + levels[j + 1]));
  ends[k - 1] = sorted.length;
  return ends;
}

/**
 * Sum of squared errors of quantizing the slot to ascending `levels` by the
 * cells `ends` (`sum over cells of S2 - 2 c S1 + n c^2`, float64).
 *
 * @example
 * ```ts
 * import { cellEnds, sortedSSE, sortedSlot } from "./sorted_slot.ts";
 * const s = sortedSlot(new Float64Array([-2, -1, 1, 2]));
 * const lv = new Float64Array([-1.5, 1.5]);
 * if (Math.abs(sortedSSE(s, lv, cellEnds(s.sorted, lv)) - 1) > 1e-12) throw new Error("bad");
 * ```
 */
export function sortedSSE(slot: SortedSlot, levels: Float64Array, ends: Int32Array): number {
  let sse = 0, start = 0;
  for (let j = 0; j < levels.length; j++) {
    const end = ends[j];
    if (end > start) {
      const c = levels[j];
      const cell = (slot.sumSq[end] - slot.sumSq[start]) - 2 * c * (slot.sum[end] - slot.sum[start]) +
        (end - start) * c * c;
      sse += cell > 0 ? cell : 0;
    }
    start = end;
  }
  return sse;
}

/**
 * Gather the values of each slot (per-tensor: one slot; per-channel: one per
 * index along the axis) into new float32 arrays, rejecting empty and non-finite data.
 *
 * @example
 * ```ts
 * import { gatherSlots } from "./sorted_slot.ts";
 * const s = gatherSlots(new Float32Array([1, 2, 3, 4]), [2, 2], { kind: "channel", axis: 1 }, 2, "w");
 * if (s[0].join() !== "1,3" || s[1].join() !== "2,4") throw new Error("bad");
 * ```
 */
export function gatherSlots(
  data: Float32Array,
  shape: readonly number[],
  g: Granularity,
  slots: number,
  name: string,
): Float32Array[] {
  if (data.length === 0) {
    throw new QuantlabError(
      "EMPTY_TENSOR",
      `${name}: tensor of shape [${shape}] is empty; expected at least one element`,
    );
  }
  assertFinite(data, name);
  const per = Math.floor(data.length / slots);
  const out: Float32Array[] = [];
  for (let s = 0; s < slots; s++) out.push(new Float32Array(per));
  const fill = new Int32Array(slots);
  forEachSegment(shape, g, (start, end, slot) => {
    const dst = out[slot];
    let f = fill[slot];
    for (let i = start; i < end; i++) dst[f++] = data[i];
    fill[slot] = f;
  });
  return out;
}
