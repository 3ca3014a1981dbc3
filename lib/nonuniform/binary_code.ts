/**
 * Binary-code quantization: `r ~ sum_i alpha_i b_i` with `b_i in {-1, +1}` and
 * `m` bases (`m` bits per value, `2^m` levels).
 *
 * Fitting follows "Alternating Multi-bit Quantization" (Xu et al., ICLR 2018),
 * which is also the quantizer-error-minimisation step of LQ-Nets (Zhang et
 * al., ECCV 2018):
 * 1. Greedy: `r_0 = r`; for `i = 1..m`: `b_i = sign(r_{i-1})` (with `sign(0) = +1`),
 *    `alpha_i = mean|r_{i-1}|`, `r_i = r_{i-1} - alpha_i b_i`.
 * 2. Alternate up to `iterations` times: with the codes fixed, the least-squares
 *    bases `alpha = (B^T B)^-1 B^T r`; with the bases fixed, each value's code is
 *    the nearest of the `2^m` levels (the paper's binary search tree).
 * Both steps never increase `sum (Q(r) - r)^2`. On sorted data every code's
 * values form one index range, so `B^T B` and `B^T r` come from prefix sums
 * (O(2^m log N + m^2 2^m) per round instead of O(N m^2)); the arithmetic is the
 * paper's, only the summation order differs. Stops early when the codes stop
 * changing; keeps the previous bases if `B^T B` is singular (fewer distinct
 * values than bases).
 *
 * Code `c` (0..2^m-1) means `b_i = +1` where bit `i` of `c` is set, else -1.
 *
 * @module
 */
import { cellEnds, countBelow, type SortedSlot, sortedSSE } from "./sorted_slot.ts";

/** Result of {@link fitBinaryCode}. */
export interface BinaryCodeFit {
  /** The bases `alpha_1..alpha_m` (float64). */
  readonly alphas: Float64Array;
  /** Squared error after the greedy step and after each alternating round (non-increasing). */
  readonly history: Float64Array;
  /** Alternating rounds run. */
  readonly iterations: number;
}

/**
 * The level of every code: `levels[c] = sum_i alpha_i (bit i of c ? 1 : -1)`.
 *
 * @example
 * ```ts
 * import { binaryCodeLevels } from "./binary_code.ts";
 * if (binaryCodeLevels(new Float64Array([1, 0.5])).join() !== "-1.5,0.5,-0.5,1.5") throw new Error("bad");
 * ```
 */
export function binaryCodeLevels(alphas: ArrayLike<number>): Float64Array {
  const m = alphas.length, k = 1 << m;
  const out = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    let v = 0;
    for (let i = 0; i < m; i++) v += (c >> i) & 1 ? alphas[i] : -alphas[i];
    out[c] = v;
  }
  return out;
}

/**
 * Fit `m` (1..8) binary bases to one sorted slot.
 *
 * @example
 * ```ts
 * import { fitBinaryCode } from "./binary_code.ts";
 * import { sortedSlot } from "./sorted_slot.ts";
 * // values exactly representable with alphas 2 and 1: levels -3, -1, 1, 3
 * const r = fitBinaryCode(sortedSlot(new Float64Array([-3, -1, 1, 3, 3, -1])), 2, 10);
 * const a = Array.from(r.alphas).map(Math.abs).sort();
 * if (Math.abs(a[0] - 1) > 1e-12 || Math.abs(a[1] - 2) > 1e-12) throw new Error(a.join());
 * ```
 */
export function fitBinaryCode(slot: SortedSlot, m: number, iterations: number): BinaryCodeFit {
  const { sorted, sum } = slot;
  const n = sorted.length, k = 1 << m;
  const alphas = new Float64Array(m);
  // greedy: intervals of sorted indices with their reconstruction so far and code bits
  let starts = [0], ends = [n], centers = [0], codes = [0];
  for (let i = 0; i < m; i++) {
    let absSum = 0;
    const splits: number[] = [];
    for (let t = 0; t < starts.length; t++) {
      const s = starts[t], e = ends[t], c = centers[t];
      // first index with x >= c (sign(0) = +1)
      const p = Math.min(Math.max(countBelow(sorted, c), s), e);
      splits.push(p);
      absSum += (sum[e] - sum[p] - (e - p) * c) + ((p - s) * c - (sum[p] - sum[s]));
    }
    const a = absSum / n;
    alphas[i] = a;
    const ns: number[] = [], ne: number[] = [], nc: number[] = [], nk: number[] = [];
    for (let t = 0; t < starts.length; t++) {
      const p = splits[t];
      ns.push(starts[t], p);
      ne.push(p, ends[t]);
      nc.push(centers[t] - a, centers[t] + a);
      nk.push(codes[t], codes[t] | (1 << i));
    }
    starts = ns;
    ends = ne;
    centers = nc;
    codes = nk;
  }
  // per-code counts and sums from the greedy partition
  const count = new Float64Array(k), csum = new Float64Array(k);
  for (let t = 0; t < starts.length; t++) {
    count[codes[t]] += ends[t] - starts[t];
    csum[codes[t]] += sum[ends[t]] - sum[starts[t]];
  }
  const history: number[] = [sseOf(slot, alphas)];
  const order = new Int32Array(k);
  let lvEnds: Int32Array = new Int32Array(k), prevEnds: Int32Array = new Int32Array(k).fill(-1);
  let it = 0;
  const ata = new Float64Array(m * m), atb = new Float64Array(m);
  while (it < iterations) {
    // least-squares bases for the current codes
    ata.fill(0);
    atb.fill(0);
    for (let c = 0; c < k; c++) {
      if (count[c] === 0) continue;
      for (let i = 0; i < m; i++) {
        const si = (c >> i) & 1 ? 1 : -1;
        atb[i] += si * csum[c];
        for (let j = 0; j < m; j++) ata[i * m + j] += si * ((c >> j) & 1 ? 1 : -1) * count[c];
      }
    }
    const solved = solveSymmetric(ata, atb, m);
    it++;
    if (!solved) break;
    alphas.set(solved);
    // nearest-level codes for the new bases
    const lv = binaryCodeLevels(alphas);
    for (let c = 0; c < k; c++) order[c] = c;
    order.sort((a, b) => lv[a] - lv[b] || a - b);
    const sortedLv = new Float64Array(k);
    for (let j = 0; j < k; j++) sortedLv[j] = lv[order[j]];
    const t = prevEnds;
    prevEnds = lvEnds;
    lvEnds = cellEnds(sorted, sortedLv, t);
    history.push(sortedSSE(slot, sortedLv, lvEnds));
    count.fill(0);
    csum.fill(0);
    let s = 0, same = true;
    for (let j = 0; j < k; j++) {
      const e = lvEnds[j];
      count[order[j]] = e - s;
      csum[order[j]] = sum[e] - sum[s];
      if (e !== prevEnds[j]) same = false;
      s = e;
    }
    if (same) break;
  }
  return { alphas, history: Float64Array.from(history), iterations: it };
}

function sseOf(slot: SortedSlot, alphas: Float64Array): number {
  const lv = binaryCodeLevels(alphas).sort();
  return sortedSSE(slot, lv, cellEnds(slot.sorted, lv));
}

/** Solve the m x m symmetric system by Gaussian elimination with partial pivoting; null if singular. */
function solveSymmetric(a0: Float64Array, b0: Float64Array, m: number): Float64Array | null {
  const a = a0.slice(), b = b0.slice();
  let scale = 0;
  for (let i = 0; i < m; i++) scale = Math.max(scale, Math.abs(a[i * m + i]));
  if (scale === 0) return null;
  for (let col = 0; col < m; col++) {
    let piv = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(a[r * m + col]) > Math.abs(a[piv * m + col])) piv = r;
    if (Math.abs(a[piv * m + col]) <= 1e-12 * scale) return null;
    if (piv !== col) {
      for (let j = 0; j < m; j++) {
        const t = a[col * m + j];
        a[col * m + j] = a[piv * m + j];
        a[piv * m + j] = t;
      }
      const t = b[col];
      b[col] = b[piv];
      b[piv] = t;
    }
    for (let r = col + 1; r < m; r++) {
      const f = a[r * m + col] / a[col * m + col];
      if (f === 0) continue;
      for (let j = col; j < m; j++) a[r * m + j] -= f * a[col * m + j];
      b[r] -= f * b[col];
    }
  }
  const x = new Float64Array(m);
  for (let i = m - 1; i >= 0; i--) {
    let s = b[i];
    for (let j = i + 1; j < m; j++) s -= a[i * m + j] * x[j];
    x[i] = s / a[i * m + i];
  }
  return x;
}
