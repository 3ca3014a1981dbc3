/**
 * Integer-only 2-D convolution, NCHW, with ONNX `ConvInteger` / `QLinearConv`
 * semantics: strides, explicit pads `[top, left, bottom, right]`, dilations,
 * groups; int8/uint8 input and weight with zero points (the weight's per
 * tensor or per output channel); int32 bias with scale `S_x * S_w` and zero
 * point 0; requantization per tensor or per output channel.
 *
 * Padding contributes real 0, i.e. the input zero point, so after zero-point
 * subtraction padded taps add nothing. The kernel packs `im2col(x - Z_x)` and
 * `w - Z_w` into panels and runs the int32 GEMM micro-kernel per group.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";
import { checkQTensor, type Int8Type, type QTensor, scaleVector, zeroPointVector } from "./checks.ts";
import { effectiveMultiplier } from "./gemm.ts";
import { chunkCount, gemmPacked, packPanels, panelCount } from "./gemm_kernel.ts";
import { requantize, type RequantRounding } from "./requantize.ts";

/** Convolution attributes (ONNX names; 2-D). */
export interface Conv2dAttributes {
  /** Strides `[h, w]` or one for both (default 1). */
  strides?: number | readonly number[];
  /** Explicit zero padding `[top, left, bottom, right]`, `[h, w]`, or one for all (default 0). */
  pads?: number | readonly number[];
  /** Dilations `[h, w]` or one for both (default 1). */
  dilations?: number | readonly number[];
  /** Number of groups; input and output channels must be divisible by it (default 1). */
  group?: number;
}

/** Resolved sizes of a 2-D convolution. */
export interface Conv2dGeometry {
  /** Batch. */
  readonly n: number;
  /** Input channels. */
  readonly c: number;
  /** Input height. */
  readonly h: number;
  /** Input width. */
  readonly w: number;
  /** Output channels. */
  readonly m: number;
  /** Kernel height. */
  readonly kh: number;
  /** Kernel width. */
  readonly kw: number;
  /** Groups. */
  readonly group: number;
  /** Stride along height. */
  readonly sh: number;
  /** Stride along width. */
  readonly sw: number;
  /** Padding at the top. */
  readonly pt: number;
  /** Padding at the left. */
  readonly pl: number;
  /** Padding at the bottom. */
  readonly pb: number;
  /** Padding at the right. */
  readonly pr: number;
  /** Dilation along height. */
  readonly dh: number;
  /** Dilation along width. */
  readonly dw: number;
  /** Output height. */
  readonly oh: number;
  /** Output width. */
  readonly ow: number;
}

function pair(v: number | readonly number[] | undefined, def: number, what: string, min: number): [number, number] {
  const arr = v === undefined ? [def, def] : typeof v === "number" ? [v, v] : [...v];
  if (arr.length !== 2 || !arr.every((x) => Number.isInteger(x) && x >= min)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `conv2d ${what} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`,
    );
  }
  return arr as [number, number];
}

/**
 * Check shapes and attributes of a 2-D convolution and compute its geometry:
 * `x` is `[N, C, H, W]`, `w` is `[M, C / group, kH, kW]`, output
 * `[N, M, floor((H + pt + pb - dH (kH - 1) - 1) / sH) + 1, ...]`.
 *
 * @example
 * ```ts
 * import { conv2dGeometry } from "./conv.ts";
 * const g = conv2dGeometry([1, 16, 28, 28], [32, 16, 3, 3], { pads: 1, strides: 2 });
 * if (g.oh !== 14 || g.ow !== 14 || g.m !== 32) throw new Error(JSON.stringify(g));
 * ```
 */
export function conv2dGeometry(
  xShape: readonly number[],
  wShape: readonly number[],
  attrs: Conv2dAttributes = {},
): Conv2dGeometry {
  if (xShape.length !== 4) throw new QuantlabError("SHAPE_MISMATCH", `conv2d x must be [N, C, H, W], got [${xShape}]`);
  if (wShape.length !== 4) {
    throw new QuantlabError("SHAPE_MISMATCH", `conv2d w must be [M, C/group, kH, kW], got [${wShape}]`);
  }
  const [n, c, h, w] = xShape;
  const [m, cg, kh, kw] = wShape;
  const group = attrs.group ?? 1;
  if (!Number.isInteger(group) || group < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `conv2d group must be a positive integer, got ${group}`);
  }
  if (cg * group !== c || m % group !== 0) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `conv2d: x has ${c} channels and w is [${wShape}] with group ${group}; expected C = w.shape[1] * group and M divisible by group`,
    );
  }
  const [sh, sw] = pair(attrs.strides, 1, "strides", 1);
  const [dh, dw] = pair(attrs.dilations, 1, "dilations", 1);
  let pads: number[];
  if (attrs.pads === undefined) pads = [0, 0, 0, 0];
  else if (typeof attrs.pads === "number") pads = [attrs.pads, attrs.pads, attrs.pads, attrs.pads];
  else if (attrs.pads.length === 2) pads = [attrs.pads[0], attrs.pads[1], attrs.pads[0], attrs.pads[1]];
  else pads = [...attrs.pads];
  if (pads.length !== 4 || !pads.every((p) => Number.isInteger(p) && p >= 0)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `conv2d pads must be non-negative integers [top, left, bottom, right], got ${JSON.stringify(attrs.pads)}`,
    );
  }
  const [pt, pl, pb, pr] = pads;
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  if (!(oh >= 1 && ow >= 1) || kh < 1 || kw < 1) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `conv2d: kernel [${kh}, ${kw}] (dilations [${dh}, ${dw}]) does not fit input [${h}, ${w}] padded by [${pads}]`,
    );
  }
  return { n, c, h, w, m, kh, kw, group, sh, sw, pt, pl, pb, pr, dh, dw, oh, ow };
}

/** Operands of {@link conv2dInt32}. */
export interface QConvArgs {
  /** Input `[N, C, H, W]`, int8 or uint8. */
  x: Tensor;
  /** Input zero point (default 0). */
  xZeroPoint?: number;
  /** Weight `[M, C / group, kH, kW]`, int8 or uint8. */
  w: Tensor;
  /** Weight zero point: scalar or one per output channel (default 0). */
  wZeroPoint?: number | ArrayLike<number>;
  /** Optional int32 bias, one per output channel (scale `S_x * S_w`, zero point 0). */
  bias?: Int32Array | Tensor<"int32">;
}

/** Operands and quantization parameters of {@link qlinearConv}. */
export interface QLinearConvArgs extends QConvArgs {
  /** Input scale (scalar). */
  xScale: number;
  /** Weight scale: scalar or one per output channel. */
  wScale: number | ArrayLike<number>;
  /** Output scale (scalar). */
  yScale: number;
  /** Output zero point (default 0). */
  yZeroPoint?: number;
  /** Output type (default: the type of `x`). */
  yDtype?: Int8Type;
}

/** Options of {@link qlinearConv}: attributes plus the requantization rounding. */
export interface QLinearConvOptions extends Conv2dAttributes {
  /** Requantization rounding (default `"dyadic"`, integer-only). */
  rounding?: RequantRounding;
}

/**
 * Integer convolution: int32 accumulators `[N, M, OH, OW]` of
 * `sum (x - Z_x) (w - Z_w[m]) + bias[m]` (ONNX `ConvInteger` plus a bias).
 *
 * @example
 * ```ts
 * import { conv2dInt32 } from "./conv.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const x = new Tensor(new Uint8Array([11, 12, 13, 14]), [1, 1, 2, 2]);
 * const w = new Tensor(new Int8Array([1, 1, 1, 1]), [1, 1, 2, 2]);
 * const y = conv2dInt32({ x, xZeroPoint: 10, w, bias: new Int32Array([5]) }, { pads: [0, 0, 1, 1] });
 * // (1+2+3+4)+5, (2+4)+5, (3+4)+5, 4+5
 * if (y.toArray().join() !== "15,11,12,9") throw new Error(y.toArray().join());
 * ```
 */
export function conv2dInt32(args: QConvArgs, attrs: Conv2dAttributes = {}): Tensor<"int32"> {
  checkQTensor(args.x, "conv2d x", 4);
  checkQTensor(args.w, "conv2d w", 4);
  const g = conv2dGeometry(args.x.shape, args.w.shape, attrs);
  const zx = zeroPointVector(args.xZeroPoint ?? 0, args.x.dtype as Int8Type, 1, "xZeroPoint")[0];
  const zw = zeroPointVector(args.wZeroPoint ?? 0, args.w.dtype as Int8Type, g.m, "wZeroPoint");
  let bias: Int32Array | undefined;
  if (args.bias !== undefined) {
    bias = args.bias instanceof Tensor ? args.bias.data : args.bias;
    if (!(bias instanceof Int32Array)) throw new QuantlabError("INVALID_ARGUMENT", "conv2d bias must be int32");
    if (bias.length !== g.m) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `conv2d bias must hold ${g.m} values (one per output channel), got ${bias.length}`,
      );
    }
  }
  const mg = g.m / g.group, cg = g.c / g.group;
  const kg = cg * g.kh * g.kw, hw = g.oh * g.ow;
  const out = new Int32Array(g.n * g.m * hw);
  const wd = args.w.data as Int8Array | Uint8Array, xd = args.x.data as Int8Array | Uint8Array;
  const packedW: Int16Array[] = [];
  for (let gi = 0; gi < g.group; gi++) {
    packedW.push(packPanels(wd, gi * mg * kg, mg, kg, kg, 1, zw.subarray(gi * mg, (gi + 1) * mg)));
  }
  const cols = new Int16Array(panelCount(hw) * chunkCount(kg) * 32);
  for (let b = 0; b < g.n; b++) {
    for (let gi = 0; gi < g.group; gi++) {
      im2colPanels(xd, ((b * g.c) + gi * cg) * g.h * g.w, cg, zx, g, cols);
      gemmPacked(packedW[gi], cols, mg, hw, kg, out, (b * g.m + gi * mg) * hw, hw);
    }
    if (bias) {
      for (let mi = 0; mi < g.m; mi++) {
        const bv = bias[mi], o = (b * g.m + mi) * hw;
        for (let j = 0; j < hw; j++) out[o + j] += bv;
      }
    }
  }
  return new Tensor(out, [g.n, g.m, g.oh, g.ow]);
}

/** im2col of `cg` channels starting at `offset`, minus the zero point, into column panels (padding = 0). */
function im2colPanels(
  x: Int8Array | Uint8Array,
  offset: number,
  cg: number,
  zx: number,
  g: Conv2dGeometry,
  dst: Int16Array,
): void {
  dst.fill(0);
  const { h, w, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow } = g;
  const k8 = chunkCount(cg * kh * kw);
  let p = 0;
  for (let ci = 0; ci < cg; ci++) {
    const plane = offset + ci * h * w;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, p++) {
        const pOff = (p >> 3) * 32 + (p & 7);
        // Output columns whose input column is inside the image: ox in [ox0, ox1).
        const off = kx * dw - pl;
        const ox0 = off >= 0 ? 0 : Math.ceil(-off / sw);
        const ox1 = Math.min(ow, Math.floor((w - 1 - off) / sw) + 1);
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= h) continue;
          const row = plane + iy * w + off;
          for (let ox = ox0; ox < ox1; ox++) {
            const j = oy * ow + ox;
            dst[(j >> 2) * k8 * 32 + (j & 3) * 8 + pOff] = x[row + ox * sw] - zx;
          }
        }
      }
    }
  }
}

/**
 * ONNX `QLinearConv` (2-D, NCHW): integer convolution then requantization with
 * `M[m] = S_x * S_w[m] / S_y` per output channel. Rounding `"dyadic"`
 * (default) is integer-only (TFLite's fixed-point multiplier); `"float"`
 * follows ONNX Runtime (float32 multiply, round half to even).
 *
 * @example
 * ```ts
 * import { qlinearConv } from "./conv.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const x = new Tensor(new Uint8Array([138, 148, 158, 168]), [1, 1, 2, 2]); // real 1, 2, 3, 4 (S 0.1, Z 128)
 * const w = new Tensor(new Int8Array([100, -100]), [2, 1, 1, 1]); // real 1 and -0.5 (per channel)
 * const y = qlinearConv({ x, xScale: 0.1, xZeroPoint: 128, w, wScale: [0.01, 0.005], yScale: 0.5, yZeroPoint: 128 });
 * // channel 0: 2, 4, 6, 8 (+128); channel 1: -1, -2, -3, -4 (+128)
 * if (y.toArray().join() !== "130,132,134,136,127,126,125,124") throw new Error(y.toArray().join());
 * ```
 */
export function qlinearConv(args: QLinearConvArgs, options: QLinearConvOptions = {}): QTensor {
  checkQTensor(args.x, "conv2d x", 4);
  checkQTensor(args.w, "conv2d w", 4);
  const m = args.w.shape[0];
  const sx = scaleVector(args.xScale, 1, "xScale")[0];
  const sw = scaleVector(args.wScale, m, "wScale");
  const sy = scaleVector(args.yScale, 1, "yScale")[0];
  const yDtype = args.yDtype ?? args.x.dtype as Int8Type;
  zeroPointVector(args.yZeroPoint ?? 0, yDtype, 1, "yZeroPoint");
  const rounding = options.rounding ?? "dyadic";
  const acc = conv2dInt32(args, options);
  const mult = new Float64Array(m);
  for (let c = 0; c < m; c++) mult[c] = effectiveMultiplier(sx, sw[c], sy, rounding);
  const y = requantize(acc.data, {
    multiplier: mult,
    zeroPoint: args.yZeroPoint ?? 0,
    dtype: yDtype,
    rounding,
    inner: acc.shape[2] * acc.shape[3],
  });
  return new Tensor(y, acc.shape) as QTensor;
}
