/**
 * Uniform affine quantization kernels: quantize, dequantize, fake-quantize.
 *
 * Arithmetic follows PyTorch's CPU kernels exactly (float32):
 * `q = clamp(Z + round(fround(r * fround(1 / S))), qmin, qmax)` and
 * `r~ = fround((q - Z) * S)`; with `nearest-even` rounding the results are
 * bit-identical to `torch.fake_quantize_per_tensor_affine` and
 * `torch.fake_quantize_per_channel_affine` (proven by the fixtures of
 * tests/fixtures/make_fake_quant_fixtures.py).
 *
 * Speed: nearest-even fake quantization of contiguous runs sharing one scale
 * (per-tensor, per-channel with an inner extent, ONNX-blocked per-group) runs
 * on a Wasm SIMD float32 kernel (`lib/tensor/simd.ts`, same IEEE float32
 * arithmetic); everything else runs specialised scalar loops with no calls
 * and no `Math.round`. NaN / ±Infinity inputs are detected inside the loops
 * (no extra pass) and raise `NON_FINITE`.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { runAffineRound } from "../tensor/simd.ts";
import type { QuantParams } from "./params.ts";
import { checkSlotRepresentable, describeGranularity, resolveGranularity } from "./params.ts";
import { checkRoundingMode, type RoundingMode } from "./rounding.ts";
import { forEachRun } from "./slots.ts";

const MAGIC = 6755399441055744; // 1.5 * 2^52: (v + MAGIC) - MAGIC rounds half to even
/** Runs shorter than this stay in the scalar loop (the Wasm call and copies cost more). */
const SIMD_MIN_RUN = 128;

/** Options for the quantization kernels. */
export interface KernelOptions {
  /** Rounding mode (default `nearest-even`). */
  rounding?: RoundingMode;
  /** Seed for stochastic rounding (default 0). */
  seed?: number;
  /** Name used in error messages. */
  name?: string;
}

/**
 * The narrowest integer dtype holding `[qmin, qmax]`.
 *
 * @example
 * ```ts
 * import { codeDtype } from "./affine.ts";
 * if (codeDtype({ qmin: 0, qmax: 255 }) !== "uint8" || codeDtype({ qmin: -8, qmax: 7 }) !== "int8") throw new Error("bad");
 * if (codeDtype({ qmin: -32768, qmax: 32767 }) !== "int32") throw new Error("bad");
 * ```
 */
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
      `${name}: parameters hold ${p.scale.length} scales and ${p.zeroPoint.length} zero points but a tensor of ` +
        `shape [${shape}] with ${describeGranularity(p.granularity)} quantization needs ${slots}`,
    );
  }
  // Every kernel output is (q - z) * S for q in [qmin, qmax]: finite grid ends mean finite outputs.
  for (let i = 0; i < slots; i++) checkSlotRepresentable(p.scale[i], p.zeroPoint[i], p.qmin, p.qmax, name, i);
}

function throwNonFinite(x: Float32Array, name: string): never {
  let i = 0;
  while (i < x.length && x[i] - x[i] === 0) i++;
  throw new QuantlabError(
    "NON_FINITE",
    `${name} holds a non-finite value (${x[i]}) at flat index ${i}; expected only finite numbers`,
  );
}

const MODE_CODE: Record<RoundingMode, number> = {
  "nearest-even": 0,
  "nearest-away": 1,
  "floor": 2,
  "ceil": 3,
  "stochastic": 4,
};

function modeCode(opts: KernelOptions): number {
  return MODE_CODE[checkRoundingMode(opts.rounding ?? "nearest-even")];
}

/** Round `v` with mode code `m` (see {@link MODE_CODE}); small enough for V8 to inline. */
function roundBy(v: number, m: number, rng: Prng | undefined): number {
  switch (m) {
    case 0:
      return (v + MAGIC) - MAGIC;
    case 1:
      return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
    case 2:
      return Math.floor(v);
    case 3:
      return Math.ceil(v);
    default:
      // P(ceil) = v - floor(v): v is a float32 value, u a multiple of 2^-32, so v + u is exact.
      return Math.floor(v + rng!.nextFloat());
  }
}

/** Per-slot constants: reciprocal scale (float32), scale, and the clamp bounds of round(x/S). */
interface SlotTables {
  inv: Float64Array;
  scale: Float64Array;
  lo: Float64Array;
  hi: Float64Array;
  zero: Float64Array;
}

function slotTables(p: QuantParams): SlotTables {
  const n = p.scale.length, f = Math.fround;
  const t = {
    inv: new Float64Array(n),
    scale: new Float64Array(n),
    lo: new Float64Array(n),
    hi: new Float64Array(n),
    zero: new Float64Array(n),
  };
  for (let k = 0; k < n; k++) {
    const s = p.scale[k], z = p.zeroPoint[k];
    t.inv[k] = f(1 / s);
    t.scale[k] = s;
    t.lo[k] = p.qmin - z;
    t.hi[k] = p.qmax - z;
    t.zero[k] = z;
  }
  return t;
}

/**
 * The scalar kernels: `q = clamp(round(fround(x * inv)), lo, hi)`, then
 * `out = q * S` ({@link fakeRun}) or `out = q + Z` ({@link codesRun}). PyTorch's
 * order: round `x / S` first, then add `Z`, then clamp; clamping `round(x / S)`
 * to `[qmin - Z, qmax - Z]` is the same. Nearest-even is inlined; in-range
 * elements take one predictable branch, and the cold out-of-range branch also
 * catches NaN / ±Infinity (returns `false`). Two functions, so each sees one
 * output array type (monomorphic element stores).
 */
function fakeRun(
  x: Float32Array,
  out: Float32Array,
  start: number,
  end: number,
  slot0: number,
  stride: number,
  t: SlotTables,
  m: number,
  rng: Prng | undefined,
): boolean {
  const f = Math.fround;
  let finite = true;
  if (stride === 0) {
    const inv = t.inv[slot0], lo = t.lo[slot0], hi = t.hi[slot0], s = t.scale[slot0];
    for (let j = start; j < end; j++) {
      const v = f(x[j] * inv);
      let q = m === 0 ? (v + MAGIC) - MAGIC : roundBy(v, m, rng);
      if (!(q >= lo && q <= hi)) {
        if (x[j] - x[j] !== 0) finite = false;
        q = q > hi ? hi : lo;
      }
      out[j] = q * s + 0; // + 0 turns a -0 (floor, ceil, away) into +0, as PyTorch's integer round trip
    }
    return finite;
  }
  const { inv, lo, hi, scale } = t;
  for (let j = start, k = slot0; j < end; j++, k++) {
    const v = f(x[j] * inv[k]);
    let q = m === 0 ? (v + MAGIC) - MAGIC : roundBy(v, m, rng);
    const l = lo[k], h = hi[k];
    if (!(q >= l && q <= h)) {
      if (x[j] - x[j] !== 0) finite = false;
      q = q > h ? h : l;
    }
    out[j] = q * scale[k] + 0;
  }
  return finite;
}

function codesRun(
  x: Float32Array,
  out: Int8Array | Uint8Array | Int32Array,
  start: number,
  end: number,
  slot0: number,
  stride: number,
  t: SlotTables,
  m: number,
  rng: Prng | undefined,
): boolean {
  const f = Math.fround;
  let finite = true;
  if (stride === 0) {
    const inv = t.inv[slot0], lo = t.lo[slot0], hi = t.hi[slot0], z = t.zero[slot0];
    for (let j = start; j < end; j++) {
      const v = f(x[j] * inv);
      let q = m === 0 ? (v + MAGIC) - MAGIC : roundBy(v, m, rng);
      if (!(q >= lo && q <= hi)) {
        if (x[j] - x[j] !== 0) finite = false;
        q = q > hi ? hi : lo;
      }
      out[j] = q + z;
    }
    return finite;
  }
  const { inv, lo, hi, zero } = t;
  for (let j = start, k = slot0; j < end; j++, k++) {
    const v = f(x[j] * inv[k]);
    let q = m === 0 ? (v + MAGIC) - MAGIC : roundBy(v, m, rng);
    const l = lo[k], h = hi[k];
    if (!(q >= l && q <= h)) {
      if (x[j] - x[j] !== 0) finite = false;
      q = q > h ? h : l;
    }
    out[j] = q + zero[k];
  }
  return finite;
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
  const out = Tensor.zeros(x.shape, codeDtype(p));
  const t = slotTables(p);
  const m = modeCode(opts);
  const rng = m === 4 ? new Prng(opts.seed ?? 0) : undefined;
  const data = x.data, codes = out.data;
  let finite = true;
  forEachRun(x.shape, p.granularity, (start, end, slot0, stride) => {
    if (!codesRun(data, codes, start, end, slot0, stride, t, m, rng)) finite = false;
  });
  if (!finite) throwNonFinite(data, name);
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
  forEachRun(q.shape, p.granularity, (start, end, slot0, stride) => {
    if (stride === 0) {
      const z = zeroPoint[slot0], s = scale[slot0];
      for (let j = start; j < end; j++) out[j] = (src[j] - z) * s;
    } else {
      for (let j = start, k = slot0; j < end; j++, k++) out[j] = (src[j] - zeroPoint[k]) * scale[k];
    }
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
  if (out.length !== x.size) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${name}: output buffer holds ${out.length} elements but the tensor has ${x.size}`,
    );
  }
  const m = modeCode(opts);
  const rng = m === 4 ? new Prng(opts.seed ?? 0) : undefined;
  const data = x.data, { scale, zeroPoint, qmin, qmax } = p, f = Math.fround;
  let t: SlotTables | undefined;
  let finite = true;
  forEachRun(x.shape, p.granularity, (start, end, slot0, stride) => {
    let ok: boolean;
    if (m === 0 && stride === 0 && end - start >= SIMD_MIN_RUN) {
      // Wasm SIMD float32 kernel (scalar fallback inside): the hot path.
      const s = scale[slot0], z = zeroPoint[slot0];
      ok = runAffineRound(data, out, start, end, f(1 / s), s, qmin - z, qmax - z);
    } else {
      t ??= slotTables(p);
      ok = fakeRun(data, out, start, end, slot0, stride, t, m, rng);
    }
    if (!ok) finite = false;
  });
  if (!finite) throwNonFinite(data, name);
  return new Tensor(out, x.shape);
}
