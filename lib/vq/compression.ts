/**
 * Compression accounting for vector quantization, in bits: the codes (`log2 K` bits per index, the
 * information content; byte-aligned storage uses `ceil(log2 K)` and is reported too) plus the codebooks
 * (float32 by default), against float32 weights.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** Bits of a vector-quantized tensor. */
export interface CompressionReport {
  /** Quantized scalars (weights) covered: `vectors * dimension`. */
  readonly weights: number;
  /** Index bits: `vectors * M * log2(K)`. */
  readonly codeBits: number;
  /** Codebook bits: `M * K * dsub * codebookBits`. */
  readonly codebookBits: number;
  /** `codeBits + codebookBits`. */
  readonly totalBits: number;
  /** `totalBits / weights`. */
  readonly bitsPerWeight: number;
  /** Float32 size over compressed size: `32 * weights / totalBits`. */
  readonly ratio: number;
  /** Same total with each index stored in `ceil(log2 K)` bits. */
  readonly storedBits: number;
}

/** What {@link pqCompression} counts. */
export interface PqShape {
  /** Number of encoded vectors `n`. */
  readonly vectors: number;
  /** Sub-vectors per vector `M` (1 for plain k-means). */
  readonly subvectors: number;
  /** Centroids per codebook `K`. */
  readonly centroids: number;
  /** Vector dimension `d` (`M * dsub`). */
  readonly dimension: number;
  /** Bits per codebook entry (default 32). */
  readonly codebookBits?: number;
}

/**
 * Bits of `n` vectors product-quantized with `M` codebooks of `K` centroids (k-means: `M = 1`).
 *
 * @example
 * ```ts
 * import { pqCompression } from "./compression.ts";
 * const r = pqCompression({ vectors: 1000, subvectors: 8, centroids: 256, dimension: 64 });
 * // codes 1000*8*8 = 64000 bits, codebooks 8*256*8*32 = 524288 bits
 * if (r.codeBits !== 64000 || r.codebookBits !== 524288) throw new Error("bad");
 * if (Math.abs(r.bitsPerWeight - 588288 / 64000) > 1e-12) throw new Error("bad bits per weight");
 * ```
 */
export function pqCompression(shape: PqShape): CompressionReport {
  const { vectors: n, subvectors: M, centroids: K, dimension: d } = shape;
  const cbBits = shape.codebookBits ?? 32;
  for (const [name, v] of [["vectors", n], ["subvectors", M], ["centroids", K], ["dimension", d]] as const) {
    if (!Number.isInteger(v) || v < (name === "vectors" ? 0 : 1)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${name} must be a ${name === "vectors" ? "non-negative" : "positive"} integer, got ${v}`,
      );
    }
  }
  if (d % M !== 0) {
    throw new QuantlabError("SHAPE_MISMATCH", `subvectors (M = ${M}) must divide the dimension (d = ${d})`);
  }
  if (!(cbBits > 0)) throw new QuantlabError("INVALID_ARGUMENT", `codebookBits must be positive, got ${cbBits}`);
  const weights = n * d;
  const codeBits = n * M * Math.log2(K);
  const codebookBits = K * d * cbBits;
  const totalBits = codeBits + codebookBits;
  const storedBits = n * M * Math.ceil(Math.log2(K)) + codebookBits;
  return {
    weights,
    codeBits,
    codebookBits,
    totalBits,
    bitsPerWeight: weights > 0 ? totalBits / weights : Infinity,
    ratio: totalBits > 0 ? (32 * weights) / totalBits : 0,
    storedBits,
  };
}
