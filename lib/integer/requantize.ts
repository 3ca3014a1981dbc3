/**
 * Requantization: int32 accumulators to int8/uint8 codes,
 * `y = clamp(round(M * acc) + Z_y, qmin, qmax)` with `M = S_x * S_w / S_y`.
 *
 * Rounding choices (`RequantRounding`):
 * - `"dyadic"` (default): integer-only, TFLite's default
 *   `MultiplyByQuantizedMultiplier` with `(M0, shift) = QuantizeMultiplier(M)`:
 *   a saturating rounding doubling high multiply (ties toward +infinity) then a
 *   rounding right shift (ties away from zero). Bit-exact with TFLite.
 * - `"dyadic-single"`: integer-only, TFLite's `TFLITE_SINGLE_ROUNDING` build:
 *   `(acc * M0 + 2^(n-1)) >> n`, `n = 31 - shift` (ties toward +infinity).
 * - `"float"`: ONNX Runtime's MLAS style: `M` rounded to float32, the
 *   product `float32(acc) * M` in float32, rounded to nearest even.
 *
 * The accumulator array is read as `outer x channels x inner` (row-major);
 * channel `c` uses multiplier `c`. Conv outputs `[N, M, H, W]` are
 * `N x M x H*W`; GEMM outputs `[rows, cols]` with per-column multipliers are
 * `rows x cols x 1`.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { int8Range, type Int8Type } from "./checks.ts";
import { checkMultiplier, quantizeMultiplier } from "./dyadic.ts";
import { multiplyByQuantizedMultiplierSingleRounding } from "./fixed_point.ts";

/** How {@link requantize} rounds `M * acc`. */
export type RequantRounding = "dyadic" | "dyadic-single" | "float";

/** Options of {@link requantize}. */
export interface RequantizeOptions {
  /** Real multiplier(s) `M > 0`: one, or one per channel. */
  multiplier: number | ArrayLike<number>;
  /** Output zero point (default 0), inside the output type's range. */
  zeroPoint?: number;
  /** Output type (default `"int8"`). */
  dtype?: Int8Type;
  /** Rounding (default `"dyadic"`). */
  rounding?: RequantRounding;
  /** Elements per channel block, the `inner` of `outer x channels x inner` (default: all of one channel's run). */
  inner?: number;
  /** Optional output array (length of `acc`). */
  out?: Int8Array | Uint8Array;
}

const INV16 = 1 / 65536;
const INV15 = 1 / 32768;
const INV31 = 1 / 2147483648;
const MAGIC = 6755399441055744;

/**
 * Requantize int32 accumulators to int8/uint8 codes (see the module notes for
 * the rounding modes). Throws `INVALID_ARGUMENT`/`NON_FINITE` for bad
 * multipliers, zero points or layouts, naming the argument.
 *
 * @example
 * ```ts
 * import { requantize } from "./requantize.ts";
 * const acc = new Int32Array([100, -100, 5000, 6, -6]);
 * const y = requantize(acc, { multiplier: 0.25, zeroPoint: 1, dtype: "int8" });
 * // 25+1, -25+1, saturate 127, 1.5 -> 2 (+1), -1.5 -> -2 (+1)
 * if (Array.from(y).join() !== "26,-24,127,3,-1") throw new Error(Array.from(y).join());
 * ```
 */
export function requantize(acc: Int32Array, options: RequantizeOptions): Int8Array | Uint8Array {
  const dtype = options.dtype ?? "int8";
  if (dtype !== "int8" && dtype !== "uint8") {
    throw new QuantlabError("INVALID_ARGUMENT", `requantize dtype must be "int8" or "uint8", got "${dtype}"`);
  }
  const { qmin, qmax } = int8Range(dtype);
  const zp = options.zeroPoint ?? 0;
  if (!Number.isInteger(zp) || zp < qmin || zp > qmax) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `requantize zeroPoint must be an integer in [${qmin}, ${qmax}] for ${dtype}, got ${zp}`,
    );
  }
  const mult = typeof options.multiplier === "number" ? [options.multiplier] : options.multiplier;
  const channels = mult.length;
  if (channels === 0) throw new QuantlabError("INVALID_ARGUMENT", "requantize multiplier must not be empty");
  for (let c = 0; c < channels; c++) checkMultiplier(mult[c], channels === 1 ? "multiplier" : `multiplier[${c}]`);
  const inner = options.inner ?? (channels === 1 ? acc.length : 1);
  if (!Number.isInteger(inner) || inner < 1 || acc.length % (channels * inner) !== 0) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `requantize: ${acc.length} accumulators do not split into outer x ${channels} channels x ${inner} inner`,
    );
  }
  const rounding = options.rounding ?? "dyadic";
  if (rounding !== "dyadic" && rounding !== "dyadic-single" && rounding !== "float") {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `requantize rounding must be "dyadic", "dyadic-single" or "float", got "${rounding}"`,
    );
  }
  const out = options.out ?? (dtype === "int8" ? new Int8Array(acc.length) : new Uint8Array(acc.length));
  if (out.length !== acc.length) {
    throw new QuantlabError("SHAPE_MISMATCH", `requantize out holds ${out.length} values, expected ${acc.length}`);
  }
  const outer = acc.length / (channels * inner);
  const lo = qmin - zp, hi = qmax - zp;
  // inner === 1 (per-column GEMM): one strided run per channel; otherwise one contiguous run per (outer, channel).
  const strided = inner === 1 && channels > 1;
  const runs = strided ? 1 : outer;
  const len = strided ? acc.length : inner, step = strided ? channels : 1;
  for (let c = 0; c < channels; c++) {
    const m = mult[c];
    const what = channels === 1 ? "multiplier" : `multiplier[${c}]`;
    let q = { multiplier: 0, shift: 0 };
    if (rounding !== "float") {
      q = quantizeMultiplier(m, what);
      if (q.shift > 30 || q.shift < -31) {
        throw new QuantlabError(
          "UNSUPPORTED",
          `${what} ${m} needs shift ${q.shift}; integer requantization supports multipliers below 2^30`,
        );
      }
    }
    for (let o = 0; o < runs; o++) {
      const start = strided ? c : (o * channels + c) * inner;
      const end = start + len;
      if (rounding === "float") floatRun(acc, out, start, end, step, Math.fround(m), zp, lo, hi);
      else if (rounding === "dyadic") dyadicRun(acc, out, start, end, step, q.multiplier, q.shift, zp, lo, hi);
      else singleRun(acc, out, start, end, step, q.multiplier, q.shift, zp, lo, hi);
    }
  }
  return out;
}

/** TFLite double-rounding MultiplyByQuantizedMultiplier, inlined, then + zp and clamp. */
function dyadicRun(
  acc: Int32Array,
  out: Int8Array | Uint8Array,
  start: number,
  end: number,
  step: number,
  m0: number,
  shift: number,
  zp: number,
  lo: number,
  hi: number,
): void {
  const bh = Math.floor(m0 * INV16), bl = m0 - bh * 65536;
  const mf = m0 * INV31; // exact: m0 < 2^31
  const left = shift > 0 ? 2 ** shift | 0 : 1;
  const right = shift > 0 ? 0 : -shift;
  const mask = (2 ** right - 1) | 0, half = mask >> 1;
  for (let j = start; j < end; j += step) {
    const x = Math.imul(acc[j], left);
    // SaturatingRoundingDoublingHighMul(x, m0), m0 >= 0 (no saturation case), exact in float64.
    // SRDHM(x, m0) is round(x * m0 / 2^31) with ties toward +infinity = floor(x * (m0 / 2^31) + 1/2).
    // |x| < 2^21: the product is exact in float64 (52 bits); otherwise split m0 into 16-bit halves.
    let h: number;
    if (x < 2097152 && x > -2097152) h = Math.floor(x * mf + 0.5);
    else if (x >= 0) h = Math.floor((x * bh + Math.floor((x * bl + 1073741824) * INV16)) * INV15);
    else {
      const a = -x;
      h = -Math.floor((a * bh + Math.floor((a * bl + 1073741823) * INV16)) * INV15);
    }
    h |= 0;
    // RoundingDivideByPOT(h, right)
    let r = (h >> right) + ((h & mask) > half + (h < 0 ? 1 : 0) ? 1 : 0);
    r = r < lo ? lo : r > hi ? hi : r;
    out[j] = r + zp;
  }
}

function singleRun(
  acc: Int32Array,
  out: Int8Array | Uint8Array,
  start: number,
  end: number,
  step: number,
  m0: number,
  shift: number,
  zp: number,
  lo: number,
  hi: number,
): void {
  for (let j = start; j < end; j += step) {
    let r = multiplyByQuantizedMultiplierSingleRounding(acc[j], m0, shift);
    r = r < lo ? lo : r > hi ? hi : r;
    out[j] = r + zp;
  }
}

function floatRun(
  acc: Int32Array,
  out: Int8Array | Uint8Array,
  start: number,
  end: number,
  step: number,
  s: number,
  zp: number,
  lo: number,
  hi: number,
): void {
  const f = Math.fround;
  for (let j = start; j < end; j += step) {
    let v = f(f(acc[j]) * s);
    v = v < lo ? lo : v > hi ? hi : v;
    out[j] = (v + MAGIC) - MAGIC + zp;
  }
}
