/**
 * Image datasets held as raw bytes and batched to normalised NCHW float32 tensors on demand, so iterating
 * over all of Fashion-MNIST's 60,000 training images costs one batch of float32 at a time (plus the 47 MB of
 * raw pixels), never the 188 MB of a full float32 copy.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";

/** Labelled images stored as unsigned bytes, HWC per image (C = 1 for grey-scale). */
export interface ImageDataset {
  /** Name for messages, e.g. `"fashion-mnist/test"`. */
  readonly name: string;
  /** Pixels, `count * channels * height * width` bytes (CHW per image). */
  readonly pixels: Uint8Array;
  /** One label per image. */
  readonly labels: Uint8Array;
  /** Number of images. */
  readonly count: number;
  /** Channels per image. */
  readonly channels: number;
  /** Image height. */
  readonly height: number;
  /** Image width. */
  readonly width: number;
  /** Per-dataset normalisation applied when batching: `(p / 255 - mean) / std` in float32. */
  readonly mean: number;
  /** See `mean`. */
  readonly std: number;
  /** Class names, index = label. */
  readonly classes: readonly string[];
}

/** One batch: images `[b, C, H, W]` float32, labels, and where it starts in the dataset. */
export interface Batch {
  /** Normalised images. */
  readonly x: Tensor<"float32">;
  /** Labels of the batch. */
  readonly labels: Uint8Array;
  /** Index of the first image in the dataset (or in the shuffled order). */
  readonly start: number;
}

/**
 * The 256-entry lookup table of normalised pixel values, computed in float32 like NumPy's float32 pipeline.
 *
 * @example
 * ```ts
 * import { normalizationTable } from "./batching.ts";
 * const lut = normalizationTable(0.5, 0.5);
 * if (lut.length !== 256 || lut[0] !== -1 || Math.abs(lut[255] - 1) > 1e-6) throw new Error("bad");
 * ```
 */
export function normalizationTable(mean: number, std: number): Float32Array {
  const f = Math.fround;
  const m = f(mean), s = f(std);
  const lut = new Float32Array(256);
  for (let p = 0; p < 256; p++) lut[p] = f(f(f(p / 255) - m) / s);
  return lut;
}

/** Options for {@link batches}. */
export interface BatchOptions {
  /** Images per batch (default 64). The last batch may be smaller. */
  batchSize?: number;
  /** First image (default 0). */
  start?: number;
  /** Number of images (default: to the end). */
  count?: number;
  /** Shuffle with this seed (default: dataset order). */
  shuffleSeed?: number;
}

/**
 * Iterate a dataset in batches of normalised NCHW float32 tensors.
 *
 * @example
 * ```ts
 * import { batches, type ImageDataset } from "./batching.ts";
 * const ds: ImageDataset = { name: "toy", pixels: new Uint8Array([0, 255, 255, 0, 51, 51, 51, 51]),
 *   labels: new Uint8Array([0, 1]), count: 2, channels: 1, height: 2, width: 2, mean: 0, std: 1, classes: ["a", "b"] };
 * const all = [...batches(ds, { batchSize: 1 })];
 * if (all.length !== 2 || all[0].x.shape.join() !== "1,1,2,2" || all[0].x.data[1] !== 1) throw new Error("bad");
 * ```
 */
export function* batches(ds: ImageDataset, options: BatchOptions = {}): Generator<Batch> {
  const bs = options.batchSize ?? 64;
  const start = options.start ?? 0;
  const count = options.count ?? ds.count - start;
  if (!Number.isInteger(bs) || bs < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `batchSize must be a positive integer, got ${bs}`);
  }
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > ds.count) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${ds.name}: range start ${start}, count ${count} is outside 0..${ds.count}`,
    );
  }
  const lut = normalizationTable(ds.mean, ds.std);
  const per = ds.channels * ds.height * ds.width;
  let order: Uint32Array | undefined;
  if (options.shuffleSeed !== undefined) {
    order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[i] = start + i;
    new Prng(options.shuffleSeed).shuffle(order);
  }
  for (let b = 0; b < count; b += bs) {
    const n = Math.min(bs, count - b);
    const x = new Float32Array(n * per);
    const labels = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      const idx = order ? order[b + k] : start + b + k;
      const src = ds.pixels.subarray(idx * per, idx * per + per);
      const off = k * per;
      for (let j = 0; j < per; j++) x[off + j] = lut[src[j]];
      labels[k] = ds.labels[idx];
    }
    yield { x: new Tensor(x, [n, ds.channels, ds.height, ds.width]), labels, start: b };
  }
}

/**
 * A view of `count` images from `start` (no copy).
 *
 * @example
 * ```ts
 * import { subset, type ImageDataset } from "./batching.ts";
 * const ds: ImageDataset = { name: "toy", pixels: new Uint8Array(12), labels: new Uint8Array(3), count: 3,
 *   channels: 1, height: 2, width: 2, mean: 0, std: 1, classes: [] };
 * if (subset(ds, 1, 2).count !== 2) throw new Error("bad");
 * ```
 */
export function subset(ds: ImageDataset, start: number, count: number): ImageDataset {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > ds.count) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${ds.name}: subset start ${start}, count ${count} is outside 0..${ds.count}`,
    );
  }
  const per = ds.channels * ds.height * ds.width;
  return {
    ...ds,
    name: `${ds.name}[${start}:${start + count}]`,
    pixels: ds.pixels.subarray(start * per, (start + count) * per),
    labels: ds.labels.subarray(start, start + count),
    count,
  };
}
