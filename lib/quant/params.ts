/**
 * Affine quantization parameters and how they are computed from a range.
 *
 * Convention (ONNX and PyTorch): `q = clamp(round(r / S) + Z, qmin, qmax)` and
 * `r~ = S * (q - Z)`. The survey writes `Q(r) = Int(r/S) - Z`; quantlab's `Z`
 * is the survey's `-Z`, so that real 0 maps to the integer `Z` exactly.
 *
 * Scales are float32 (as stored in ONNX and PyTorch) and are computed with
 * float32 arithmetic in the same order as PyTorch's
 * `ObserverBase._calculate_qparams`, so parameters agree bit for bit.
 *
 * @module
 */
import { checkBits, QuantlabError } from "../errors.ts";
import { normalizeAxis } from "../tensor/layout.ts";

/** Which elements share one scale and zero point. */
export type Granularity =
  | { readonly kind: "tensor" }
  | { readonly kind: "channel"; readonly axis: number }
  | { readonly kind: "group"; readonly axis: number; readonly groupSize: number };

/** Integer grid and mapping choices, independent of the data. */
export interface QuantScheme {
  /** Bit width, 2..16. */
  readonly bits: number;
  /** Signed (two's complement) or unsigned integers. */
  readonly signed: boolean;
  /** Symmetric (`-a = b = max|r|`) or asymmetric (`a = min, b = max`) clipping range. */
  readonly symmetric: boolean;
  /**
   * Symmetric grids only: `"restricted"` drops the lowest code so the grid is
   * symmetric around the zero point (`S = max|r| / (2^(b-1) - 1)`); `"full"`
   * uses every code (`S = 2 max|r| / (2^b - 1)`).
   */
  readonly range: "full" | "restricted";
}

/** Fitted affine parameters: one scale and zero point per slot. */
export interface QuantParams extends QuantScheme {
  /** Lowest integer code. */
  readonly qmin: number;
  /** Highest integer code. */
  readonly qmax: number;
  /** Scales (float32), one per slot. */
  readonly scale: Float32Array;
  /** Zero points, one per slot. */
  readonly zeroPoint: Int32Array;
  /** How slots map to elements. */
  readonly granularity: Granularity;
}

/**
 * float32 machine epsilon: PyTorch's lower bound for scales.
 *
 * @example
 * ```ts
 * import { SCALE_EPS } from "./params.ts";
 * if (SCALE_EPS !== 2 ** -23) throw new Error("bad");
 * ```
 */
export const SCALE_EPS = 1.1920928955078125e-7;

/**
 * The integer range `[qmin, qmax]` of a scheme.
 *
 * @example
 * ```ts
 * import { integerRange } from "./params.ts";
 * const r = integerRange({ bits: 8, signed: true, symmetric: true, range: "restricted" });
 * if (r.qmin !== -127 || r.qmax !== 127) throw new Error("bad");
 * ```
 */
export function integerRange(scheme: QuantScheme): { qmin: number; qmax: number } {
  checkBits(scheme.bits);
  const levels = 2 ** scheme.bits;
  let qmin = scheme.signed ? -levels / 2 : 0;
  const qmax = scheme.signed ? levels / 2 - 1 : levels - 1;
  if (scheme.symmetric && scheme.range === "restricted") qmin += 1;
  return { qmin, qmax };
}

/**
 * Compute scale and zero point for each slot from its `[min, max]` range.
 *
 * Zero is always inside the range (`min <= 0 <= max` after widening), so real
 * 0 is exactly representable. Scales are at least {@link SCALE_EPS}, so a
 * constant or all-zero tensor still gets a finite, positive scale.
 *
 * Formulas (float32, PyTorch's order): symmetric `S = max(|min|, |max|) / ((qmax - qmin) / 2)`,
 * i.e. `max|r| / (2^(b-1) - 1)` restricted and `2 max|r| / (2^b - 1)` full; asymmetric
 * `S = (max - min) / (qmax - qmin)` and `Z = clamp(qmin - roundHalfEven(min / S), qmin, qmax)`.
 * Symmetric zero points: 0 for signed grids, `ceil((qmin + qmax) / 2)` for unsigned
 * grids (128 for uint8, as PyTorch's default quint8 observer; for a custom full
 * unsigned range of another width PyTorch takes the floor instead).
 *
 * @example
 * ```ts
 * import { paramsFromRange } from "./params.ts";
 * const p = paramsFromRange([-1], [3], { bits: 8, signed: false, symmetric: false, range: "full" }, { kind: "tensor" });
 * // S = 4/255, Z = round(1 / S) = 64
 * if (p.zeroPoint[0] !== 64 || Math.abs(p.scale[0] - 4 / 255) > 1e-8) throw new Error("bad");
 * ```
 */
export function paramsFromRange(
  min: ArrayLike<number>,
  max: ArrayLike<number>,
  scheme: QuantScheme,
  granularity: Granularity,
  name = "tensor",
): QuantParams {
  if (min.length !== max.length || min.length === 0) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${name}: range min and max must have the same non-zero length, got ${min.length} and ${max.length}`,
    );
  }
  checkBits(scheme.bits, `${name}: bits`);
  const { qmin, qmax } = integerRange(scheme);
  const n = min.length;
  const scale = new Float32Array(n);
  const zeroPoint = new Int32Array(n);
  const f = Math.fround;
  for (let i = 0; i < n; i++) {
    const lo = f(min[i]), hi = f(max[i]);
    if (!(Number.isFinite(lo) && Number.isFinite(hi))) {
      throw new QuantlabError("NON_FINITE", `${name}: range of slot ${i} is [${lo}, ${hi}]; expected finite bounds`);
    }
    if (lo > hi) {
      throw new QuantlabError("INVALID_ARGUMENT", `${name}: range of slot ${i} has min ${lo} > max ${hi}`);
    }
    const minNeg = Math.min(lo, 0);
    const maxPos = Math.max(hi, 0);
    if (scheme.symmetric) {
      const m = Math.max(-minNeg, maxPos);
      const s = Math.max(f(m / f((qmax - qmin) / 2)), SCALE_EPS);
      scale[i] = s;
      zeroPoint[i] = scheme.signed ? 0 : (qmin + qmax + 1) >> 1;
    } else {
      const s = Math.max(f(f(maxPos - minNeg) / (qmax - qmin)), SCALE_EPS);
      scale[i] = s;
      const z = qmin - roundEven(f(minNeg / s));
      zeroPoint[i] = Math.min(qmax, Math.max(qmin, z));
    }
    checkSlotRepresentable(scale[i], zeroPoint[i], qmin, qmax, name, i, `range [${lo}, ${hi}]`);
  }
  return { ...schemeOf(scheme), qmin, qmax, scale, zeroPoint, granularity };
}

/**
 * Throw `NON_FINITE` unless slot `i`'s scale is finite and positive and both ends of its grid,
 * `(qmin - z) * S` and `(qmax - z) * S`, are finite float32 values: a finite range wider than float32 can hold
 * (e.g. `[-3e38, 3e38]`) would otherwise give an infinite scale or infinite dequantized values.
 *
 * @example
 * ```ts
 * import { checkSlotRepresentable } from "./params.ts";
 * checkSlotRepresentable(0.1, 0, -128, 127, "w", 0); // passes
 * try {
 *   checkSlotRepresentable(3e36, 0, -128, 127, "w", 0);
 *   throw new Error("should fail");
 * } catch (e) {
 *   if ((e as { code?: string }).code !== "NON_FINITE") throw e;
 * }
 * ```
 */
export function checkSlotRepresentable(
  scale: number,
  zeroPoint: number,
  qmin: number,
  qmax: number,
  name: string,
  i: number,
  from = "parameters",
): void {
  const f = Math.fround;
  const lo = f((qmin - zeroPoint) * scale), hi = f((qmax - zeroPoint) * scale);
  if (!(scale > 0 && Number.isFinite(scale) && Number.isFinite(lo) && Number.isFinite(hi))) {
    throw new QuantlabError(
      "NON_FINITE",
      `${name}: slot ${i} (${from}) gives scale ${scale} and zero point ${zeroPoint}, whose grid [${lo}, ${hi}] ` +
        `is not finite in float32; the range is wider than float32 can represent`,
    );
  }
}

function roundEven(x: number): number {
  return (x + 6755399441055744) - 6755399441055744;
}

function schemeOf(s: QuantScheme): QuantScheme {
  return { bits: s.bits, signed: s.signed, symmetric: s.symmetric, range: s.range };
}

/**
 * Number of slots (scales) a granularity needs for a tensor of `shape`, and
 * the granularity with its axis normalised. Throws `AXIS_OUT_OF_RANGE` or
 * `GROUP_SIZE` on bad settings.
 *
 * @example
 * ```ts
 * import { resolveGranularity } from "./params.ts";
 * const { slots } = resolveGranularity({ kind: "group", axis: -1, groupSize: 4 }, [3, 8]);
 * if (slots !== 6) throw new Error("bad");
 * ```
 */
export function resolveGranularity(
  g: Granularity,
  shape: readonly number[],
  what = "tensor",
): { granularity: Granularity; slots: number; scaleShape: number[] } {
  if (g.kind === "tensor") return { granularity: g, slots: 1, scaleShape: [] };
  if (shape.length === 0) {
    throw new QuantlabError(
      "AXIS_OUT_OF_RANGE",
      `${what}: per-${g.kind} quantization needs a tensor of rank >= 1, got a scalar`,
    );
  }
  const axis = normalizeAxis(g.axis, shape.length, `${what}: quantization axis`);
  if (g.kind === "channel") {
    return { granularity: { kind: "channel", axis }, slots: shape[axis], scaleShape: [shape[axis]] };
  }
  const gs = g.groupSize;
  if (!Number.isInteger(gs) || gs < 1 || shape[axis] % gs !== 0) {
    throw new QuantlabError(
      "GROUP_SIZE",
      `${what}: group size ${gs} must be a positive integer dividing the length ${shape[axis]} of axis ${axis}`,
    );
  }
  const scaleShape = [...shape];
  scaleShape[axis] = shape[axis] / gs;
  let slots = 1;
  for (const d of scaleShape) slots *= d;
  return { granularity: { kind: "group", axis, groupSize: gs }, slots, scaleShape };
}

/**
 * A readable one-line description of a granularity.
 *
 * @example
 * ```ts
 * import { describeGranularity } from "./params.ts";
 * if (describeGranularity({ kind: "tensor" }) !== "per-tensor") throw new Error("bad");
 * if (describeGranularity({ kind: "channel", axis: 0 }) !== "per-channel(axis 0)") throw new Error("bad");
 * ```
 */
export function describeGranularity(g: Granularity): string {
  return g.kind === "tensor"
    ? "per-tensor"
    : g.kind === "channel"
    ? `per-channel(axis ${g.axis})`
    : `per-group(size ${g.groupSize}, axis ${g.axis})`;
}
