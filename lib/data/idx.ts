/**
 * Reading IDX files (the MNIST / Fashion-MNIST container), gzip-compressed or not.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** A decoded IDX array (unsigned-byte data only, as the MNIST family uses). */
export interface IdxArray {
  /** Dimensions from the header, outermost first. */
  readonly dims: readonly number[];
  /** The values, row-major. */
  readonly data: Uint8Array;
}

/**
 * Decompress gzip bytes with the platform's streaming `DecompressionStream`. Throws `DATASET` naming `what`
 * when the bytes are not valid gzip.
 *
 * @example
 * ```ts
 * import { gunzip } from "./idx.ts";
 * const gz = new Uint8Array(await new Response(
 *   new Blob([new Uint8Array([1, 2, 3])]).stream().pipeThrough(new CompressionStream("gzip")),
 * ).arrayBuffer());
 * if ((await gunzip(gz, "test")).join() !== "1,2,3") throw new Error("bad");
 * ```
 */
export async function gunzip(bytes: Uint8Array, what: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new QuantlabError("DATASET", `${what}: not a valid gzip file (${(e as Error).message})`, { cause: e });
  }
}

/**
 * True when bytes start with the gzip magic number.
 *
 * @example
 * ```ts
 * import { isGzip } from "./idx.ts";
 * if (!isGzip(new Uint8Array([0x1f, 0x8b, 8])) || isGzip(new Uint8Array([0, 0, 8, 3]))) throw new Error("bad");
 * ```
 */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parse an uncompressed IDX file of unsigned bytes (type code 0x08). Throws `DATASET` naming `what` on a bad
 * magic number, another element type, or a size that disagrees with the header.
 *
 * @example
 * ```ts
 * import { parseIdx } from "./idx.ts";
 * const a = parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]), "labels");
 * if (a.dims.join() !== "3" || a.data[2] !== 9) throw new Error("bad");
 * ```
 */
export function parseIdx(bytes: Uint8Array, what: string): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new QuantlabError("DATASET", `${what}: not an IDX file (bad magic number)`);
  }
  if (bytes[2] !== 0x08) {
    throw new QuantlabError(
      "DATASET",
      `${what}: IDX element type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`,
    );
  }
  const rank = bytes[3];
  const header = 4 + 4 * rank;
  if (rank === 0 || bytes.length < header) throw new QuantlabError("DATASET", `${what}: truncated IDX header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let n = 1;
  for (let i = 0; i < rank; i++) {
    const d = dv.getUint32(4 + 4 * i, false);
    dims.push(d);
    n *= d;
  }
  if (bytes.length - header !== n) {
    throw new QuantlabError(
      "DATASET",
      `${what}: header says ${n} values (dims [${dims}]) but the file holds ${bytes.length - header}`,
    );
  }
  return { dims, data: bytes.subarray(header) };
}

/**
 * SHA-256 of bytes as lowercase hex.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./idx.ts";
 * const h = await sha256Hex(new TextEncoder().encode("abc"));
 * if (!h.startsWith("ba7816bf")) throw new Error(h);
 * ```
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}
