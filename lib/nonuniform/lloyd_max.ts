/**
 * Lloyd-Max scalar quantizer design: the exact Lloyd iteration (optimal 1-D
 * k-means, Lloyd 1957/1982, Max 1960) on sorted data with prefix sums.
 *
 * Each iteration alternates the two optimality conditions for minimising
 * `sum (Q(x) - x)^2`: cell boundaries at the midpoints of neighbouring levels
 * (nearest-neighbour condition), and each level at the mean of its cell
 * (centroid condition). On sorted data a cell is an index range, so an
 * iteration costs O(K log N) after one O(N log N) sort, and the result is the
 * same fixed point that k-means (e.g. scikit-learn's `KMeans(algorithm="lloyd")`)
 * reaches from the same initial levels. The squared error never increases from
 * one iteration to the next. Iteration stops when the cells stop changing (an
 * exact fixed point), when the relative decrease of the error falls to
 * `tolerance`, or after `maxIterations`.
 *
 * An empty cell keeps its level (sklearn instead relocates it to a far point;
 * with the default quantile initialisation on distinct data no cell is empty).
 *
 * @module
 */
import { Prng } from "../tensor/prng.ts";
import { cellEnds, type SortedSlot, sortedSSE } from "./sorted_slot.ts";

/** How initial levels are chosen. */
export type LloydInit = "quantile" | "random";

/** Options of {@link lloydMax}. */
export interface LloydMaxOptions {
  /** Initial levels: `"quantile"` (default), `"random"` (seeded), or explicit ascending levels. */
  readonly init?: LloydInit | Float64Array;
  /** Seed of `"random"` initialisation (default 0). */
  readonly seed?: number;
  /** Iteration cap (default 1000). */
  readonly maxIterations?: number;
  /** Stop when the relative error decrease is `<= tolerance` (default 0: run to the exact fixed point). */
  readonly tolerance?: number;
}

/** Result of {@link lloydMax}. */
export interface LloydMaxResult {
  /** Ascending levels (float64). */
  readonly levels: Float64Array;
  /** Sum of squared errors after initialisation and after each iteration (non-increasing). */
  readonly history: Float64Array;
  /** Iterations run. */
  readonly iterations: number;
  /** Whether the cells reached a fixed point. */
  readonly converged: boolean;
}

/**
 * Deterministic quantile initialisation: split the sorted data into `k`
 * equal-count chunks (chunk `j` = indices `[floor(jN/k), floor((j+1)N/k))`) and
 * take each chunk's mean. With fewer than `k` values, the sorted values padded
 * with the largest one.
 *
 * @example
 * ```ts
 * import { quantileInit } from "./lloyd_max.ts";
 * import { sortedSlot } from "./sorted_slot.ts";
 * const lv = quantileInit(sortedSlot(new Float64Array([4, 1, 2, 3])), 2);
 * if (lv.join() !== "1.5,3.5") throw new Error(lv.join());
 * ```
 */
export function quantileInit(slot: SortedSlot, k: number): Float64Array {
  const n = slot.sorted.length;
  const levels = new Float64Array(k);
  if (n < k) {
    for (let j = 0; j < k; j++) levels[j] = slot.sorted[Math.min(j, n - 1)];
    return levels;
  }
  for (let j = 0; j < k; j++) {
    const s = Math.floor(j * n / k), e = Math.floor((j + 1) * n / k);
    levels[j] = (slot.sum[e] - slot.sum[s]) / (e - s);
  }
  return levels;
}

/**
 * Seeded random initialisation: `k` distinct data positions drawn uniformly
 * (partial Fisher-Yates with {@link Prng}), their values sorted.
 *
 * @example
 * ```ts
 * import { lloydRandomInit } from "./lloyd_max.ts";
 * import { sortedSlot } from "./sorted_slot.ts";
 * const s = sortedSlot(new Float64Array([5, 1, 4, 2, 3]));
 * const a = lloydRandomInit(s, 3, 7), b = lloydRandomInit(s, 3, 7);
 * if (a.join() !== b.join() || !(a[0] <= a[1] && a[1] <= a[2])) throw new Error("bad");
 * ```
 */
export function lloydRandomInit(slot: SortedSlot, k: number, seed: number): Float64Array {
  const n = slot.sorted.length;
  if (n < k) return quantileInit(slot, k);
  const rng = new Prng(seed);
  const picked = new Map<number, number>();
  const levels = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const r = j + rng.nextInt(n - j);
    const atR = picked.get(r) ?? r;
    picked.set(r, picked.get(j) ?? j);
    levels[j] = slot.sorted[atR];
  }
  return levels.sort();
}

/**
 * Run Lloyd-Max iterations on one sorted slot with `k` levels.
 *
 * @example
 * ```ts
 * import { lloydMax } from "./lloyd_max.ts";
 * import { sortedSlot } from "./sorted_slot.ts";
 * const r = lloydMax(sortedSlot(new Float64Array([0, 1, 9, 10, 11])), 2);
 * if (r.levels[0] !== 0.5 || r.levels[1] !== 10 || !r.converged) throw new Error(r.levels.join());
 * ```
 */
export function lloydMax(slot: SortedSlot, k: number, options: LloydMaxOptions = {}): LloydMaxResult {
  const init = options.init ?? "quantile";
  const levels = init instanceof Float64Array
    ? init.slice().sort()
    : init === "random"
    ? lloydRandomInit(slot, k, options.seed ?? 0)
    : quantileInit(slot, k);
  const maxIterations = options.maxIterations ?? 1000;
  const tol = options.tolerance ?? 0;
  let ends: Int32Array = cellEnds(slot.sorted, levels);
  let prevEnds: Int32Array = new Int32Array(k);
  const history: number[] = [sortedSSE(slot, levels, ends)];
  let it = 0, converged = false;
  while (it < maxIterations) {
    // centroid step
    let start = 0;
    for (let j = 0; j < k; j++) {
      const end = ends[j];
      if (end > start) levels[j] = (slot.sum[end] - slot.sum[start]) / (end - start);
      start = end;
    }
    it++;
    // nearest-neighbour step
    const t = prevEnds;
    prevEnds = ends;
    ends = cellEnds(slot.sorted, levels, t);
    const sse = sortedSSE(slot, levels, ends);
    const prev = history[history.length - 1];
    history.push(sse);
    let same = true;
    for (let j = 0; j < k; j++) {
      if (ends[j] !== prevEnds[j]) {
        same = false;
        break;
      }
    }
    if (same) {
      converged = true;
      break;
    }
    if (tol > 0 && prev - sse <= tol * prev) break;
  }
  return { levels, history: Float64Array.from(history), iterations: it, converged };
}
