/**
 * The calibration-reader protocol: what every consumer of unlabelled model inputs takes (calibration, bias
 * correction, sensitivity analysis, output comparison). A reader names the model inputs it feeds and yields
 * batches as `{ inputName: tensor }` records, so models with several inputs calibrate like single-input ones.
 * Its `identity` names the data for caches: two readers with the same identity yield the same batches.
 *
 * Readers are re-iterable: every call of `batches()` starts again from the first batch.
 *
 * Sources: {@link readerFromDataset} (an {@link ImageDataset} with its preprocessing), {@link readerFromTensors}
 * (arrays split along axis 0), {@link readerFromNpy} (NumPy `.npy` files), {@link readerFromFeeds} (batches in
 * memory); {@link asReader} turns whatever a user passed into a reader or a typed error saying what is expected.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { Tensor } from "../tensor/tensor.ts";
import { batches, subset } from "./batching.ts";
import { describePreprocessing, type ImageDataset, isImageDataset } from "./images.ts";
import { parseNpy } from "./npy.ts";

/** One batch of model inputs by input name. */
export type InputFeeds = Readonly<Record<string, Tensor>>;

/** A re-iterable source of input batches for one model. */
export interface InputReader {
  /** Name for messages, e.g. `"fashion-mnist/train[0:1024]"`. */
  readonly name: string;
  /** A string that names exactly these batches (data + preprocessing + range + batch size), for caches. */
  readonly identity: string;
  /** The model inputs each batch feeds. */
  readonly inputs: readonly string[];
  /** The batches, from the first, every time it is called. */
  batches(): AsyncIterable<InputFeeds> | Iterable<InputFeeds>;
}

/**
 * A reader over batches already in memory.
 *
 * @example
 * ```ts
 * import { readerFromFeeds } from "./reader.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const r = readerFromFeeds([{ x: Tensor.from([1, 2], [1, 2]) }], { name: "two numbers" });
 * let n = 0;
 * for (const b of r.batches() as Iterable<Record<string, unknown>>) n += b.x ? 1 : 0;
 * if (n !== 1 || r.inputs.join() !== "x") throw new Error("bad");
 * ```
 */
export function readerFromFeeds(
  feeds: readonly InputFeeds[],
  options: { name?: string; identity?: string } = {},
): InputReader {
  if (!Array.isArray(feeds) || feeds.length === 0) {
    throw new QuantlabError("EMPTY_TENSOR", `${options.name ?? "feeds"}: a reader needs at least one batch`);
  }
  const inputs = Object.keys(feeds[0]).sort();
  feeds.forEach((f, i) => {
    const keys = Object.keys(f).sort();
    if (keys.join("\u0000") !== inputs.join("\u0000")) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${options.name ?? "feeds"}: batch ${i} feeds [${keys}] but batch 0 feeds [${inputs}]`,
      );
    }
  });
  const name = options.name ?? `${feeds.length} in-memory batches`;
  // Content identity: equal batches (even in a new array) give equal identities, so caches keyed on it hit.
  return lazyReader(
    name,
    inputs,
    () =>
      options.identity ??
        `feeds:${inputs.join(",")}:${
          feeds.map((f) => inputs.map((k) => `${f[k].shape.join("x")}#${tensorFingerprint(f[k].data)}`).join("+"))
            .join("|")
        }`,
    () => feeds,
  );
}

const fingerprints = new WeakMap<ArrayBufferView, string>();
/** Fingerprint of one typed array, cached per array object. */
function tensorFingerprint(data: ArrayBufferView): string {
  let f = fingerprints.get(data);
  if (f === undefined) fingerprints.set(data, f = fingerprint([data]));
  return f;
}

/**
 * Whether a value implements {@link InputReader}.
 *
 * @example
 * ```ts
 * import { isInputReader } from "./reader.ts";
 * if (isInputReader({}) || isInputReader([1])) throw new Error("bad");
 * ```
 */
export function isInputReader(x: unknown): x is InputReader {
  if (typeof x !== "object" || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r.batches === "function" && Array.isArray(r.inputs) && typeof r.identity === "string";
}

/** Content fingerprint (two FNV-1a lanes over the bytes, plus the length) for reader identities. */
function fingerprint(parts: readonly ArrayBufferView[]): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193 ^ 0x5bd1e995, len = 0;
  for (const p of parts) {
    const b = new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
    len += b.length;
    for (let i = 0; i < b.length; i++) {
      h1 = Math.imul(h1 ^ b[i], 0x01000193);
      h2 = Math.imul(h2 ^ b[i], 0x5bd1e995) ^ (h2 >>> 15);
    }
  }
  return `${len}:${(h1 >>> 0).toString(16).padStart(8, "0")}${(h2 >>> 0).toString(16).padStart(8, "0")}`;
}

function checkBatchSize(name: string, bs: number): void {
  if (!Number.isInteger(bs) || bs < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `${name}: batchSize must be a positive integer, got ${bs}`);
  }
}

/** A reader whose identity is computed on first use (fingerprints read all the data once). */
function lazyReader(
  name: string,
  inputs: readonly string[],
  identity: () => string,
  batches: () => Iterable<InputFeeds> | AsyncIterable<InputFeeds>,
): InputReader {
  let id: string | undefined;
  return {
    name,
    get identity() {
      return id ??= identity();
    },
    inputs,
    batches,
  };
}

/** Options of {@link readerFromDataset}. */
export interface DatasetReaderOptions {
  /** The model input the images feed (e.g. `"input"`). */
  readonly input: string;
  /** Images per batch (default 64; the last batch may be smaller). */
  readonly batchSize?: number;
  /** First image (default 0). */
  readonly start?: number;
  /** Number of images (default: to the end). */
  readonly count?: number;
}

/**
 * A reader over an {@link ImageDataset}'s images, preprocessed as the dataset declares (`pixelMax`, per-channel
 * normalisation), in dataset order. The identity names the dataset, its preprocessing, the range, the batch size,
 * the input and a fingerprint of the pixels in the range.
 *
 * @example
 * ```ts
 * import { readerFromDataset } from "./reader.ts";
 * import { imageDataset } from "./images.ts";
 * const ds = imageDataset({ name: "toy", pixels: new Uint8Array([0, 64, 128, 255]), labels: new Uint8Array(4),
 *   height: 1, width: 1, normalization: { mean: 0.5, std: 0.5 } });
 * const r = readerFromDataset(ds, { input: "x", batchSize: 2, start: 1, count: 3 });
 * const sizes = [...r.batches() as Iterable<Record<string, { shape: number[] }>>].map((b) => b.x.shape[0]);
 * if (sizes.join() !== "2,1" || !r.identity.includes("toy") || !r.identity.includes("[1:4]")) throw new Error("bad");
 * ```
 */
export function readerFromDataset(ds: ImageDataset, options: DatasetReaderOptions): InputReader {
  const input = options?.input;
  if (typeof input !== "string" || input === "") {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `readerFromDataset(${ds.name}): options.input must name the model input the images feed`,
    );
  }
  const bs = options.batchSize ?? 64;
  checkBatchSize(ds.name, bs);
  const start = options.start ?? 0;
  const count = options.count ?? ds.count - start;
  const view = subset(ds, start, count); // validates the range
  const per = ds.channels * ds.height * ds.width;
  return lazyReader(
    start === 0 && count === ds.count ? ds.name : view.name,
    [input],
    () =>
      `dataset:${ds.name}|${ds.channels}x${ds.height}x${ds.width}|${describePreprocessing(ds)}|` +
      `[${start}:${start + count}]|batch ${bs}|${input}|${fingerprint([view.pixels.subarray(0, count * per)])}`,
    function* () {
      for (const b of batches(view, { batchSize: bs })) yield { [input]: b.x };
    },
  );
}

/** An array and its shape, for {@link readerFromTensors}. */
export type ArrayWithShape = Tensor<"float32"> | { readonly data: Float32Array; readonly shape: readonly number[] };

/** Options of {@link readerFromTensors} and {@link readerFromNpy}. */
export interface ArrayReaderOptions {
  /** Rows (along axis 0) per batch (default 64; the last batch may be smaller). */
  readonly batchSize?: number;
  /** Name for messages. */
  readonly name?: string;
}

/**
 * A reader over float32 arrays, one per model input, split along axis 0 into batches (all arrays need the same
 * length along axis 0). The identity fingerprints the values, so equal data gives equal identities.
 *
 * @example Two inputs, five rows, batches of two
 * ```ts
 * import { readerFromTensors } from "./reader.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const r = readerFromTensors({
 *   a: new Tensor(new Float32Array(10), [5, 2]),
 *   b: { data: new Float32Array(15), shape: [5, 3] },
 * }, { batchSize: 2 });
 * const got = [...r.batches() as Iterable<Record<string, Tensor>>].map((f) => `${f.a.shape}|${f.b.shape}`);
 * if (got.join(" ") !== "2,2|2,3 2,2|2,3 1,2|1,3" || r.inputs.join() !== "a,b") throw new Error(got.join(" "));
 * ```
 */
export function readerFromTensors(
  arrays: Readonly<Record<string, ArrayWithShape>>,
  options: ArrayReaderOptions & { readonly identity?: string } = {},
): InputReader {
  const label = options.name ?? "tensors";
  if (typeof arrays !== "object" || arrays === null || Array.isArray(arrays) || arrays instanceof Tensor) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `readerFromTensors: expected { inputName: Tensor | { data: Float32Array, shape } }, got ${describe(arrays)}`,
    );
  }
  const inputs = Object.keys(arrays).sort();
  if (inputs.length === 0) throw new QuantlabError("EMPTY_TENSOR", `${label}: no inputs given`);
  const bs = options.batchSize ?? 64;
  checkBatchSize(label, bs);
  let rows = -1;
  const cols = new Map<string, { data: Float32Array; shape: readonly number[]; per: number }>();
  for (const k of inputs) {
    const a = arrays[k];
    const data = a?.data, shape = a?.shape;
    if (!(data instanceof Float32Array) || !Array.isArray(shape) || shape.length < 1) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${label}: input "${k}" must be a float32 Tensor or { data: Float32Array, shape: [n, ...] } with a batch axis, ` +
          `got ${describe(a)}`,
      );
    }
    let size = 1;
    for (const d of shape) size *= d;
    if (!shape.every((d) => Number.isInteger(d) && d >= 0) || size !== data.length) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${label}: input "${k}" has shape [${shape}] but ${data.length} values`,
      );
    }
    if (rows >= 0 && shape[0] !== rows) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${label}: input "${k}" has ${shape[0]} rows along axis 0 but "${inputs[0]}" has ${rows}`,
      );
    }
    rows = shape[0];
    cols.set(k, { data, shape, per: shape[0] === 0 ? 0 : data.length / shape[0] });
  }
  if (rows === 0) throw new QuantlabError("EMPTY_TENSOR", `${label}: the arrays have no rows`);
  const shapes = inputs.map((k) => `${k}[${cols.get(k)!.shape}]`).join(",");
  return lazyReader(
    options.name ?? `${inputs.length === 1 ? inputs[0] : inputs.join("+")}: ${rows} rows`,
    inputs,
    () => options.identity ?? `tensors:${shapes}|batch ${bs}|${fingerprint(inputs.map((k) => cols.get(k)!.data))}`,
    function* () {
      for (let r = 0; r < rows; r += bs) {
        const n = Math.min(bs, rows - r);
        const feeds: Record<string, Tensor> = {};
        for (const k of inputs) {
          const { data, shape, per } = cols.get(k)!;
          feeds[k] = new Tensor(data.slice(r * per, (r + n) * per), [n, ...shape.slice(1)], k);
        }
        yield feeds;
      }
    },
  );
}

async function readBytes(input: string, src: string | URL | Uint8Array): Promise<{ bytes: Uint8Array; label: string }> {
  if (src instanceof Uint8Array) return { bytes: src, label: `${input} (.npy bytes)` };
  if (typeof src !== "string" && !(src instanceof URL)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `readerFromNpy: input "${input}" must be a path, a URL or the file's bytes, got ${describe(src)}`,
    );
  }
  const label = String(src);
  try {
    if (src instanceof URL && src.protocol !== "file:") {
      const res = await fetch(src);
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status} ${res.statusText}`);
      }
      return { bytes: new Uint8Array(await res.arrayBuffer()), label };
    }
    return { bytes: await Deno.readFile(src), label };
  } catch (e) {
    throw new QuantlabError("IO", `readerFromNpy: cannot read ${label} for input "${input}": ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/**
 * A reader over NumPy `.npy` files, one per model input (float32 little-endian, C order, format versions 1-3;
 * anything else is a `QuantlabError` naming the file), split along axis 0 like {@link readerFromTensors}. Files
 * are paths, URLs, or their bytes; the identity names the files and fingerprints their values.
 *
 * @example From bytes (paths and URLs work the same)
 * ```ts
 * import { readerFromNpy } from "./reader.ts";
 * const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }".padEnd(117) + "\n";
 * const file = new Uint8Array(128 + 24); // \x93NUMPY, version 1.0, header length, header, 6 zero floats
 * file.set([0x93, 78, 85, 77, 80, 89, 1, 0, header.length, 0]);
 * file.set(new TextEncoder().encode(header), 10);
 * const r = await readerFromNpy({ x: file }, { batchSize: 2 });
 * const rows = [...r.batches() as Iterable<Record<string, { shape: number[] }>>].map((b) => b.x.shape[0]);
 * if (rows.join() !== "2,1") throw new Error("bad");
 * ```
 */
export async function readerFromNpy(
  files: Readonly<Record<string, string | URL | Uint8Array>>,
  options: ArrayReaderOptions = {},
): Promise<InputReader> {
  if (typeof files !== "object" || files === null || Array.isArray(files) || files instanceof Uint8Array) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `readerFromNpy: expected { inputName: path | URL | Uint8Array }, got ${describe(files)}`,
    );
  }
  const inputs = Object.keys(files).sort();
  const arrays: Record<string, ArrayWithShape> = {};
  const labels: string[] = [];
  for (const k of inputs) {
    const { bytes, label } = await readBytes(k, files[k]);
    const a = parseNpy(bytes, label);
    if (a.shape.length === 0) {
      throw new QuantlabError("SHAPE_MISMATCH", `${label}: a scalar has no batch axis to split along`);
    }
    arrays[k] = a;
    labels.push(`${k}=${label}`);
  }
  const base = readerFromTensors(arrays, { batchSize: options.batchSize, name: options.name ?? labels.join(", ") });
  return lazyReader(base.name, base.inputs, () => `npy:${labels.join(",")}|${base.identity}`, () => base.batches());
}

/** What {@link asReader} accepts. */
export type ReaderSource = InputReader | ImageDataset | readonly InputFeeds[] | readonly Tensor[];

/** A short description of a value for error messages. */
function describe(x: unknown): string {
  if (x === null) return "null";
  if (x === undefined) return "undefined";
  if (x instanceof Tensor) return `a ${x.dtype} Tensor [${x.shape}]`;
  if (Array.isArray(x)) return x.length === 0 ? "an empty array" : `an array of ${x.length} (first: ${describe(x[0])})`;
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name} of ${(x as Uint8Array).length}`;
  if (typeof x === "object") {
    const proto = Object.getPrototypeOf(x);
    const kind = proto && proto !== Object.prototype ? `a ${proto.constructor?.name ?? "object"}` : "an object";
    const keys = Object.keys(x as object);
    const iter = Symbol.asyncIterator in (x as object)
      ? " (async iterable)"
      : Symbol.iterator in (x as object)
      ? " (iterable)"
      : "";
    return `${kind}${iter} with keys [${keys.slice(0, 8).join(", ")}${keys.length > 8 ? ", ..." : ""}]`;
  }
  if (typeof x === "string") return `the string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + "..." : x)}`;
  return `${typeof x} ${String(x)}`;
}

function modelInputs(model: OnnxModel): string[] {
  return [...indexGraph(model.graph).inputs];
}

function singleInputOf(model: OnnxModel | undefined, what: string): string {
  if (!model) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `asReader: ${what} feeds one input and needs the model to name it; pass the model, or build a reader with ` +
        `readerFromDataset(ds, { input }) / readerFromFeeds([{ input: tensor }])`,
    );
  }
  const inputs = modelInputs(model);
  if (inputs.length !== 1) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `asReader: ${what} feeds one input but ${model.source} has ${inputs.length} inputs [${inputs.join(", ")}]; ` +
        `pass an InputReader or feeds naming each input (readerFromTensors, readerFromNpy, readerFromFeeds)`,
    );
  }
  return inputs[0];
}

/** Options of {@link asReader} for dataset sources. */
export interface AsReaderOptions {
  /** Images per batch when the source is a dataset (default 64). */
  readonly batchSize?: number;
  /** Number of images when the source is a dataset (default all). */
  readonly count?: number;
}

/**
 * The reader for a data source: an {@link InputReader} as is, an {@link ImageDataset} through
 * {@link readerFromDataset} (the input name taken from `model`, which must have exactly one input), an array of
 * feeds (`{ inputName: Tensor }` records) through {@link readerFromFeeds}, or an array of tensors for a
 * single-input model. With a model, the reader's inputs must be the model's inputs. Anything else is a
 * `QuantlabError("INVALID_ARGUMENT")` naming what was passed and what is expected.
 *
 * @example
 * ```ts
 * import { asReader, readerFromFeeds } from "./reader.ts";
 * import { QuantlabError } from "../errors.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const r = readerFromFeeds([{ x: Tensor.from([1, 2], [1, 2]) }]);
 * if (asReader(r) !== r || asReader([{ x: Tensor.from([1], [1, 1]) }]).inputs[0] !== "x") throw new Error("bad");
 * try {
 *   asReader(42);
 *   throw new Error("accepted a number");
 * } catch (e) {
 *   if (!(e instanceof QuantlabError) || e.code !== "INVALID_ARGUMENT") throw e;
 * }
 * ```
 */
export function asReader(source: unknown, model?: OnnxModel, options: AsReaderOptions = {}): InputReader {
  let reader: InputReader;
  if (isInputReader(source)) reader = source;
  else if (isImageDataset(source)) {
    const input = singleInputOf(model, `dataset "${source.name}"`);
    reader = readerFromDataset(source, {
      input,
      batchSize: options.batchSize,
      count: options.count === undefined ? undefined : Math.min(options.count, source.count),
    });
  } else {
    // Arrays, and other synchronous iterables (e.g. ZeroShotData) collected once.
    const items = Array.isArray(source)
      ? source
      : typeof source === "object" && source !== null && Symbol.iterator in source
      ? [...(source as Iterable<unknown>)]
      : undefined;
    const isFeeds = (f: unknown) =>
      typeof f === "object" && f !== null && !(f instanceof Tensor) && !ArrayBuffer.isView(f) &&
      Object.keys(f).length > 0 && Object.values(f).every((t) => t instanceof Tensor);
    if (items && items.length > 0 && items.every((t) => t instanceof Tensor)) {
      const input = singleInputOf(model, `${items.length} tensor batch(es)`);
      reader = readerFromFeeds(items.map((t: Tensor) => ({ [input]: t })), {
        name: `${items.length} batches of ${input}`,
      });
    } else if (items && items.length > 0 && items.every(isFeeds)) {
      reader = readerFromFeeds(items as InputFeeds[]);
    } else {
      const asyncHint = typeof source === "object" && source !== null && Symbol.asyncIterator in source
        ? " (collect an async iterable first: readerFromFeeds(await Array.fromAsync(source)))"
        : source instanceof Tensor
        ? " (a single batch goes in an array: [tensor])"
        : "";
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `expected calibration data as an InputReader, an ImageDataset, or a non-empty array of feeds ` +
          `({ inputName: Tensor } records); got ${describe(source)}${asyncHint}`,
      );
    }
  }
  if (model) {
    const want = modelInputs(model).sort();
    const missing = want.filter((n) => !reader.inputs.includes(n));
    const extra = reader.inputs.filter((n) => !want.includes(n));
    if (missing.length || extra.length) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${reader.name} feeds [${reader.inputs.join(", ")}] but ${model.source} takes [${want.join(", ")}]` +
          (missing.length ? `; missing ${missing.join(", ")}` : "") +
          (extra.length ? `; unknown ${extra.join(", ")}` : ""),
      );
    }
  }
  return reader;
}
