/**
 * The float simulation of the integer kernels (what fake quantization
 * computes): dequantize input and weight to float32 (`S (q - Z)`), run the
 * float convolution / matrix product (float64 accumulation, float32 result),
 * add the dequantized bias (`S_x S_w b`), and quantize the output
 * (`clamp(roundHalfEven(y / S_y) + Z_y)`, as ONNX `QuantizeLinear`).
 *
 * The integer-only kernels ({@link qlinearConv}, {@link qlinearMatMul}) agree
 * with this path to within one step of the output grid; tests check it.
 *
 * @module
 */
import { Tensor } from "../tensor/tensor.ts";
import { checkQTensor, int8Range, type Int8Type, type QTensor, scaleVector, zeroPointVector } from "./checks.ts";
import type { Conv2dAttributes, QLinearConvArgs } from "./conv.ts";
import { conv2dGeometry } from "./conv.ts";
import type { QLinearMatMulArgs } from "./gemm.ts";
import { QuantlabError } from "../errors.ts";

const MAGIC = 6755399441055744;

/**
 * Float 2-D convolution, NCHW, float64 accumulation, float32 result
 * (reference kernel; direct loops).
 *
 * @example
 * ```ts
 * import { conv2dFloat } from "./simulate.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const x = Tensor.from([1, 2, 3, 4], [1, 1, 2, 2]);
 * const w = Tensor.from([1, 1, 1, 1], [1, 1, 2, 2]);
 * const y = conv2dFloat(x, w, new Float32Array([0.5]), { pads: [0, 0, 1, 1] });
 * if (y.toArray().join() !== "10.5,6.5,7.5,4.5") throw new Error(y.toArray().join());
 * ```
 */
export function conv2dFloat(
  x: Tensor<"float32">,
  w: Tensor<"float32">,
  bias?: Float32Array,
  attrs: Conv2dAttributes = {},
): Tensor<"float32"> {
  const g = conv2dGeometry(x.shape, w.shape, attrs);
  if (bias && bias.length !== g.m) {
    throw new QuantlabError("SHAPE_MISMATCH", `conv2d bias must hold ${g.m} values, got ${bias.length}`);
  }
  const mg = g.m / g.group, cg = g.c / g.group;
  const out = new Float32Array(g.n * g.m * g.oh * g.ow);
  const xd = x.data, wd = w.data;
  for (let b = 0; b < g.n; b++) {
    for (let mi = 0; mi < g.m; mi++) {
      const gi = Math.floor(mi / mg);
      for (let oy = 0; oy < g.oh; oy++) {
        for (let ox = 0; ox < g.ow; ox++) {
          let s = bias ? bias[mi] : 0;
          for (let ci = 0; ci < cg; ci++) {
            const plane = (b * g.c + gi * cg + ci) * g.h * g.w;
            const wbase = (mi * cg + ci) * g.kh * g.kw;
            for (let ky = 0; ky < g.kh; ky++) {
              const iy = oy * g.sh - g.pt + ky * g.dh;
              if (iy < 0 || iy >= g.h) continue;
              for (let kx = 0; kx < g.kw; kx++) {
                const ix = ox * g.sw - g.pl + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                s += xd[plane + iy * g.w + ix] * wd[wbase + ky * g.kw + kx];
              }
            }
          }
          out[((b * g.m + mi) * g.oh + oy) * g.ow + ox] = s;
        }
      }
    }
  }
  return new Tensor(out, [g.n, g.m, g.oh, g.ow]);
}

/** Dequantize `q` (length outer*channels*inner) with per-channel scale/zero point into float32. */
function dequant(q: Int8Array | Uint8Array, s: Float64Array, z: Int32Array, inner: number): Float32Array {
  const out = new Float32Array(q.length);
  const ch = s.length;
  for (let i = 0; i < q.length; i++) {
    const c = Math.floor(i / inner) % ch;
    out[i] = (q[i] - z[c]) * s[c];
  }
  return out;
}

/** Quantize float32 values: `clamp(roundHalfEven(fround(y / S)) + Z)`. */
function quantOut(y: Float32Array, s: number, z: number, dtype: Int8Type): Int8Array | Uint8Array {
  const { qmin, qmax } = int8Range(dtype);
  const out = dtype === "int8" ? new Int8Array(y.length) : new Uint8Array(y.length);
  const f = Math.fround;
  for (let i = 0; i < y.length; i++) {
    let v = ((f(y[i] / s) + MAGIC) - MAGIC) + z;
    v = v < qmin ? qmin : v > qmax ? qmax : v;
    out[i] = v;
  }
  return out;
}

/**
 * Float simulation of {@link qlinearConv}: dequantize, float conv, quantize.
 *
 * @example
 * ```ts
 * import { simulateQLinearConv } from "./simulate.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const x = new Tensor(new Uint8Array([138, 148, 158, 168]), [1, 1, 2, 2]);
 * const w = new Tensor(new Int8Array([100, -100]), [2, 1, 1, 1]);
 * const y = simulateQLinearConv({ x, xScale: 0.1, xZeroPoint: 128, w, wScale: [0.01, 0.005], yScale: 0.5, yZeroPoint: 128 });
 * if (y.toArray().join() !== "130,132,134,136,127,126,125,124") throw new Error(y.toArray().join());
 * ```
 */
export function simulateQLinearConv(args: QLinearConvArgs, attrs: Conv2dAttributes = {}): QTensor {
  checkQTensor(args.x, "conv2d x", 4);
  checkQTensor(args.w, "conv2d w", 4);
  const g = conv2dGeometry(args.x.shape, args.w.shape, attrs);
  const sx = scaleVector(args.xScale, 1, "xScale");
  const zx = zeroPointVector(args.xZeroPoint ?? 0, args.x.dtype as Int8Type, 1, "xZeroPoint");
  const sw = scaleVector(args.wScale, g.m, "wScale");
  const zw = zeroPointVector(args.wZeroPoint ?? 0, args.w.dtype as Int8Type, g.m, "wZeroPoint");
  const sy = scaleVector(args.yScale, 1, "yScale")[0];
  const yDtype = args.yDtype ?? args.x.dtype as Int8Type;
  const zy = zeroPointVector(args.yZeroPoint ?? 0, yDtype, 1, "yZeroPoint")[0];
  const xf = Tensor.from(dequant(args.x.data as Int8Array | Uint8Array, sx, zx, 1), args.x.shape);
  const wf = Tensor.from(dequant(args.w.data as Int8Array | Uint8Array, sw, zw, args.w.size / g.m), args.w.shape);
  let bf: Float32Array | undefined;
  if (args.bias !== undefined) {
    const b = args.bias instanceof Tensor ? args.bias.data : args.bias;
    if (b.length !== g.m) throw new QuantlabError("SHAPE_MISMATCH", `conv2d bias must hold ${g.m} values`);
    bf = new Float32Array(g.m);
    for (let c = 0; c < g.m; c++) bf[c] = b[c] * Math.fround(sx[0] * sw[c]);
  }
  const y = conv2dFloat(xf, wf, bf, attrs);
  return new Tensor(quantOut(y.data, sy, zy, yDtype), y.shape) as QTensor;
}

/**
 * Float simulation of {@link qlinearMatMul}: dequantize, float matrix product
 * (float64 accumulation), add the dequantized bias, quantize.
 *
 * @example
 * ```ts
 * import { simulateQLinearMatMul } from "./simulate.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const a = new Tensor(new Int8Array([10, -20, 30, 40]), [2, 2]);
 * const b = new Tensor(new Int8Array([2, 0, 0, 2]), [2, 2]);
 * const y = simulateQLinearMatMul({ a, aScale: 0.5, b, bScale: 0.25, yScale: 0.5 });
 * if (y.toArray().join() !== "5,-10,15,20") throw new Error(y.toArray().join());
 * ```
 */
export function simulateQLinearMatMul(args: QLinearMatMulArgs): QTensor {
  checkQTensor(args.a, "a", 2);
  checkQTensor(args.b, "b", 2);
  const [m, k] = args.a.shape;
  const [kb, n] = args.transB ? [args.b.shape[1], args.b.shape[0]] : args.b.shape;
  if (k !== kb) throw new QuantlabError("SHAPE_MISMATCH", `a [${args.a.shape}] and b [${args.b.shape}] disagree on K`);
  const sa = scaleVector(args.aScale, m, "aScale");
  const za = zeroPointVector(args.aZeroPoint ?? 0, args.a.dtype as Int8Type, m, "aZeroPoint");
  const sb = scaleVector(args.bScale, n, "bScale");
  const zb = zeroPointVector(args.bZeroPoint ?? 0, args.b.dtype as Int8Type, n, "bZeroPoint");
  const sy = scaleVector(args.yScale, 1, "yScale")[0];
  const yDtype = args.yDtype ?? args.a.dtype as Int8Type;
  const zy = zeroPointVector(args.yZeroPoint ?? 0, yDtype, 1, "yZeroPoint")[0];
  const af = dequant(args.a.data as Int8Array | Uint8Array, sa, za, k);
  // b as [K, N] (per-column scale: channel = column, inner 1) or [N, K] (channel = row, inner K).
  const bf = dequant(args.b.data as Int8Array | Uint8Array, sb, zb, args.transB ? k : 1);
  const bias = args.bias === undefined ? undefined : args.bias instanceof Tensor ? args.bias.data : args.bias;
  if (bias && bias.length !== n) throw new QuantlabError("SHAPE_MISMATCH", `bias must hold ${n} values`);
  const y = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? Math.fround(bias[j] * Math.fround(sa[i] * sb[j])) : 0;
      for (let p = 0; p < k; p++) s += af[i * k + p] * (args.transB ? bf[j * k + p] : bf[p * n + j]);
      y[i * n + j] = s;
    }
  }
  return new Tensor(quantOut(y, sy, zy, yDtype), [m, n]) as QTensor;
}
