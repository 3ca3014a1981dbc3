/**
 * Labelled image sets as the trainer sees them: a count and a way to gather any list of indices into one batch
 * (`x` `[b, C, H, W]` float32, labels int32), plus seeded epoch orders.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type ImageDataset, normalizationTable } from "../data/batching.ts";

/** One gathered batch. */
export interface LabelledBatch {
  /** Images `[b, C, H, W]` float32. */
  readonly x: Tensor<"float32">;
  /** Class ids `[b]` int32. */
  readonly labels: Tensor<"int32">;
}

/** A labelled set the trainer can gather batches from. */
export interface TrainSet {
  /** Name for messages. */
  readonly name: string;
  /** Number of examples. */
  readonly count: number;
  /** Number of classes. */
  readonly classes: number;
  /** Gather the examples at `indices` (in that order) into one batch. */
  batch(indices: ArrayLike<number>): LabelledBatch;
}

function checkIndex(name: string, i: number, count: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= count) {
    throw new QuantlabError("INVALID_ARGUMENT", `${name}: index ${i} is outside 0..${count - 1}`);
  }
}

/**
 * A set over float32 images `[n, ...]` already normalised (e.g. the digits loader's `images`) and labels.
 *
 * @example
 * ```ts
 * import { tensorSet } from "./train_data.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const s = tensorSet(new Tensor(new Float32Array([1, 2, 3, 4]), [4, 1, 1, 1]), new Uint8Array([0, 1, 0, 1]));
 * const b = s.batch([3, 0]);
 * if (b.x.data.join() !== "4,1" || b.labels.data.join() !== "1,0" || s.classes !== 2) throw new Error("bad");
 * ```
 */
export function tensorSet(
  images: Tensor<"float32">,
  labels: Uint8Array | Int32Array,
  options: { name?: string; classes?: number } = {},
): TrainSet {
  const name = options.name ?? "tensor set";
  const n = images.shape[0];
  if (images.rank < 2 || labels.length !== n) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${name}: images [${images.shape}] need a leading batch axis matching ${labels.length} labels`,
    );
  }
  let maxLabel = 0;
  for (let i = 0; i < n; i++) maxLabel = Math.max(maxLabel, labels[i]);
  const classes = options.classes ?? maxLabel + 1;
  const per = images.size / Math.max(1, n);
  const rest = images.shape.slice(1);
  return {
    name,
    count: n,
    classes,
    batch(indices) {
      const b = indices.length;
      const x = new Float32Array(b * per);
      const y = new Int32Array(b);
      for (let k = 0; k < b; k++) {
        const i = indices[k];
        checkIndex(name, i, n);
        x.set(images.data.subarray(i * per, (i + 1) * per), k * per);
        y[k] = labels[i];
      }
      return { x: new Tensor(x, [b, ...rest]), labels: new Tensor(y, [b]) };
    },
  };
}

/**
 * A set over a byte-image dataset (`lib/data/batching.ts`, e.g. Fashion-MNIST), normalised on the fly with the
 * dataset's mean and std exactly as `batches()` does.
 *
 * @example
 * ```ts
 * import { imageSet } from "./train_data.ts";
 * const s = imageSet({ name: "toy", pixels: new Uint8Array([0, 255]), labels: new Uint8Array([1, 0]), count: 2,
 *   channels: 1, height: 1, width: 1, mean: 0, std: 1, classes: ["a", "b"] });
 * const b = s.batch([1]);
 * if (b.x.data[0] !== 1 || b.labels.data[0] !== 0 || s.classes !== 2) throw new Error("bad");
 * ```
 */
export function imageSet(ds: ImageDataset): TrainSet {
  const lut = normalizationTable(ds.mean, ds.std);
  const per = ds.channels * ds.height * ds.width;
  return {
    name: ds.name,
    count: ds.count,
    classes: ds.classes.length,
    batch(indices) {
      const b = indices.length;
      const x = new Float32Array(b * per);
      const y = new Int32Array(b);
      for (let k = 0; k < b; k++) {
        const i = indices[k];
        checkIndex(ds.name, i, ds.count);
        const src = ds.pixels.subarray(i * per, (i + 1) * per);
        const off = k * per;
        for (let j = 0; j < per; j++) x[off + j] = lut[src[j]];
        y[k] = ds.labels[i];
      }
      return { x: new Tensor(x, [b, ds.channels, ds.height, ds.width]), labels: new Tensor(y, [b]) };
    },
  };
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
  const mixed = (Math.imul(epoch + 1, 0x9e3779b9) ^ (seed >>> 0)) >>> 0;
  new Prng(mixed).shuffle(order);
  return order;
}
