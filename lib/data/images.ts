/**
 * The one labelled-images type of quantlab, {@link ImageDataset}: raw pixel values as bytes (CHW per image), labels,
 * and the preprocessing the model expects, declared on the dataset so every consumer (PTQ evaluation and
 * calibration, the trainer, ZeroQ, the experiments) turns pixels into the same float32 inputs:
 *
 * ```
 * x = (p / pixelMax - mean[c]) / std[c]      (float32 at every step; without normalization: x = p / pixelMax)
 * ```
 *
 * Bytes, not floats, because they are what the files hold (IDX, the digits CSV) and a quarter of the memory:
 * Fashion-MNIST's 60,000 training images are 47 MB of bytes against 188 MB of float32. Batches are made on
 * demand through one 256-entry lookup table per channel ({@link normalizationTables}), which is also what makes
 * the result bit-identical to NumPy's float32 pipeline `((p / 255).astype(float32) - mean) / std`.
 *
 * Validation: {@link imageDataset} checks every size and label once (`SHAPE_MISMATCH` with the pixel and image
 * counts, `DATASET` naming the first label outside `[0, classes)`); every consumer that reads pixels or labels
 * (`gatherImages`, `batches`, the trainer's `labelledBatch`) checks a dataset built by hand or spread from another
 * in O(1) with {@link checkImageDataset} and the labels it gathers with {@link checkLabel}, so a pixel array shorter
 * than its declared shape or an out-of-range label is a typed error, never NaN images or a silently wrapped class.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";

/** A model's input normalisation: one mean and one standard deviation per channel (of `p / pixelMax`). */
export interface Normalization {
  /** Per-channel mean, one per channel. */
  readonly mean: readonly number[];
  /** Per-channel standard deviation, one per channel (non-zero). */
  readonly std: readonly number[];
}

/** Labelled images stored as unsigned bytes, CHW per image, with the model's preprocessing declared on them. */
export interface ImageDataset {
  /** Name for messages and reader identities, e.g. `"fashion-mnist/test"`. */
  readonly name: string;
  /** Raw pixel values, `count * channels * height * width` bytes (CHW per image). */
  readonly pixels: Uint8Array;
  /** One label per image, `0 .. classes.length - 1`. */
  readonly labels: Uint8Array;
  /** Number of images. */
  readonly count: number;
  /** Channels per image. */
  readonly channels: number;
  /** Image height. */
  readonly height: number;
  /** Image width. */
  readonly width: number;
  /** The pixel value of full intensity: images are `p / pixelMax` before normalisation (255 for IDX bytes, 16 for the digits). */
  readonly pixelMax: number;
  /** The model's normalisation `(p / pixelMax - mean[c]) / std[c]`; absent: none (`x = p / pixelMax`). */
  readonly normalization?: Normalization;
  /** Class names, index = label. */
  readonly classes: readonly string[];
}

/** What {@link imageDataset} builds a dataset from (`count` is the number of labels). */
export interface ImageDatasetSpec {
  /** Name for messages. */
  readonly name: string;
  /** Raw pixels, CHW per image. */
  readonly pixels: Uint8Array;
  /** One label per image. */
  readonly labels: Uint8Array;
  /** Channels per image (default 1). */
  readonly channels?: number;
  /** Image height. */
  readonly height: number;
  /** Image width. */
  readonly width: number;
  /** Pixel value of full intensity (default 255). */
  readonly pixelMax?: number;
  /** Per-channel normalisation (a single number applies to every channel); default none. */
  readonly normalization?: NormalizationSpec;
  /** Class names (default `"0"`, `"1"`, ... up to the largest label). */
  readonly classes?: readonly string[];
}

/** A {@link Normalization}, where a single number stands for the same value on every channel. */
export interface NormalizationSpec {
  /** Mean per channel, or one for all. */
  readonly mean: number | readonly number[];
  /** Standard deviation per channel, or one for all. */
  readonly std: number | readonly number[];
}

function perChannel(name: string, what: string, v: number | readonly number[], channels: number): number[] {
  const arr = typeof v === "number" ? Array(channels).fill(v) : Array.isArray(v) ? [...v] : undefined;
  if (!arr || arr.length !== channels || !arr.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${name}: normalization ${what} must be ${channels} finite number(s), one per channel, got ${JSON.stringify(v)}`,
    );
  }
  if (what === "std" && arr.some((x) => x === 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", `${name}: normalization std must be non-zero, got [${arr}]`);
  }
  return arr;
}

function normalizationFor(name: string, spec: NormalizationSpec, channels: number): Normalization {
  if (typeof spec !== "object" || spec === null) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${name}: normalization must be { mean, std } (numbers or one per channel), got ${String(spec)}`,
    );
  }
  return Object.freeze({
    mean: Object.freeze(perChannel(name, "mean", spec.mean, channels)),
    std: Object.freeze(perChannel(name, "std", spec.std, channels)),
  });
}

function checkPixelMax(name: string, pixelMax: number): void {
  if (!(Number.isFinite(pixelMax) && pixelMax > 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", `${name}: pixelMax must be a positive number, got ${pixelMax}`);
  }
}

/**
 * Build an {@link ImageDataset}, checking sizes, labels and the preprocessing.
 *
 * @example Three-channel toy set with per-channel normalisation
 * ```ts
 * import { imageDataset } from "./images.ts";
 * const ds = imageDataset({ name: "rgb", pixels: new Uint8Array(2 * 3 * 4), labels: new Uint8Array([0, 1]),
 *   channels: 3, height: 2, width: 2, normalization: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2] } });
 * if (ds.count !== 2 || ds.pixelMax !== 255 || ds.classes.join() !== "0,1") throw new Error("bad");
 * ```
 */
export function imageDataset(spec: ImageDatasetSpec): ImageDataset {
  const name = spec.name;
  const channels = spec.channels ?? 1;
  const { height, width, pixels, labels } = spec;
  for (const [k, v] of [["channels", channels], ["height", height], ["width", width]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `${name}: ${k} must be a positive integer, got ${v}`);
    }
  }
  if (!(pixels instanceof Uint8Array) || !(labels instanceof Uint8Array)) {
    throw new QuantlabError("INVALID_ARGUMENT", `${name}: pixels and labels must be Uint8Arrays`);
  }
  const count = labels.length;
  const per = channels * height * width;
  if (pixels.length !== count * per) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${name}: ${pixels.length} pixels for ${count} labels of [${channels}, ${height}, ${width}] images ` +
        `(expected ${count * per})`,
    );
  }
  const pixelMax = spec.pixelMax ?? 255;
  checkPixelMax(name, pixelMax);
  let maxLabel = -1;
  for (let i = 0; i < count; i++) maxLabel = Math.max(maxLabel, labels[i]);
  const classes = spec.classes ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  if (!Array.isArray(classes) || classes.length < 1) {
    throw new QuantlabError("DATASET", `${name}: classes must be a non-empty array of names`);
  }
  if (maxLabel >= classes.length) {
    const at = labels.findIndex((l) => l >= classes.length);
    const bad = labels.reduce((n, l) => n + (l >= classes.length ? 1 : 0), 0);
    throw new QuantlabError(
      "DATASET",
      `${name}: label ${labels[at]} but only ${classes.length} class names (first at image ${at}; ${bad} of ${count} ` +
        `labels outside [0, ${classes.length}))`,
    );
  }
  return {
    name,
    pixels,
    labels,
    count,
    channels,
    height,
    width,
    pixelMax,
    ...(spec.normalization ? { normalization: normalizationFor(name, spec.normalization, channels) } : {}),
    classes,
  };
}

/**
 * A view of `ds` (pixels and labels shared, no copy) with other preprocessing: e.g. a model trained with its own
 * constants, or `null` for none (`x = p / pixelMax`).
 *
 * @example A model trained on Fashion-MNIST scaled to [-1, 1]
 * ```ts
 * import { imageDataset, withNormalization } from "./images.ts";
 * const ds = imageDataset({ name: "toy", pixels: new Uint8Array([0, 255]), labels: new Uint8Array([0, 1]),
 *   height: 1, width: 1 });
 * const v = withNormalization(ds, { mean: [0.5], std: [0.5] });
 * if (v.pixels !== ds.pixels || v.normalization?.std[0] !== 0.5 || ds.normalization) throw new Error("bad");
 * ```
 */
export function withNormalization(ds: ImageDataset, normalization: NormalizationSpec | null): ImageDataset {
  const { normalization: _old, ...rest } = ds;
  return normalization === null
    ? rest
    : { ...rest, normalization: normalizationFor(ds.name, normalization, ds.channels) };
}

/**
 * The 256-entry lookup table of normalised pixel values `(p / pixelMax - mean) / std`, computed in float32 at every
 * step like NumPy's float32 pipeline.
 *
 * @example
 * ```ts
 * import { normalizationTable } from "./images.ts";
 * const lut = normalizationTable(0.5, 0.5);
 * if (lut.length !== 256 || lut[0] !== -1 || Math.abs(lut[255] - 1) > 1e-6) throw new Error("bad");
 * ```
 */
export function normalizationTable(mean: number, std: number, pixelMax = 255): Float32Array {
  const f = Math.fround;
  const m = f(mean), s = f(std);
  const lut = new Float32Array(256);
  for (let p = 0; p < 256; p++) lut[p] = f(f(f(p / pixelMax) - m) / s);
  return lut;
}

/**
 * One lookup table per channel for `ds`'s preprocessing (a plain `p / pixelMax` table without normalisation).
 *
 * @example
 * ```ts
 * import { imageDataset, normalizationTables } from "./images.ts";
 * const ds = imageDataset({ name: "d", pixels: new Uint8Array(2), labels: new Uint8Array(1), channels: 2,
 *   height: 1, width: 1, pixelMax: 16, normalization: { mean: [0, 1], std: [1, 2] } });
 * const [a, b] = normalizationTables(ds);
 * if (a[8] !== 0.5 || b[8] !== -0.25) throw new Error("bad");
 * ```
 */
export function normalizationTables(ds: ImageDataset): Float32Array[] {
  checkPixelMax(ds.name, ds.pixelMax);
  const n = ds.normalization;
  if (n && (n.mean.length !== ds.channels || n.std.length !== ds.channels)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${ds.name}: normalization has ${n.mean.length} means and ${n.std.length} stds for ${ds.channels} channel(s)`,
    );
  }
  const tables: Float32Array[] = [];
  for (let c = 0; c < ds.channels; c++) {
    if (!n) {
      const lut = new Float32Array(256);
      for (let p = 0; p < 256; p++) lut[p] = p / ds.pixelMax;
      tables.push(lut);
    } else tables.push(normalizationTable(n.mean[c], n.std[c], ds.pixelMax));
  }
  return tables;
}

/**
 * The preprocessing of `ds` as text, e.g. `"p/255 (mean [0.286], std [0.353])"`; part of reader identities.
 *
 * @example
 * ```ts
 * import { describePreprocessing, imageDataset } from "./images.ts";
 * const ds = imageDataset({ name: "d", pixels: new Uint8Array(1), labels: new Uint8Array(1), height: 1, width: 1,
 *   pixelMax: 16 });
 * if (describePreprocessing(ds) !== "p/16") throw new Error(describePreprocessing(ds));
 * ```
 */
export function describePreprocessing(ds: ImageDataset): string {
  const n = ds.normalization;
  return n ? `p/${ds.pixelMax} (mean [${n.mean}], std [${n.std}])` : `p/${ds.pixelMax}`;
}

/**
 * Check the structure of a dataset in O(1) (consumers call it, so one built by hand or spread from another with a
 * shorter pixel array fails here): positive integer sizes, Uint8Array pixels and labels, `labels.length === count`,
 * `pixels.length === count * channels * height * width`, at least one class. Throws `SHAPE_MISMATCH` with the
 * counts or `DATASET`. Labels themselves are checked as they are read ({@link checkLabel}).
 *
 * @example
 * ```ts
 * import { checkImageDataset, imageDataset } from "./images.ts";
 * const ds = imageDataset({ name: "d", pixels: new Uint8Array(8), labels: new Uint8Array(2), height: 2, width: 2 });
 * checkImageDataset(ds); // passes
 * try {
 *   checkImageDataset({ ...ds, pixels: ds.pixels.subarray(0, 5) });
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("5 pixels")) throw e;
 * }
 * ```
 */
export function checkImageDataset(ds: ImageDataset): void {
  if (ds === null || typeof ds !== "object") {
    throw new QuantlabError("DATASET", `expected an ImageDataset, got ${String(ds)}`);
  }
  const name = ds.name;
  const { count, channels, height, width, pixels, labels } = ds;
  for (const [k, v] of [["count", count], ["channels", channels], ["height", height], ["width", width]] as const) {
    if (!Number.isSafeInteger(v) || v < (k === "count" ? 0 : 1)) {
      throw new QuantlabError(
        "DATASET",
        `${name}: ${k} must be a ${k === "count" ? "non-negative" : "positive"} integer, got ${v}`,
      );
    }
  }
  if (!(pixels instanceof Uint8Array) || !(labels instanceof Uint8Array)) {
    throw new QuantlabError("DATASET", `${name}: pixels and labels must be Uint8Arrays`);
  }
  if (labels.length !== count) {
    throw new QuantlabError("SHAPE_MISMATCH", `${name}: ${labels.length} labels for count = ${count} images`);
  }
  const per = channels * height * width;
  if (pixels.length !== count * per) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${name}: ${pixels.length} pixels for ${count} images of [${channels}, ${height}, ${width}] ` +
        `(expected ${count * per})`,
    );
  }
  if (!Array.isArray(ds.classes) || ds.classes.length < 1) {
    throw new QuantlabError("DATASET", `${name}: classes must be a non-empty array of names`);
  }
}

/**
 * Throw `DATASET` unless `label` (of image `index` of dataset `name`) is an integer in `[0, classes)`.
 *
 * @example
 * ```ts
 * import { checkLabel } from "./images.ts";
 * checkLabel(3, 10, "d", 0); // passes
 * try {
 *   checkLabel(-1, 10, "d", 7);
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("label -1 at image 7")) throw e;
 * }
 * ```
 */
export function checkLabel(label: number, classes: number, name: string, index: number): void {
  if (!(Number.isInteger(label) && label >= 0 && label < classes)) {
    throw new QuantlabError("DATASET", `${name}: label ${label} at image ${index} is outside [0, ${classes})`);
  }
}

function checkIndex(ds: ImageDataset, i: number, k: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${ds.name}: index ${i} at position ${k} is outside 0..${ds.count - 1}`,
    );
  }
}

/**
 * The images at `indices` (default: all), in that order, preprocessed to an NCHW float32 tensor.
 *
 * @example
 * ```ts
 * import { gatherImages, imageDataset } from "./images.ts";
 * const ds = imageDataset({ name: "d", pixels: new Uint8Array([0, 16, 8]), labels: new Uint8Array(3), height: 1,
 *   width: 1, pixelMax: 16 });
 * const x = gatherImages(ds, [2, 1]);
 * if (x.shape.join() !== "2,1,1,1" || x.data.join() !== "0.5,1") throw new Error("bad");
 * ```
 */
export function gatherImages(
  ds: ImageDataset,
  indices?: ArrayLike<number>,
  tables: readonly Float32Array[] = normalizationTables(ds),
): Tensor<"float32"> {
  checkImageDataset(ds);
  const hw = ds.height * ds.width, per = ds.channels * hw;
  const n = indices ? indices.length : ds.count;
  const x = new Float32Array(n * per);
  for (let k = 0; k < n; k++) {
    const i = indices ? indices[k] : k;
    if (indices) checkIndex(ds, i, k);
    let src = i * per, dst = k * per;
    for (let c = 0; c < ds.channels; c++) {
      const lut = tables[c];
      for (let j = 0; j < hw; j++) x[dst++] = lut[ds.pixels[src++]];
    }
  }
  return new Tensor(x, [n, ds.channels, ds.height, ds.width]);
}

/**
 * A copy of the images at `indices`, in that order, with the same preprocessing.
 *
 * @example
 * ```ts
 * import { imageDataset, selectImages } from "./images.ts";
 * const ds = imageDataset({ name: "d", pixels: new Uint8Array([5, 6, 7]), labels: new Uint8Array([0, 1, 2]),
 *   height: 1, width: 1 });
 * const s = selectImages(ds, [2, 0]);
 * if (s.pixels.join() !== "7,5" || s.labels.join() !== "2,0" || s.count !== 2) throw new Error("bad");
 * ```
 */
export function selectImages(ds: ImageDataset, indices: ArrayLike<number>, name?: string): ImageDataset {
  checkImageDataset(ds);
  const per = ds.channels * ds.height * ds.width;
  const pixels = new Uint8Array(indices.length * per);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    checkIndex(ds, i, k);
    pixels.set(ds.pixels.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = ds.labels[i];
  }
  return { ...ds, name: name ?? `${ds.name}[${indices.length} selected]`, pixels, labels, count: indices.length };
}

/**
 * Whether a value is an {@link ImageDataset} (structural check, so readers and pipelines give typed errors for
 * anything else).
 *
 * @example
 * ```ts
 * import { imageDataset, isImageDataset } from "./images.ts";
 * const ds = imageDataset({ name: "toy", pixels: new Uint8Array(4), labels: new Uint8Array(1), height: 2, width: 2 });
 * if (!isImageDataset(ds) || isImageDataset({ pixels: [] })) throw new Error("bad");
 * ```
 */
export function isImageDataset(x: unknown): x is ImageDataset {
  if (typeof x !== "object" || x === null) return false;
  const d = x as Record<string, unknown>;
  return d.pixels instanceof Uint8Array && d.labels instanceof Uint8Array && typeof d.channels === "number" &&
    typeof d.height === "number" && typeof d.width === "number" && typeof d.pixelMax === "number";
}
