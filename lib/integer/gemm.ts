/**
 * Integer GEMM with zero points (ONNX `MatMulInteger` / `QLinearMatMul`,
 * ONNX Runtime's QGEMM): `acc[i, j] = sum_p (a[i, p] - Z_a[i]) * (b[p, j] - Z_b[j]) (+ bias[j])`
 * in int32, then requantized to int8/uint8 with `M[i, j] = S_a[i] * S_b[j] / S_y`.
 *
 * Zero points and scales are per tensor (scalars) or, as ONNX allows, per row
 * of `a` and per column of `b`. 2-D operands only; `transB` reads `b` as
 * `[N, K]` (a PyTorch `Linear` weight).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";
import { checkQTensor, type Int8Type, type QTensor, scaleVector, zeroPointVector } from "./checks.ts";
import { gemmPacked, packPanels } from "./gemm_kernel.ts";
import { requantize, type RequantRounding } from "./requantize.ts";

/** Operands of {@link qgemmInt32}. */
export interface QGemmArgs {
  /** Left operand `[M, K]`, int8 or uint8. */
  a: Tensor;
  /** Zero point of `a`: scalar or one per row (default 0). */
  aZeroPoint?: number | ArrayLike<number>;
  /** Right operand `[K, N]` (or `[N, K]` with `transB`), int8 or uint8. */
  b: Tensor;
  /** Zero point of `b`: scalar or one per column (default 0). */
  bZeroPoint?: number | ArrayLike<number>;
  /** Read `b` as `[N, K]` (default false). */
  transB?: boolean;
  /** Optional int32 bias, one per column, added to the accumulators. */
  bias?: Int32Array | Tensor<"int32">;
}

/** Operands and quantization parameters of {@link qlinearMatMul}. */
export interface QLinearMatMulArgs extends QGemmArgs {
  /** Scale of `a`: scalar or one per row. */
  aScale: number | ArrayLike<number>;
  /** Scale of `b`: scalar or one per column. */
  bScale: number | ArrayLike<number>;
  /** Output scale (scalar). */
  yScale: number;
  /** Output zero point (default 0). */
  yZeroPoint?: number;
  /** Output type (default: the type of `a`). */
  yDtype?: Int8Type;
}

/** Options of {@link qlinearMatMul}. */
export interface QLinearMatMulOptions {
  /** Requantization rounding (default `"dyadic"`, integer-only). */
  rounding?: RequantRounding;
}

interface GemmDims {
  m: number;
  k: number;
  n: number;
}

function gemmDims(args: QGemmArgs): GemmDims {
  checkQTensor(args.a, "a", 2);
  checkQTensor(args.b, "b", 2);
  const [m, k] = args.a.shape;
  const [kb, n] = args.transB ? [args.b.shape[1], args.b.shape[0]] : args.b.shape;
  if (k !== kb) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `a [${args.a.shape}] and b [${args.b.shape}]${
        args.transB ? " (transB)" : ""
      } disagree on the inner dimension: ${k} vs ${kb}`,
    );
  }
  return { m, k, n };
}

function biasArray(bias: Int32Array | Tensor<"int32"> | undefined, n: number, what: string): Int32Array | undefined {
  if (bias === undefined) return undefined;
  const data = bias instanceof Tensor ? bias.data : bias;
  if (!(data instanceof Int32Array)) throw new QuantlabError("INVALID_ARGUMENT", `${what} must be int32`);
  if (data.length !== n) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${what} must hold ${n} values (one per output channel), got ${data.length}`,
    );
  }
  return data;
}

/**
 * Integer GEMM with zero points: int32 accumulators `[M, N]` of
 * `(a - Z_a) (b - Z_b) + bias` (ONNX `MatMulInteger` semantics plus an optional bias).
 *
 * @example
 * ```ts
 * import { qgemmInt32 } from "./gemm.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const a = new Tensor(new Uint8Array([130, 128, 126, 129]), [2, 2]);
 * const b = new Tensor(new Int8Array([1, -2, 3, 4]), [2, 2]);
 * const c = qgemmInt32({ a, aZeroPoint: 128, b });
 * // [[2, 0], [-2, 1]] @ [[1, -2], [3, 4]]
 * if (c.toArray().join() !== "2,-4,1,8") throw new Error(c.toArray().join());
 * ```
 */
export function qgemmInt32(args: QGemmArgs): Tensor<"int32"> {
  const { m, k, n } = gemmDims(args);
  const za = zeroPointVector(args.aZeroPoint ?? 0, args.a.dtype as Int8Type, m, "aZeroPoint");
  const zb = zeroPointVector(args.bZeroPoint ?? 0, args.b.dtype as Int8Type, n, "bZeroPoint");
  const bias = biasArray(args.bias, n, "bias");
  const pa = packPanels(args.a.data as Int8Array | Uint8Array, 0, m, k, k, 1, za);
  const pb = args.transB
    ? packPanels(args.b.data as Int8Array | Uint8Array, 0, n, k, k, 1, zb)
    : packPanels(args.b.data as Int8Array | Uint8Array, 0, n, k, 1, n, zb);
  const out = new Int32Array(m * n);
  gemmPacked(pa, pb, m, n, k, out, 0, n);
  if (bias) {
    for (let i = 0; i < m; i++) {
      const o = i * n;
      for (let j = 0; j < n; j++) out[o + j] += bias[j];
    }
  }
  return new Tensor(out, [m, n]);
}

/**
 * ONNX `QLinearMatMul` (2-D), with an optional int32 bias (scale `S_a * S_b`,
 * zero point 0, as PyTorch's quantized `linear`): integer GEMM then
 * requantization to `yDtype`. Rounding `"dyadic"` (default) is integer-only;
 * `"float"` follows ONNX Runtime (float32 multiply, round half to even).
 *
 * @example
 * ```ts
 * import { qlinearMatMul } from "./gemm.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const a = new Tensor(new Int8Array([10, -20, 30, 40]), [2, 2]);
 * const b = new Tensor(new Int8Array([2, 0, 0, 2]), [2, 2]);
 * const y = qlinearMatMul({ a, aScale: 0.5, b, bScale: 0.25, yScale: 0.5, yZeroPoint: 0 });
 * // real: a*0.5 @ b*0.25 = a @ b / 8; in units of 0.5: a @ b / 4
 * if (y.toArray().join() !== "5,-10,15,20") throw new Error(y.toArray().join());
 * ```
 */
export function qlinearMatMul(args: QLinearMatMulArgs, options: QLinearMatMulOptions = {}): QTensor {
  const { m, n } = gemmDims(args);
  const sa = scaleVector(args.aScale, m, "aScale");
  const sb = scaleVector(args.bScale, n, "bScale");
  const sy = scaleVector(args.yScale, 1, "yScale")[0];
  const yDtype = args.yDtype ?? args.a.dtype as Int8Type;
  zeroPointVector(args.yZeroPoint ?? 0, yDtype, 1, "yZeroPoint");
  const acc = qgemmInt32(args).data;
  const rounding = options.rounding ?? "dyadic";
  const perRow = typeof args.aScale !== "number" && args.aScale.length > 1;
  const out = yDtype === "int8" ? new Int8Array(m * n) : new Uint8Array(m * n);
  const rowsAtOnce = perRow ? 1 : m;
  for (let i0 = 0; i0 < m; i0 += rowsAtOnce) {
    const perCol = typeof args.bScale !== "number" && args.bScale.length > 1;
    const mult = new Float64Array(perCol ? n : 1);
    for (let j = 0; j < mult.length; j++) mult[j] = effectiveMultiplier(sa[i0], sb[j], sy, rounding);
    requantize(acc.subarray(i0 * n, (i0 + rowsAtOnce) * n), {
      multiplier: mult,
      zeroPoint: args.yZeroPoint ?? 0,
      dtype: yDtype,
      rounding,
      inner: perCol ? 1 : rowsAtOnce * n,
      out: out.subarray(i0 * n, (i0 + rowsAtOnce) * n),
    });
  }
  return new Tensor(out, [m, n]) as QTensor;
}

/**
 * The requantization multiplier `S_in * S_w / S_out`: in float64 from float32
 * scales for the integer paths (as TFLite's `PopulateConvolutionQuantizationParams`),
 * and in float32, `(S_in * S_w) / S_out`, for `"float"` rounding (as ONNX Runtime).
 *
 * @example
 * ```ts
 * import { effectiveMultiplier } from "./gemm.ts";
 * if (effectiveMultiplier(0.5, 0.25, 0.5, "dyadic") !== 0.25) throw new Error("bad");
 * ```
 */
export function effectiveMultiplier(sIn: number, sW: number, sOut: number, rounding: RequantRounding): number {
  if (rounding === "float") return Math.fround(Math.fround(sIn * sW) / sOut);
  return (sIn * sW) / sOut;
}
