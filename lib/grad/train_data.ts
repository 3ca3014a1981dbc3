/**
 * What the trainer reads from an {@link ImageDataset} (the one labelled-images type, `lib/data/images.ts`): any list
 * of indices gathered into one batch (`x` `[b, C, H, W]` float32 preprocessed as the dataset declares, labels
 * int32), in seeded epoch orders.
 *
 * There is no separate training-set type: the trainer takes the dataset itself, so a model trains, evaluates and
 * calibrates on inputs made by the same code from the same declared preprocessing. Synthetic data is built as
 * bytes with `imageDataset()` (a float tensor has no pixel scale to declare).
 *
 * @module
 */
import { deriveSeed, Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { checkLabel, gatherImages, type ImageDataset } from "../data/images.ts";

/** One gathered batch. */
export interface LabelledBatch {
  /** Images `[b, C, H, W]` float32. */
  readonly x: Tensor<"float32">;
  /** Class ids `[b]` int32. */
  readonly labels: Tensor<"int32">;
}

/**
 * The images and labels at `indices` (in that order) as one training batch: images preprocessed as the dataset
 * declares (exactly what `batches()` yields for them), labels as int32 for the cross-entropy graph. The dataset is
 * checked as `gatherImages` checks it (pixel count against the declared shape) and every gathered label must lie in
 * `[0, classes.length)` (`DATASET` naming the label and the image).
 *
 * @example
 * ```ts
 * import { labelledBatch } from "./train_data.ts";
 * import { imageDataset } from "../data/images.ts";
 * const ds = imageDataset({ name: "toy", pixels: new Uint8Array([0, 255]), labels: new Uint8Array([1, 0]),
 *   height: 1, width: 1 });
 * const b = labelledBatch(ds, [1]);
 * if (b.x.data[0] !== 1 || b.labels.data[0] !== 0 || b.x.shape.join() !== "1,1,1,1") throw new Error("bad");
 * ```
 */
export function labelledBatch(
  ds: ImageDataset,
  indices: ArrayLike<number>,
  tables?: readonly Float32Array[],
): LabelledBatch {
  const x = gatherImages(ds, indices, tables);
  const y = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    y[k] = ds.labels[indices[k]];
    checkLabel(y[k], ds.classes.length, ds.name, indices[k]);
  }
  return { x, labels: new Tensor(y, [indices.length]) };
}

/**
 * The example order of one epoch: a Fisher-Yates shuffle seeded by `(seed, epoch)`, so any epoch's order can be
 * recomputed on its own (resuming needs no generator state).
 *
 * @example
 * ```ts
 * import { epochOrder } from "./train_data.ts";
 * const a = epochOrder(10, 7, 0), b = epochOrder(10, 7, 0), c = epochOrder(10, 7, 1);
 * if (a.join() !== b.join() || a.join() === c.join()) throw new Error("bad");
 * if ([...a].sort((x, y) => x - y).join() !== "0,1,2,3,4,5,6,7,8,9") throw new Error("not a permutation");
 * ```
 */
export function epochOrder(count: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  // The low 32 bits mixed with the epoch as always; the high part of a seed >= 2^32 kept (no truncation).
  const mixed = deriveSeed(seed, (lo) => Math.imul(epoch + 1, 0x9e3779b9) ^ lo, "epoch order seed");
  new Prng(mixed).shuffle(order);
  return order;
}
