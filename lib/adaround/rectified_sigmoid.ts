/**
 * AdaRound's soft rounding variable and its schedule, over typed arrays (Nagel et al. 2020, "Up or Down? Adaptive
 * Rounding for Post-Training Quantization", eq. 23 and 24; constants and formulas as AIMET's
 * `aimet_common/defs.py` `AdaroundConstants` and `aimet_torch/adaround/adaround_loss.py`):
 *
 * - rectified sigmoid `h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)`, zeta 1.1, gamma -0.1;
 * - initialisation `V = -log((zeta - gamma) / (f - gamma) - 1)` so that `h(V) = f`, the fractional part of `w / s`
 *   (AIMET's `_initialize_alpha`);
 * - regulariser `sum(1 - |2 h - 1|^beta)` and its gradient with respect to V;
 * - beta annealing: 0 (no rounding term) during the warm start, then AIMET's cosine rule
 *   `beta = end + (start - end) (1 + cos(pi t)) / 2`, `t = (iter - warm * N) / (N - warm * N)`.
 *
 * The per-layer optimisation evaluates these same expressions inside its ONNX gradient graph (layer_graph.ts); the
 * typed-array versions here are the reference the gradient checks compare against PyTorch autograd and what the pass
 * uses for initialisation, hard rounding and logging. Arithmetic in float64, stored as float32.
 *
 * @module
 */

/** AdaRound's stretch constants (AIMET `AdaroundConstants.ZETA`, `GAMMA`). */
export const ADAROUND_ZETA: number = 1.1;
/** Lower stretch constant (AIMET `AdaroundConstants.GAMMA`). */
export const ADAROUND_GAMMA: number = -0.1;

/**
 * The rectified sigmoid `h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)`, elementwise (float64 arithmetic).
 *
 * @example
 * ```ts
 * import { rectifiedSigmoid } from "./rectified_sigmoid.ts";
 * const h = rectifiedSigmoid(new Float32Array([0, 100, -100]));
 * if (Math.abs(h[0] - 0.5) > 1e-7 || h[1] !== 1 || h[2] !== 0) throw new Error(String(h));
 * ```
 */
export function rectifiedSigmoid(v: Float32Array): Float32Array {
  const out = new Float32Array(v.length);
  const span = ADAROUND_ZETA - ADAROUND_GAMMA;
  for (let i = 0; i < v.length; i++) {
    const s = 1 / (1 + Math.exp(-v[i])) * span + ADAROUND_GAMMA;
    out[i] = s < 0 ? 0 : s > 1 ? 1 : s;
  }
  return out;
}

/**
 * V such that `h(V)` equals `fraction` (values in [0, 1)), AIMET's `_initialize_alpha`:
 * `V = -log((zeta - gamma) / (f - gamma) - 1)`.
 *
 * @example
 * ```ts
 * import { initialRoundingVariable, rectifiedSigmoid } from "./rectified_sigmoid.ts";
 * const f = new Float32Array([0, 0.25, 0.5, 0.9]);
 * const h = rectifiedSigmoid(initialRoundingVariable(f));
 * if (h.some((v, i) => Math.abs(v - f[i]) > 1e-6)) throw new Error(String(h));
 * ```
 */
export function initialRoundingVariable(fraction: Float32Array): Float32Array {
  const out = new Float32Array(fraction.length);
  const span = ADAROUND_ZETA - ADAROUND_GAMMA;
  for (let i = 0; i < fraction.length; i++) out[i] = -Math.log(span / (fraction[i] - ADAROUND_GAMMA) - 1);
  return out;
}

/**
 * The rounding regulariser `sum(1 - |2 h(V) - 1|^beta)` (float64 sum) and, when `grad` is given, its gradient with
 * respect to V added into `grad` times `weight` (`grad += weight * d/dV`; zero where h is clipped, as autograd of
 * the clamp gives).
 *
 * @example
 * ```ts
 * import { roundingRegularizer } from "./rectified_sigmoid.ts";
 * // V = 0: h = 0.5, |2h - 1| = 0: each element contributes 1
 * const g = new Float32Array(2);
 * const r = roundingRegularizer(new Float32Array([0, 0]), 20, g, 0.01);
 * if (r !== 2 || g[0] !== 0) throw new Error(`${r} ${g}`);
 * ```
 */
export function roundingRegularizer(v: Float32Array, beta: number, grad?: Float32Array, weight = 1): number {
  const span = ADAROUND_ZETA - ADAROUND_GAMMA;
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    const sig = 1 / (1 + Math.exp(-v[i]));
    const raw = sig * span + ADAROUND_GAMMA;
    const h = raw < 0 ? 0 : raw > 1 ? 1 : raw;
    const u = 2 * h - 1;
    const a = Math.abs(u);
    sum += 1 - Math.pow(a, beta);
    if (grad && raw >= 0 && raw <= 1 && a > 0) {
      // d/dV (1 - |u|^beta) = -beta |u|^(beta-1) sign(u) * 2 * sig (1 - sig) span
      grad[i] += weight * -beta * Math.pow(a, beta - 1) * Math.sign(u) * 2 * sig * (1 - sig) * span;
    }
  }
  return sum;
}

/**
 * Beta at iteration `iter` of `iterations` (AIMET `AdaroundLoss._compute_beta`), or 0 during the warm start (the
 * rounding term is then off): cosine decay from `betaRange[0]` to `betaRange[1]`.
 *
 * @example
 * ```ts
 * import { annealedBeta } from "./rectified_sigmoid.ts";
 * if (annealedBeta(100, 1000, [20, 2], 0.2) !== 0) throw new Error("warm start");
 * if (annealedBeta(200, 1000, [20, 2], 0.2) !== 20) throw new Error("start");
 * if (Math.abs(annealedBeta(600, 1000, [20, 2], 0.2) - 11) > 1e-9) throw new Error("middle");
 * ```
 */
export function annealedBeta(
  iter: number,
  iterations: number,
  betaRange: readonly [number, number],
  warmStart: number,
): number {
  const warmEnd = warmStart * iterations;
  if (iter < warmEnd) return 0;
  const [start, end] = betaRange;
  const rel = (iter - warmEnd) / (iterations - warmEnd);
  return end + 0.5 * (start - end) * (1 + Math.cos(rel * Math.PI));
}

/**
 * Hard rounding of the optimised variable: codes `clamp(floor(w / s) + [V >= 0] + zp, qmin, qmax)` given
 * `floorPlusZp = floor(w / s) + zp` (AIMET's `use_soft_rounding = False`). Returns float codes.
 *
 * @example
 * ```ts
 * import { hardRoundCodes } from "./rectified_sigmoid.ts";
 * const q = hardRoundCodes(new Float32Array([2, 7, -8]), new Float32Array([0.1, 3, -1]), -8, 7);
 * if (q.join() !== "3,7,-8") throw new Error(q.join());
 * ```
 */
export function hardRoundCodes(floorPlusZp: Float32Array, v: Float32Array, qmin: number, qmax: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const q = floorPlusZp[i] + (v[i] >= 0 ? 1 : 0);
    out[i] = q < qmin ? qmin : q > qmax ? qmax : q;
  }
  return out;
}
