/**
 * Uniform affine quantization kernels: quantize, dequantize, fake-quantize.
 *
 * Arithmetic follows PyTorch's CPU kernels exactly (float32):
 * `q = clamp(Z + round(fround(r * fround(1 / S))), qmin, qmax)` and
 * `r~ = fround((q - Z) * S)`; with `nearest-even` rounding the results are
 * bit-identical to `torch.fake_quantize_per_tensor_affine` and
 * `torch.fake_quantize_per_channel_affine`.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { QuantParams } from "./params.ts";
import { resolveGranularity } from "./params.ts";
import type { RoundingMode } from "./rounding.ts";
import { forEachSegment } from "./slots.ts";

const MAGIC = 6755399441055744;

/** Options for the quantization kernels. */
export interface KernelOptions {
  /** Rounding mode (default `nearest-even`). */
  rounding?: RoundingMode;
  /** Seed for stochastic rounding (default 0). */
  seed?: number;
  /** Name used in error messages. */
  name?: string;
}

/** The narrowest integer dtype holding `[qmin, qmax]`. */
export function codeDtype(p: Pick<QuantParams, "qmin" | "qmax">): "int8" | "uint8" | "int32" {
  if (p.qmin >= -128 && p.qmax <= 127) return "int8";
  if (p.qmin >= 0 && p.qmax <= 255) return "uint8";
  return "int32";
}

function checkParamsFor(p: QuantParams, shape: readonly number[], name: string): void {
  const { slots } = resolveGranularity(p.granularity, shape, name);
  if (p.scale.length !== slots || p.zeroPoint.length !== slots) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${name}: parameters hold ${p.scale.length} scales but a tensor of shape [${shape}] needs ${slots}`,
    );
  }
}

/**
 * Core loop: writes rounded, clamped codes (as numbers) through `emit`.
 * Specialised per rounding mode so the hot loop has no calls.
 */
function quantizeLoop(
  x: Float32Array,
  shape: readonly number[],
  p: QuantParams,
  opts: KernelOptions,
  out: Float32Array | Int8Array | Uint8Array | Int32Array,
  dequant: boolean,
): void {
  const mode = opts.rounding ?? "nearest-even";
  const rng = mode === "stochastic" ? new Prng(opts.seed ?? 0) : undefined;
  const { scale, zeroPoint, qmin, qmax } = p;
  const f = Math.fround;
  forEachSegment(shape, p.granularity, (start, end, slot0, stride) => {
    if (stride === 0) {
      const s = scale[slot0];
      const inv = f(1 / s);
      const z = zeroPoint[slot0];
      const lo = qmin - z, hi = qmax - z; // clamp the rounded value before adding Z
      switch (mode) {
        case "nearest-even":
          if (dequant) {
            for (let j = start; j < end; j++) {
              let q = (f(x[j] * inv) + MAGIC) - MAGIC;
              q = q < lo ? lo : q > hi ? hi : q;
              out[j] = q * s;
            }
          } else {
            for (let j = start; j < end; j++) {
              let q = (f(x[j] * inv) + MAGIC) - MAGIC;
              q = q < lo ? lo : q > hi ? hi : q;
              out[j] = q + z;
            }
          }
          return;
        default:
          for (let j = start; j < end; j++) {
            let q = roundOne(f(x[j] * inv), mode, rng);
            q = q < lo ? lo : q > hi ? hi : q;
            out[j] = dequant ? q * s : q + z;
          }
          return;
      }
    }
    for (let j = start, k = slot0; j < end; j++, k++) {
      const s = scale[k];
      const z = zeroPoint[k];
      const lo = qmin - z, hi = qmax - z;
      let q = roundOne(f(x[j] * f(1 / s)), mode, rng);
      q = q < lo ? lo : q > hi ? hi : q;
      out[j] = dequant ? q * s : q + z;
    }
  });
}

function roundOne(v: number, mode: RoundingMode, rng?: Prng): number {
  switch (mode) {
    case "nearest-even":
      return (v + MAGIC) - MAGIC;
    case "nearest-away":
      return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
    case "floor":
      return Math.floor(v);
    case "ceil":
      return Math.ceil(v);
    case "stochastic":
      return Math.floor(v + rng!.nextFloat());
  }
}

/**
 * Quantize float values to integer codes: `clamp(round(r / S) + Z, qmin, qmax)`.
 * The code tensor is int8, uint8 or int32, the narrowest that holds the grid.
 *
 * @example
 * ```ts
 * import { quantizeTensor } from "./affine.ts";
 * import { paramsFromRange } from "./params.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const p = paramsFromRange([-1], [1], { bits: 8, signed: true, symmetric: true, range: "restricted" }, { kind: "tensor" });
 * const q = quantizeTensor(Tensor.from([-1, 0, 0.5, 1]), p);
 * if (q.toArray().join() !== "-127,0,64,127") throw new Error(q.toArray().join());
 * ```
 */
export function quantizeTensor(x: Tensor<"float32">, p: QuantParams, opts: KernelOptions = {}): Tensor {
  const name = opts.name ?? "tensor";
  checkParamsFor(p, x.shape, name);
  const dt = codeDtype(p);
  const out = Tensor.zeros(x.shape, dt);
  quantizeLoop(x.data, x.shape, p, opts, out.data, false);
  return out;
}

/**
 * Dequantize integer codes: `r~ = S * (q - Z)` (float32).
 *
 * @example
 * ```ts
 * import { dequantizeTensor } from "./affine.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const p = { bits: 8, signed: true, symmetric: true, range: "full" as const, qmin: -128, qmax: 127,
 *   scale: new Float32Array([0.5]), zeroPoint: new Int32Array([0]), granularity: { kind: "tensor" as const } };
 * const r = dequantizeTensor(new Tensor(new Int8Array([-2, 3])), p);
 * if (r.toArray().join() !== "-1,1.5") throw new Error("bad");
 * ```
 */
export function dequantizeTensor(q: Tensor, p: QuantParams, opts: { name?: string } = {}): Tensor<"float32"> {
  const name = opts.name ?? "codes";
  if (q.dtype === "float32") {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${name} must be an integer tensor (int8, uint8 or int32), got float32`,
    );
  }
  checkParamsFor(p, q.shape, name);
  const out = new Float32Array(q.size);
  const src = q.data;
  const { scale, zeroPoint } = p;
  forEachSegment(q.shape, p.granularity, (start, end, slot0, stride) => {
    for (let j = start, k = slot0; j < end; j++, k += stride) out[j] = (src[j] - zeroPoint[k]) * scale[k];
  });
  return new Tensor(out, q.shape);
}

/**
 * Fake-quantize (quantize then dequantize) in float32; with `nearest-even`
 * rounding this equals PyTorch's `fake_quantize_per_{tensor,channel}_affine`
 * bit for bit.
 *
 * @example
 * ```ts
 * import { fakeQuantizeTensor } from "./affine.ts";
 * import { paramsFromRange } from "./params.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const p = paramsFromRange([0], [1], { bits: 2, signed: false, symmetric: false, range: "full" }, { kind: "tensor" });
 * const y = fakeQuantizeTensor(Tensor.from([0.1, 0.4, 0.9]), p);
 * if (Math.abs(y.data[1] - 1 / 3) > 1e-7) throw new Error(y.toArray().join());
 * ```
 */
export function fakeQuantizeTensor(
  x: Tensor<"float32">,
  p: QuantParams,
  opts: KernelOptions & { out?: Float32Array } = {},
): Tensor<"float32"> {
  const name = opts.name ?? "tensor";
  checkParamsFor(p, x.shape, name);
  const out = opts.out ?? new Float32Array(x.size);
  quantizeLoop(x.data, x.shape, p, opts, out, true);
  return new Tensor(out, x.shape);
}
