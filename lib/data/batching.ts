/**
 * Iterating an {@link ImageDataset} in batches of preprocessed NCHW float32 tensors made on demand, so iterating
 * over all of Fashion-MNIST's 60,000 training images costs one batch of float32 at a time (plus the 47 MB of raw
 * pixels), never the 188 MB of a full float32 copy; views, subsets and seeded stratified splits.
 *
 * The dataset type itself and its preprocessing live in `images.ts` (re-exported here).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";
import type { Tensor } from "../tensor/tensor.ts";
import {
  checkImageDataset,
  checkLabel,
  gatherImages,
  type ImageDataset,
  normalizationTables,
  selectImages,
} from "./images.ts";

export type { ImageDataset, Normalization } from "./images.ts";
export { normalizationTable } from "./images.ts";

/** One batch: images `[b, C, H, W]` float32, labels, and where it starts in the dataset. */
export interface Batch {
  /** Preprocessed images (the dataset's `pixelMax` and normalisation applied). */
  readonly x: Tensor<"float32">;
  /** Labels of the batch. */
  readonly labels: Uint8Array;
  /** Index of the first image in the dataset (or in the shuffled order). */
  readonly start: number;
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
 * Iterate a dataset in batches of preprocessed NCHW float32 tensors: `(p / pixelMax - mean[c]) / std[c]` in
 * float32 (see `images.ts`).
 *
 * @example
 * ```ts
 * import { batches } from "./batching.ts";
 * import { imageDataset } from "./images.ts";
 * const ds = imageDataset({ name: "toy", pixels: new Uint8Array([0, 255, 255, 0, 51, 51, 51, 51]),
 *   labels: new Uint8Array([0, 1]), height: 2, width: 2, classes: ["a", "b"] });
 * const all = [...batches(ds, { batchSize: 1 })];
 * if (all.length !== 2 || all[0].x.shape.join() !== "1,1,2,2" || all[0].x.data[1] !== 1) throw new Error("bad");
 * ```
 */
export function* batches(ds: ImageDataset, options: BatchOptions = {}): Generator<Batch> {
  const bs = options.batchSize ?? 64;
  const start = options.start ?? 0;
  const count = options.count ?? ds.count - start;
  checkImageDataset(ds);
  checkRange(ds, bs, start, count);
  const tables = normalizationTables(ds);
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = start + i;
  if (options.shuffleSeed !== undefined) new Prng(options.shuffleSeed).shuffle(order);
  for (let b = 0; b < count; b += bs) {
    const idx = order.subarray(b, Math.min(count, b + bs));
    const labels = new Uint8Array(idx.length);
    for (let k = 0; k < idx.length; k++) {
      labels[k] = ds.labels[idx[k]];
      checkLabel(labels[k], ds.classes.length, ds.name, idx[k]);
    }
    yield { x: gatherImages(ds, idx, tables), labels, start: b };
  }
}

/** Throws unless `batchSize` is a positive integer and `start..start+count` lies in the dataset. */
function checkRange(ds: ImageDataset, batchSize: number, start: number, count: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `batchSize must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > ds.count) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${ds.name}: range start ${start}, count ${count} is outside 0..${ds.count}`,
    );
  }
}

/**
 * A view of `count` images from `start` (no copy).
 *
 * @example
 * ```ts
 * import { subset } from "./batching.ts";
 * import { imageDataset } from "./images.ts";
 * const ds = imageDataset({ name: "toy", pixels: new Uint8Array(12), labels: new Uint8Array(3), height: 2,
 *   width: 2 });
 * if (subset(ds, 1, 2).count !== 2 || subset(ds, 1, 2).name !== "toy[1:3]") throw new Error("bad");
 * ```
 */
export function subset(ds: ImageDataset, start: number, count: number): ImageDataset {
  checkImageDataset(ds);
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

/**
 * A seeded, stratified train/test split (copies): each class contributes `round(testFraction * classCount)`
 * images to the test set. The parts are named `<name>/train` and `<name>/test` and keep the preprocessing.
 *
 * @example
 * ```ts
 * import { trainTestSplit } from "./batching.ts";
 * import { loadDigits } from "./digits.ts";
 * const { train, test } = trainTestSplit(await loadDigits(), { testFraction: 0.25, seed: 1 });
 * if (train.count + test.count !== 1797 || Math.abs(test.count - 449) > 5) throw new Error("bad");
 * ```
 */
export function trainTestSplit(
  ds: ImageDataset,
  options: { testFraction?: number; seed?: number } = {},
): { train: ImageDataset; test: ImageDataset } {
  const f = options.testFraction ?? 0.2;
  if (!(f > 0 && f < 1)) {
    throw new QuantlabError("INVALID_ARGUMENT", `testFraction must be in (0, 1), got ${f}`);
  }
  const rng = new Prng(options.seed ?? 0);
  const byClass: number[][] = Array.from({ length: ds.classes.length }, () => []);
  checkImageDataset(ds);
  for (let i = 0; i < ds.count; i++) {
    checkLabel(ds.labels[i], ds.classes.length, ds.name, i);
    byClass[ds.labels[i]].push(i);
  }
  const train: number[] = [], test: number[] = [];
  for (const idx of byClass) {
    rng.shuffle(idx);
    const k = Math.floor(f * idx.length + 0.5);
    test.push(...idx.slice(0, k));
    train.push(...idx.slice(k));
  }
  rng.shuffle(train);
  rng.shuffle(test);
  return { train: selectImages(ds, train, `${ds.name}/train`), test: selectImages(ds, test, `${ds.name}/test`) };
}
