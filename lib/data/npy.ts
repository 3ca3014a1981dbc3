/**
 * A reader for NumPy `.npy` files (format versions 1, 2 and 3): float32 little-endian, C order — what
 * `np.save(path, x.astype(np.float32))` writes — into `{ data, shape }`. Everything else (Fortran order, other
 * dtypes, structured dtypes, truncated or padded data, malformed headers) is a `QuantlabError` naming the file.
 *
 * The format (numpy/lib/format.py): the magic `\x93NUMPY`, a major and a minor version byte, the header length
 * (uint16 little-endian in version 1, uint32 in versions 2 and 3), then an ASCII (version 3: UTF-8) Python dict
 * literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and a newline, then
 * the raw data. Written by hand: forty lines against an npm dependency.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** A float32 array read from a `.npy` file: values in C order and the shape (`[]` for a scalar). */
export interface NpyArray {
  /** Values, C (row-major) order. */
  readonly data: Float32Array;
  /** Dimensions. */
  readonly shape: readonly number[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

function field(header: string, key: string): string | undefined {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*`).exec(header);
  if (!m) return undefined;
  const rest = header.slice(m.index + m[0].length);
  if (rest[0] === "'" || rest[0] === '"') {
    const end = rest.indexOf(rest[0], 1);
    return end < 0 ? undefined : rest.slice(0, end + 1);
  }
  if (rest[0] === "(" || rest[0] === "[") {
    const end = rest.indexOf(rest[0] === "(" ? ")" : "]");
    return end < 0 ? undefined : rest.slice(0, end + 1);
  }
  return /^[A-Za-z0-9_]+/.exec(rest)?.[0];
}

/**
 * Parse the bytes of a `.npy` file holding float32 little-endian data in C order; `source` names the file in
 * errors (`DATASET` for malformed or truncated files, `UNSUPPORTED` for Fortran order and other dtypes).
 *
 * @example A 2x3 float32 array as `np.save` writes it
 * ```ts
 * import { parseNpy } from "./npy.ts";
 * const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".padEnd(117) + "\n";
 * const bytes = new Uint8Array(128 + 24); // magic, version 1.0, header length, header: data at 128
 * bytes.set([0x93, 78, 85, 77, 80, 89, 1, 0, header.length, 0]);
 * bytes.set(new TextEncoder().encode(header), 10);
 * new Float32Array(bytes.buffer, 128, 6).set([1, 2, 3, 4, 5, 6]);
 * const a = parseNpy(bytes, "x.npy");
 * if (a.shape.join() !== "2,3" || a.data[5] !== 6) throw new Error("bad");
 * ```
 */
export function parseNpy(bytes: Uint8Array, source = "npy bytes"): NpyArray {
  const bad = (why: string): never => {
    throw new QuantlabError("DATASET", `${source}: not a valid .npy file: ${why}`);
  };
  if (!(bytes instanceof Uint8Array)) bad("expected the file's bytes as a Uint8Array");
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) bad("it does not start with \\x93NUMPY");
  const major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3) {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${source}: .npy format version ${major}.${minor}; supported: 1.0, 2.0, 3.0`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) bad("the header length is cut off");
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) bad(`the header claims ${headerLen} bytes but the file has ${bytes.length}`);
  let header: string;
  try {
    header = new TextDecoder(major === 3 ? "utf-8" : "latin1", { fatal: true }).decode(
      bytes.subarray(8 + lenBytes, dataStart),
    );
  } catch {
    return bad("the header is not text");
  }
  header = header.trim();
  if (!header.startsWith("{") || !header.endsWith("}")) bad(`the header is not a dict: ${JSON.stringify(header)}`);
  const descr = field(header, "descr"), fortran = field(header, "fortran_order"), shapeText = field(header, "shape");
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    bad(`the header lacks descr, fortran_order or shape: ${header}`);
  }
  if (!/^['"]/.test(descr!)) {
    throw new QuantlabError("UNSUPPORTED", `${source}: structured dtype ${descr}; only float32 ('<f4') is read`);
  }
  const dtype = descr!.slice(1, -1);
  if (dtype !== "<f4") {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${source}: dtype '${dtype}'; only little-endian float32 ('<f4') is read (save with x.astype(np.float32))`,
    );
  }
  if (fortran === "True") {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${source}: Fortran-order data; only C order is read (save np.ascontiguousarray(x))`,
    );
  }
  if (fortran !== "False") bad(`fortran_order is ${fortran}`);
  if (shapeText![0] !== "(") bad(`shape ${shapeText} is not a tuple`);
  const parts = shapeText!.slice(1, -1).split(",").map((s) => s.trim()).filter((s) => s !== "");
  const shape: number[] = [];
  let count = 1;
  for (const p of parts) {
    const d = /^\d+$/.test(p) ? Number(p) : NaN;
    if (!Number.isSafeInteger(d)) bad(`shape ${shapeText} has a dimension "${p}"`);
    shape.push(d);
    count *= d;
  }
  if (!Number.isSafeInteger(count * 4)) bad(`shape ${shapeText} is too large`);
  const have = bytes.length - dataStart;
  if (have !== count * 4) {
    bad(
      `shape (${shape}) needs ${count * 4} data bytes, the file has ${have} (${
        have < count * 4 ? "truncated" : "trailing bytes"
      })`,
    );
  }
  // Copy (the data offset need not be 4-aligned); quantlab runs on little-endian hosts, as ONNX Runtime does.
  const data = new Float32Array(bytes.slice(dataStart).buffer);
  return { data, shape };
}
