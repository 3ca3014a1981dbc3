/**
 * Encode, decode and fake-quantize against per-slot codebooks of arbitrary
 * (non-uniform) levels.
 *
 * A codebook holds `K <= 256` float32 levels per slot, indexed by code. Encoding
 * sorts each slot's levels once and then, per element, runs a branch-light
 * binary search over the `K - 1` cell midpoints (`ceil(log2 K)` compares, no
 * allocation):
 *
 * - `nearest`: the nearest level; a value exactly on a midpoint takes the
 *   lower level.
 * - `stochastic`: with lower and upper neighbouring levels `a <= x < b`, pick `b`
 *   with probability `(x - a) / (b - a)`, else `a`, so `E[Q(x)] = x` for every `x`
 *   inside `[min level, max level]` (outside, the end level; biased there).
 *   Uniforms come from a {@link Prng} seeded with `seed`, one draw per element
 *   in flat order, so a call is reproducible.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { Granularity } from "../quant/params.ts";
import { forEachSegment } from "../quant/slots.ts";
import { Prng } from "../tensor/prng.ts";

/** Rounding of a value to a non-uniform grid. */
export type LevelRounding = "nearest" | "stochastic";

/** Per-slot search tables for a codebook (build once with {@link searchTables}). */
export interface SearchTables {
  /** Levels per slot. */
  readonly k: number;
  /** Search width: the power of two `>= k`. */
  readonly width: number;
  /** Ascending levels per slot, padded with +Infinity to `width` (slot-major). */
  readonly sortedLevels: Float64Array;
  /** Cell midpoints per slot, padded with +Infinity to `width` (slot-major). */
  readonly midpoints: Float64Array;
  /** Code of each sorted position (slot-major, `width` per slot). */
  readonly order: Uint8Array;
}

/**
 * Build search tables for `slots` codebooks of `k` levels each (`codebook[slot * k + code]`).
 *
 * @example
 * ```ts
 * import { searchTables } from "./codebook_kernels.ts";
 * const t = searchTables(new Float32Array([1, -1, 0]), 1, 3);
 * if (t.order[0] !== 1 || t.sortedLevels[2] !== 1 || t.midpoints[0] !== -0.5) throw new Error("bad");
 * ```
 */
export function searchTables(codebook: Float32Array, slots: number, k: number): SearchTables {
  if (!Number.isInteger(k) || k < 1 || k > 256 || codebook.length !== slots * k) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `codebook of ${codebook.length} levels does not hold ${slots} slot(s) of k = ${k} (1..256) levels`,
    );
  }
  let width = 1;
  while (width < k) width *= 2;
  const sortedLevels = new Float64Array(slots * width).fill(Infinity);
  const midpoints = new Float64Array(slots * width).fill(Infinity);
  const order = new Uint8Array(slots * width);
  const idx = new Array<number>(k);
  for (let s = 0; s < slots; s++) {
    for (let j = 0; j < k; j++) idx[j] = j;
    const base = s * k;
    idx.sort((a, b) => codebook[base + a] - codebook[base + b] || a - b);
    const o = s * width;
    for (let j = 0; j < k; j++) {
      order[o + j] = idx[j];
      sortedLevels[o + j] = codebook[base + idx[j]];
    }
    for (let j = 0; j < k - 1; j++) midpoints[o + j] = 0.5 * (sortedLevels[o + j] + sortedLevels[o + j + 1]);
  }
  return { k, width, sortedLevels, midpoints, order };
}

/**
 * Quantize `x` to the codebooks: write codes into `codes` and/or levels into
 * `values` (either may be omitted). `g` must already be normalised
 * (`resolveGranularity`), and slots must match the tables.
 *
 * @example
 * ```ts
 * import { quantizeToCodebook, searchTables } from "./codebook_kernels.ts";
 * const t = searchTables(new Float32Array([-1, 0, 1, 4]), 1, 4);
 * const codes = new Uint8Array(3), values = new Float32Array(3);
 * quantizeToCodebook(new Float32Array([-3, 0.4, 2.6]), [3], { kind: "tensor" }, t, "nearest", 0, codes, values);
 * if (codes.join() !== "0,1,3" || values.join() !== "-1,0,4") throw new Error(codes.join());
 * ```
 */
export function quantizeToCodebook(
  x: Float32Array,
  shape: readonly number[],
  g: Granularity,
  t: SearchTables,
  rounding: LevelRounding,
  seed: number,
  codes?: Uint8Array,
  values?: Float32Array,
): void {
  const { width, sortedLevels, midpoints, order } = t;
  const half = width >> 1;
  if (rounding === "nearest") {
    // one specialised loop per output combination keeps the hot loop free of branches on options
    forEachSegment(shape, g, (start, end, slot) => {
      const o = slot * width;
      if (values && !codes) {
        for (let i = start; i < end; i++) {
          const v = x[i];
          const p = nearestPos(midpoints, o, width, half, v);
          values[i] = sortedLevels[p];
        }
      } else if (codes && !values) {
        for (let i = start; i < end; i++) {
          const v = x[i];
          const p = nearestPos(midpoints, o, width, half, v);
          codes[i] = order[p];
        }
      } else if (codes && values) {
        for (let i = start; i < end; i++) {
          const v = x[i];
          const p = nearestPos(midpoints, o, width, half, v);
          codes[i] = order[p];
          values[i] = sortedLevels[p];
        }
      }
    });
    return;
  }
  const rng = new Prng(seed);
  const kLast = t.k - 1;
  forEachSegment(shape, g, (start, end, slot) => {
    const o = slot * width;
    for (let i = start; i < end; i++) {
      const v = x[i];
      const u = rng.nextFloat();
      // c = number of levels <= v (capped at width - 1 for large tables: the cap only bites when every
      // level is <= v, where the draw below picks the top level anyway)
      const c = countAtMostPos(sortedLevels, o, width, half, v);
      let p: number;
      if (c === 0) p = 0;
      else if (c > kLast) p = kLast;
      else {
        const a = sortedLevels[o + c - 1], b = sortedLevels[o + c];
        p = u * (b - a) < v - a ? c : c - 1;
      }
      if (codes) codes[i] = order[o + p];
      if (values) values[i] = sortedLevels[o + p];
    }
  });
}

/**
 * Sorted position (offset by `o`) of the level nearest to `v`: the count of
 * midpoints below `v`. Small tables (width <= 16) use a branch-free linear
 * count, larger ones a branch-free binary search (measured faster than a
 * branchy search on random data, where the branches are unpredictable).
 */
function nearestPos(mid: Float64Array, o: number, width: number, half: number, v: number): number {
  let p = o;
  if (width <= 16) {
    const e = o + width - 1;
    for (let j = o; j < e; j++) p += (v > mid[j]) as unknown as number;
    return p;
  }
  for (let step = half; step > 0; step >>= 1) p += ((v > mid[p + step - 1]) as unknown as number) * step;
  return p;
}

/** Number of sorted levels `<= v` (see {@link nearestPos} for the two strategies). */
function countAtMostPos(lv: Float64Array, o: number, width: number, half: number, v: number): number {
  let c = 0;
  if (width <= 16) {
    for (let j = o, e = o + width; j < e; j++) c += (lv[j] <= v) as unknown as number;
    return c;
  }
  for (let step = half; step > 0; step >>= 1) c += ((lv[o + c + step - 1] <= v) as unknown as number) * step;
  return c;
}

/**
 * Decode codes to levels: `out[i] = codebook[slot(i) * k + codes[i]]`.
 * Throws `INVALID_ARGUMENT` for a code `>= k`.
 *
 * @example
 * ```ts
 * import { decodeCodebook } from "./codebook_kernels.ts";
 * const v = decodeCodebook(new Uint8Array([1, 0]), [2], { kind: "tensor" }, new Float32Array([-2, 3]), 2);
 * if (v.join() !== "3,-2") throw new Error("bad");
 * ```
 */
export function decodeCodebook(
  codes: Uint8Array,
  shape: readonly number[],
  g: Granularity,
  codebook: Float32Array,
  k: number,
  name = "codes",
): Float32Array {
  const out = new Float32Array(codes.length);
  forEachSegment(shape, g, (start, end, slot) => {
    const o = slot * k;
    for (let i = start; i < end; i++) {
      const c = codes[i];
      if (c >= k) {
        throw new QuantlabError("INVALID_ARGUMENT", `${name}: code ${c} at flat index ${i} is not below k = ${k}`);
      }
      out[i] = codebook[o + c];
    }
  });
  return out;
}
