/**
 * Compressed ONNX export: every vector-quantized weight becomes `Gather(codebook, codes)` (+ Reshape, and for
 * PQ layouts other than flat output-channel-first the Transposes that put blocks back), so any ONNX Runtime
 * runs the compressed model and its file size shows the compression.
 *
 * Codes: ONNX `Gather` takes int32/int64 indices only (operator spec, `Tind`), so codes are stored in the smallest
 * unsigned type and Cast to int32 in the graph: uint8 for up to 256 centroids, uint16 above. Packed (option `pack`;
 * by default only where it saves at least 1 KiB), codes of 1, 2 or 4 bits go 8/4/2 to a byte (first code in the low
 * bits) and are unpacked by `BitShift` (uint8) -> Cast int32 -> `Mod 2^bits` -> Reshape -> Slice; codes of 3, 5, 6
 * or 7 bits are stored as that many bit planes (bit j of every code, 8 to a byte), unpacked the same way and summed
 * with weights `2^j` (Mul, ReduceSum), so every code takes exactly `ceil(log2 k)` bits in the file. Codebooks are
 * float32, or float16 + Cast when the layer stores them in 16 bits. The decoded weight equals
 * {@link VqLayer.reconstruct} bit for bit (a gather copies values; float16 -> float32 is exact).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { GraphBuilder, intAttr, intsAttr } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { DataType } from "../onnx/tensor_data.ts";
import type { VqLayer } from "./layer.ts";

/** Options of {@link exportCompressed}. */
export interface ExportOptions {
  /**
   * Pack codes below 8 bits into exactly their bits (1/2/4 bits several to a byte, others as bit planes): `true`,
   * `false`, or `"auto"` (default): per layer, only where it saves at least 1 KiB, since the unpacking subgraph
   * costs a few hundred bytes of graph.
   */
  readonly pack?: boolean | "auto";
}

/** Storage of one exported layer. */
export interface ExportedLayer {
  /** Weight name. */
  readonly weight: string;
  /** Bytes of the stored codes. */
  readonly codeBytes: number;
  /** Bytes of the codebook (float32, or float16 when the layer's `codebookBits` is 16). */
  readonly codebookBytes: number;
  /** Bits per stored code (8 or 16 unpacked; `ceil(log2 k)` packed). */
  readonly codeBits: number;
}

function packCodes(codes: Int32Array, bits: number): Uint8Array {
  const per = 8 / bits, out = new Uint8Array(Math.ceil(codes.length / per));
  for (let i = 0; i < codes.length; i++) out[(i / per) | 0] |= codes[i] << ((i % per) * bits);
  return out;
}

/**
 * The model with every layer's weight initializer replaced by a gather from its codebook (see the module doc).
 * `model` supplies everything else (biases, BatchNorm statistics), unchanged; it is not modified.
 *
 * @example
 * ```ts ignore
 * const { model: compressed, layers } = exportCompressed(quantized.model, quantized.layers);
 * await Deno.writeFile("out.onnx", compressed.encode());
 * ```
 */
export function exportCompressed(
  model: OnnxModel,
  layers: readonly VqLayer[],
  options: ExportOptions = {},
): { model: OnnxModel; layers: ExportedLayer[] } {
  const m = model.clone();
  const g = m.graph;
  const b = new GraphBuilder(g);
  const stored: ExportedLayer[] = [];
  const constants = new Map<string, string>();
  const shared = (key: string, make: () => string): string => {
    let name = constants.get(key);
    if (name === undefined) constants.set(key, name = make());
    return name;
  };
  const head: typeof g.node = [];
  const nodesBefore = g.node;
  g.node = head; // new nodes go first (they read initializers only)
  for (const l of layers) {
    const i = g.initializer.findIndex((t) => t.name === l.weight);
    if (i < 0) throw new QuantlabError("INVALID_ARGUMENT", `${model.source}: no initializer "${l.weight}" to compress`);
    const t = g.initializer[i];
    if (t.dims.map(Number).join() !== l.shape.join()) {
      throw new QuantlabError("SHAPE_MISMATCH", `${l.weight}: initializer [${t.dims}] vs quantized layer [${l.shape}]`);
    }
    g.initializer.splice(i, 1);
    g.input = g.input.filter((v) => v.name !== l.weight);
    const base = l.weight.replace(/[^A-Za-z0-9_.]/g, "_");
    const bits = Math.ceil(Math.log2(Math.max(l.k, 2)));
    const d = l.blockSize, n = l.codes.length;
    const cbDims = d === 1 ? [l.k] : [l.k, d];
    let cb: string;
    if (l.codebookBits === 16) {
      const half = new Uint16Array(Float16Array.from(l.codebook).buffer);
      const c16 = b.initializer(`${base}.codebook_f16`, half, cbDims, DataType.FLOAT16);
      [cb] = b.node("Cast", [c16], { attributes: [intAttr("to", DataType.FLOAT)] });
    } else cb = b.initializer(`${base}.codebook`, l.codebook, cbDims);
    let idx: string;
    let codeBytes: number, codeBits: number;
    const mode = options.pack ?? "auto";
    const pack = mode === true || (mode === "auto" && bits < 8 && n - Math.ceil((n * bits) / 8) >= 1024);
    if (pack && (bits === 1 || bits === 2 || bits === 4)) {
      const per = 8 / bits;
      const packed = packCodes(l.codes, bits);
      codeBytes = packed.length;
      codeBits = bits;
      const p = b.initializer(`${base}.codes_packed`, packed, [packed.length, 1], DataType.UINT8);
      const shifts = b.initializer(
        `${base}.shifts`,
        Uint8Array.from({ length: per }, (_, j) => j * bits),
        [1, per],
        DataType.UINT8,
      );
      const [shifted] = b.node("BitShift", [p, shifts], {
        attributes: [{ name: "direction", type: 3, s: new TextEncoder().encode("RIGHT") }],
      });
      const [wide] = b.node("Cast", [shifted], { attributes: [intAttr("to", DataType.INT32)] });
      const mod = b.initializer(`${base}.modulus`, Int32Array.of(1 << bits), [], DataType.INT32);
      const [masked] = b.node("Mod", [wide, mod], { attributes: [intAttr("fmod", 0)] });
      const flat = shared("vq.flat", () => b.initializer("vq.flat", BigInt64Array.of(-1n), [1], DataType.INT64));
      const [all] = b.node("Reshape", [masked, flat]);
      const starts = shared("vq.axis0", () => b.initializer("vq.axis0", BigInt64Array.of(0n), [1], DataType.INT64));
      const ends = b.initializer(`${base}.end`, BigInt64Array.of(BigInt(n)), [1], DataType.INT64);
      [idx] = b.node("Slice", [all, starts, ends]);
    } else if (pack && bits < 8 && m.opset() >= 13) {
      // bit planes: plane j holds bit j of every code, 8 codes a byte; code = sum_j bit_j(code) * 2^j
      const per = Math.ceil(n / 8);
      const planes = new Uint8Array(bits * per);
      const bit = new Int32Array(n);
      for (let j = 0; j < bits; j++) {
        for (let i = 0; i < n; i++) bit[i] = (l.codes[i] >> j) & 1;
        planes.set(packCodes(bit, 1), j * per);
      }
      codeBytes = planes.length;
      codeBits = bits;
      const p = b.initializer(`${base}.codes_planes`, planes, [bits, per, 1], DataType.UINT8);
      const shifts = shared(
        "vq.bit_shifts",
        () => b.initializer("vq.bit_shifts", Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7), [1, 1, 8], DataType.UINT8),
      );
      const [shifted] = b.node("BitShift", [p, shifts], {
        attributes: [{ name: "direction", type: 3, s: new TextEncoder().encode("RIGHT") }],
      });
      const [wide] = b.node("Cast", [shifted], { attributes: [intAttr("to", DataType.INT32)] });
      const two = shared("vq.two", () => b.initializer("vq.two", Int32Array.of(2), [], DataType.INT32));
      const [bitsOf] = b.node("Mod", [wide, two], { attributes: [intAttr("fmod", 0)] });
      const rows = b.initializer(`${base}.planes_shape`, BigInt64Array.of(BigInt(bits), -1n), [2], DataType.INT64);
      const [flat] = b.node("Reshape", [bitsOf, rows]);
      const starts = shared("vq.axis0", () => b.initializer("vq.axis0", BigInt64Array.of(0n), [1], DataType.INT64));
      const ends = b.initializer(`${base}.end`, BigInt64Array.of(BigInt(n)), [1], DataType.INT64);
      const axis1 = shared("vq.axis1", () => b.initializer("vq.axis1", BigInt64Array.of(1n), [1], DataType.INT64));
      const [cut] = b.node("Slice", [flat, starts, ends, axis1]);
      const weights = b.initializer(
        `${base}.plane_weights`,
        Int32Array.from({ length: bits }, (_, j) => 1 << j),
        [bits, 1],
        DataType.INT32,
      );
      const [scaled] = b.node("Mul", [cut, weights]);
      [idx] = b.node("ReduceSum", [scaled, starts], { attributes: [intAttr("keepdims", 0)] });
    } else {
      const small = l.k <= 256;
      const values = small ? Uint8Array.from(l.codes) : Uint16Array.from(l.codes);
      codeBytes = values.byteLength;
      codeBits = small ? 8 : 16;
      const c = b.initializer(`${base}.codes`, values, [n], small ? DataType.UINT8 : DataType.UINT16);
      [idx] = b.node("Cast", [c], { attributes: [intAttr("to", DataType.INT32)] });
    }
    const [gathered] = b.node("Gather", [cb, idx], { attributes: [intAttr("axis", 0)] });
    // blocks -> weight: moved shape [out, ...rest] (axis first), then the axis back in place
    const moved = [l.shape[l.axis], ...l.shape.slice(0, l.axis), ...l.shape.slice(l.axis + 1)];
    let cur = gathered;
    const reshape = (dims: number[], out?: string) => {
      const s = b.initializer(`${base}.shape`, BigInt64Array.from(dims.map(BigInt)), [dims.length], DataType.INT64);
      return b.node("Reshape", [cur, s], out ? { outputs: [out] } : {})[0];
    };
    const last = l.axis === 0 || d === 1; // scalar codes are in the weight's own order
    if (l.order === "channels" && d > 1) {
      const O = moved[0], cin = moved[1], S = moved.slice(2).reduce((a, x) => a * x, 1), B = cin / d;
      cur = reshape([O, S, B, d]);
      [cur] = b.node("Transpose", [cur], { attributes: [intsAttr("perm", [0, 2, 3, 1])] });
    }
    cur = reshape(d === 1 ? [...l.shape] : moved, last ? l.weight : undefined);
    if (!last) {
      const perm = l.shape.map((_, i) => (i < l.axis ? i + 1 : i === l.axis ? 0 : i));
      b.node("Transpose", [cur], { attributes: [intsAttr("perm", perm)], outputs: [l.weight] });
    }
    stored.push({ weight: l.weight, codeBytes, codebookBytes: (l.codebookBits / 8) * l.codebook.length, codeBits });
  }
  g.node = [...head, ...nodesBefore];
  if (m.opset() < 11) throw new QuantlabError("UNSUPPORTED", `${model.source}: compressed export needs opset >= 11`);
  return { model: m, layers: stored };
}
