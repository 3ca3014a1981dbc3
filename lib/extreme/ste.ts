/**
 * Straight-through gradient rules of the binary and ternary quantizers, over
 * typed arrays, for the training engine.
 *
 * Each function takes the latent full-precision weights `w` and the gradient of
 * the loss with respect to the quantized weights `gradOut` (same length), and
 * returns the gradient with respect to `w` (and, for TTQ, the scales). Per-channel
 * variants take a `layout` (`shape` and `axis`); without it the whole array is
 * one slot. Accumulation is float64; results are float32.
 *
 * | rule | forward | gradient to `w` |
 * |---|---|---|
 * | {@link binaryGradient} (BinaryConnect / BinaryNet STE) | `sign(w)`, `sign(0) = +1` | `g * 1{abs(w) <= clip}` |
 * | {@link xnorGradient} (XNOR-Net) | `alpha sign(w)`, `alpha = mean abs(w)` per slot | `alpha g_i 1{abs(w_i) <= 1} + abs'(w_i)/n * sum_j g_j sign(w_j)` |
 * | {@link twnGradient} (TWN) | `alpha t(w)` | `g` (identity; optional clip mask) |
 * | {@link ttqGradient} (TTQ) | `Wp` / `0` / `-Wn` | `Wp g`, `g`, `Wn g` on the three sets; `dWp = sum over w > delta of g`, `dWn = -sum over w < -delta of g` |
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { normalizeAxis } from "../tensor/layout.ts";
import { forEachSegment } from "../quant/slots.ts";
import type { ExtremeGranularity } from "./slot_stats.ts";

/** Where per-channel slots lie: the tensor's shape and the channel axis. */
export interface SlotLayout {
  /** Shape of `w` (its size must equal `w.length`). */
  readonly shape: readonly number[];
  /** Channel axis (default 0). */
  readonly axis?: number;
}

function pairCheck(w: Float32Array, g: Float32Array, what: string): void {
  if (w.length !== g.length) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${what}: weights hold ${w.length} values but the output gradient holds ${g.length}`,
    );
  }
}

function layoutOf(n: number, layout: SlotLayout | undefined, what: string): {
  shape: readonly number[];
  g: ExtremeGranularity;
  slots: number;
} {
  if (!layout) return { shape: [n], g: { kind: "tensor" }, slots: 1 };
  let size = 1;
  for (const d of layout.shape) size *= d;
  if (size !== n) {
    throw new QuantlabError("SHAPE_MISMATCH", `${what}: layout shape [${layout.shape}] holds ${size} values, not ${n}`);
  }
  const axis = normalizeAxis(layout.axis ?? 0, layout.shape.length, `${what}: channel axis`);
  return { shape: layout.shape, g: { kind: "channel", axis }, slots: layout.shape[axis] };
}

/**
 * BinaryConnect / BinaryNet straight-through estimator for `sign`: the gradient
 * passes where `|w| <= clip` (default 1) and is zero elsewhere (the hard-tanh
 * STE of Hubara et al. 2016; BinaryConnect keeps weights in [-1, 1] by clipping
 * after each update, where this mask is all ones).
 *
 * @example
 * ```ts
 * import { binaryGradient } from "./ste.ts";
 * const g = binaryGradient(new Float32Array([0.5, -1, 1.5]), new Float32Array([2, 3, 4]));
 * if (g.join() !== "2,3,0") throw new Error(g.join());
 * ```
 */
export function binaryGradient(w: Float32Array, gradOut: Float32Array, clip = 1): Float32Array {
  pairCheck(w, gradOut, "binaryGradient");
  if (!(clip > 0)) throw new QuantlabError("INVALID_ARGUMENT", `binaryGradient clip must be > 0, got ${clip}`);
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = Math.abs(w[i]) <= clip ? gradOut[i] : 0;
  return out;
}

/**
 * XNOR-Net gradient of `W~ = alpha sign(W)` with `alpha = mean|W|` over each slot
 * (per output channel with a layout), the exact chain rule with the sign STE:
 * `dW_i = alpha g_i 1{|w_i| <= 1} + abs'(w_i) / n * sum_j g_j sign(w_j)`, where
 * `sign(0) = +1` (forward) and `abs'(0) = 0` (as PyTorch's `abs` backward).
 * The XNOR-Net reference code computes the same two terms and then multiplies
 * by `n (1 - 1/C_in)` as a learning-rate heuristic; that factor is not applied.
 *
 * @example
 * ```ts
 * import { xnorGradient } from "./ste.ts";
 * // alpha = 1, n = 2, sum g sign = 1*1 + 1*(-1) = 0
 * const g = xnorGradient(new Float32Array([0.5, -1.5]), new Float32Array([1, 1]));
 * if (g.join() !== "1,0") throw new Error(g.join());
 * ```
 */
export function xnorGradient(w: Float32Array, gradOut: Float32Array, layout?: SlotLayout): Float32Array {
  pairCheck(w, gradOut, "xnorGradient");
  const { shape, g, slots } = layoutOf(w.length, layout, "xnorGradient");
  const absSum = new Float64Array(slots), gs = new Float64Array(slots), cnt = new Float64Array(slots);
  forEachSegment(shape, g, (start, end, slot) => {
    let a = 0, s = 0;
    for (let i = start; i < end; i++) {
      const v = w[i];
      a += Math.abs(v);
      s += v >= 0 ? gradOut[i] : -gradOut[i];
    }
    absSum[slot] += a;
    gs[slot] += s;
    cnt[slot] += end - start;
  });
  const out = new Float32Array(w.length);
  forEachSegment(shape, g, (start, end, slot) => {
    const n = cnt[slot], alpha = absSum[slot] / n, m = gs[slot] / n;
    for (let i = start; i < end; i++) {
      const v = w[i];
      const ste = Math.abs(v) <= 1 ? alpha * gradOut[i] : 0;
      out[i] = ste + (v > 0 ? m : v < 0 ? -m : 0);
    }
  });
  return out;
}

/**
 * TWN straight-through rule: the gradient with respect to the ternary weights is
 * applied to the full-precision weights unchanged (threshold and scale treated as
 * constants). With `clip`, zero where `|w| > clip`.
 *
 * @example
 * ```ts
 * import { twnGradient } from "./ste.ts";
 * if (twnGradient(new Float32Array([0.1, 3]), new Float32Array([1, 2]), 1).join() !== "1,0") throw new Error("bad");
 * ```
 */
export function twnGradient(w: Float32Array, gradOut: Float32Array, clip = Infinity): Float32Array {
  pairCheck(w, gradOut, "twnGradient");
  if (!(clip > 0)) throw new QuantlabError("INVALID_ARGUMENT", `twnGradient clip must be > 0, got ${clip}`);
  if (clip === Infinity) return gradOut.slice();
  return binaryGradient(w, gradOut, clip);
}

/** Gradients of TTQ's trained ternary quantization. */
export interface TtqGradients {
  /** Gradient with respect to the latent weights. */
  readonly weights: Float32Array;
  /** Gradient with respect to the positive scale `Wp`, per slot. */
  readonly positiveScale: Float64Array;
  /** Gradient with respect to the negative scale `Wn` (the quantized value is `-Wn`), per slot. */
  readonly negativeScale: Float64Array;
}

/**
 * TTQ (Zhu et al. 2017) gradients for `w^t = Wp` where `w > delta`, `-Wn` where
 * `w < -delta`, else 0, with `delta`, `Wp`, `Wn` per slot:
 * `dWp = sum_{w > delta} g`, `dWn = -sum_{w < -delta} g` (the paper's Eq. 7
 * prints the sum without the minus sign; the minus follows from `w^t = -Wn`,
 * which is what the authors' TensorFlow code differentiates), and the
 * scaled straight-through gradient `dw = Wp g`, `g`, `Wn g` on the positive,
 * zero and negative sets (Eq. 8). `delta` is treated as a constant.
 *
 * @example
 * ```ts
 * import { ttqGradient } from "./ste.ts";
 * const r = ttqGradient(new Float32Array([0.5, 0, -0.5]), new Float32Array([1, 2, 3]), [0.1], [2], [4]);
 * if (r.weights.join() !== "2,2,12" || r.positiveScale[0] !== 1 || r.negativeScale[0] !== -3) throw new Error("bad");
 * ```
 */
export function ttqGradient(
  w: Float32Array,
  gradOut: Float32Array,
  delta: ArrayLike<number>,
  wp: ArrayLike<number>,
  wn: ArrayLike<number>,
  layout?: SlotLayout,
): TtqGradients {
  pairCheck(w, gradOut, "ttqGradient");
  const { shape, g, slots } = layoutOf(w.length, layout, "ttqGradient");
  if (delta.length !== slots || wp.length !== slots || wn.length !== slots) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `ttqGradient: delta, Wp and Wn hold ${delta.length}, ${wp.length}, ${wn.length} values; expected ${slots}`,
    );
  }
  const out = new Float32Array(w.length);
  const dp = new Float64Array(slots), dn = new Float64Array(slots);
  forEachSegment(shape, g, (start, end, slot) => {
    const d = delta[slot], p = wp[slot], q = wn[slot];
    let sp = 0, sn = 0;
    for (let i = start; i < end; i++) {
      const v = w[i], gi = gradOut[i];
      if (v > d) {
        out[i] = p * gi;
        sp += gi;
      } else if (v < -d) {
        out[i] = q * gi;
        sn -= gi;
      } else out[i] = gi;
    }
    dp[slot] += sp;
    dn[slot] += sn;
  });
  return { weights: out, positiveScale: dp, negativeScale: dn };
}
