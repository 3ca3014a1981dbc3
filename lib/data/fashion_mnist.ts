/**
 * Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 70,000 28x28 grey-scale clothing images in 10 classes, read from
 * the standard IDX files (gzip-compressed or not).
 *
 * Where the files are looked for, in order: the `dir` option, `$FASHION_MNIST_DIR`, `datasets/fashion-mnist`
 * under the current directory (where `deno task fetch-data` puts them), and Debian's
 * `dataset-fashion-mnist` package (`/usr/share/datasets/fashion-mnist`). When none holds the files, the
 * **embedded subset** shipped with quantlab is used (`datasets/fashion-mnist-subset/`, read relative to this module
 * with `fetch`, so it also works when quantlab is imported by URL): the full test set (10,000 images, byte-identical
 * to the official release) and the first {@link FASHION_MNIST_SUBSET_TRAIN} training images (the official file's
 * first images, in order: every experiment that calibrates on "the first N training images" with N up to that many
 * sees the same images as with the full set). `source: "embedded"` or `FASHION_MNIST_SOURCE=embedded` skips the
 * folders (tests, and runs that must not depend on the machine). {@link fashionMnistSources} says which source
 * each split came from.
 *
 * Each file's decompressed content is checked against the SHA-256 recorded below (the uncompressed IDX bytes, so
 * re-compressed copies such as Debian's still verify); the embedded training subset has its own digests
 * ({@link FASHION_MNIST_SUBSET_SHA256}).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { ImageDataset, Normalization } from "./images.ts";
import { gunzip, isGzip, parseIdx, sha256Hex } from "./idx.ts";

/**
 * Fashion-MNIST class names, index = label.
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_CLASSES } from "./fashion_mnist.ts";
 * if (FASHION_MNIST_CLASSES.length !== 10 || FASHION_MNIST_CLASSES[0] !== "T-shirt/top") throw new Error("bad");
 * ```
 */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
]);

/**
 * Mean and standard deviation of the training pixels (scaled to [0, 1]), the usual normalisation and the one
 * {@link loadFashionMnist} declares (the committed reference models were trained with it).
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_NORMALIZATION } from "./fashion_mnist.ts";
 * const { mean, std } = FASHION_MNIST_NORMALIZATION;
 * if (mean[0] !== 0.286 || std[0] !== 0.353 || mean.length !== 1) throw new Error("bad");
 * ```
 */
export const FASHION_MNIST_NORMALIZATION: Normalization = Object.freeze({
  mean: Object.freeze([0.2860]),
  std: Object.freeze([0.3530]),
});

/**
 * SHA-256 of the uncompressed IDX files (the official release; Debian ships the same content).
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_SHA256 } from "./fashion_mnist.ts";
 * const digests = Object.values(FASHION_MNIST_SHA256);
 * if (digests.length !== 4 || !digests.every((h) => /^[0-9a-f]{64}$/.test(h))) throw new Error("bad");
 * ```
 */
export const FASHION_MNIST_SHA256: Readonly<Record<string, string>> = Object.freeze({
  "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
  "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
  "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
  "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
});

/**
 * Debian's `dataset-fashion-mnist` install folder.
 *
 * @example
 * ```ts
 * import { DEBIAN_FASHION_MNIST_DIR } from "./fashion_mnist.ts";
 * if (!DEBIAN_FASHION_MNIST_DIR.startsWith("/usr/share/")) throw new Error("bad");
 * ```
 */
export const DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/**
 * How to get the data, for error messages.
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_HELP } from "./fashion_mnist.ts";
 * if (!FASHION_MNIST_HELP.includes("FASHION_MNIST_DIR")) throw new Error("bad");
 * ```
 */
export const FASHION_MNIST_HELP: string =
  "get Fashion-MNIST with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or `deno task fetch-data` " +
  "(downloads to datasets/fashion-mnist), or pass { dir } / set FASHION_MNIST_DIR to a folder holding " +
  "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]";

/**
 * Training images in the embedded subset (the first ones of the official training file).
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_SUBSET_TRAIN } from "./fashion_mnist.ts";
 * if (FASHION_MNIST_SUBSET_TRAIN !== 2000) throw new Error("bad");
 * ```
 */
export const FASHION_MNIST_SUBSET_TRAIN = 2000;

/**
 * SHA-256 of the uncompressed IDX files of the embedded subset (`datasets/fashion-mnist-subset/`): the test files
 * are the official ones; the training files hold the first {@link FASHION_MNIST_SUBSET_TRAIN} images and labels
 * (IDX header count changed accordingly).
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_SHA256, FASHION_MNIST_SUBSET_SHA256 } from "./fashion_mnist.ts";
 * const t = "t10k-images-idx3-ubyte";
 * if (FASHION_MNIST_SUBSET_SHA256[t] !== FASHION_MNIST_SHA256[t]) throw new Error("test set must be official");
 * ```
 */
export const FASHION_MNIST_SUBSET_SHA256: Readonly<Record<string, string>> = Object.freeze({
  "train-images-idx3-ubyte": "71a9f8cec24060d6752b3e4940ce6d6fd729334afa47b735dd553481aa83b53e",
  "train-labels-idx1-ubyte": "8983259dfbc9f185f92698916f7daf361704b43ba7d19568cc7bcdeefdc1bece",
  "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
  "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
});

const SUBSET_DIR = new URL("../../datasets/fashion-mnist-subset/", import.meta.url);

/** Options for {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** Folder holding the IDX files (searched first). */
  dir?: string;
  /** Check SHA-256 of the decompressed files (default true). */
  verify?: boolean;
  /**
   * `"auto"` (default): the folders, then the embedded subset; `"embedded"`: only the embedded subset (also set by
   * the environment variable `FASHION_MNIST_SOURCE=embedded`).
   */
  source?: "auto" | "embedded";
}

/** Where a loaded split came from (see {@link fashionMnistSources}). */
export interface FashionMnistSource {
  /** `"folder"` (a folder with the official files) or `"embedded"` (the subset shipped with quantlab). */
  readonly kind: "folder" | "embedded";
  /** The folder or URL the images were read from. */
  readonly location: string;
  /** Images in the split as loaded. */
  readonly count: number;
}

const loadedSources = new Map<"train" | "test", FashionMnistSource>();

/**
 * Where each split loaded so far in this process came from, e.g. for a report header: `{ test: { kind: "embedded",
 * ... } }`. Empty until {@link loadFashionMnist} has run.
 *
 * @example
 * ```ts
 * import { fashionMnistSources, loadFashionMnist } from "./fashion_mnist.ts";
 * await loadFashionMnist("train", { source: "embedded" });
 * const s = fashionMnistSources().train!;
 * if (s.kind !== "embedded" || s.count !== 2000) throw new Error(JSON.stringify(s));
 * ```
 */
export function fashionMnistSources(): { train?: FashionMnistSource; test?: FashionMnistSource } {
  return Object.fromEntries(loadedSources);
}

/**
 * One line saying where the Fashion-MNIST splits loaded so far came from (empty string when none was loaded).
 *
 * @example
 * ```ts
 * import { describeFashionMnistSources, loadFashionMnist } from "./fashion_mnist.ts";
 * await loadFashionMnist("test", { source: "embedded" });
 * if (!describeFashionMnistSources().includes("embedded")) throw new Error("bad");
 * ```
 */
export function describeFashionMnistSources(): string {
  const parts = (["train", "test"] as const).flatMap((split) => {
    const s = loadedSources.get(split);
    if (!s) return [];
    return s.kind === "embedded"
      ? [
        `${split}: embedded subset (${s.count.toLocaleString("en-US")} images${
          split === "train" ? " of 60,000" : ", the full test set"
        })`,
      ]
      : [`${split}: ${s.location} (${s.count.toLocaleString("en-US")} images)`];
  });
  return parts.length ? `Fashion-MNIST ${parts.join("; ")}` : "";
}

function forcedEmbedded(options: FashionMnistOptions): boolean {
  if (options.source === "embedded") return true;
  try {
    return Deno.env.get("FASHION_MNIST_SOURCE") === "embedded";
  } catch {
    return false;
  }
}

function candidates(dir?: string): string[] {
  const out: string[] = [];
  if (dir) out.push(dir);
  try {
    const env = Deno.env.get("FASHION_MNIST_DIR");
    if (env) out.push(env);
  } catch {
    // no env permission: skip
  }
  out.push("datasets/fashion-mnist", DEBIAN_FASHION_MNIST_DIR);
  return out;
}

async function readFirst(dirs: string[], base: string): Promise<{ path: string; bytes: Uint8Array } | undefined> {
  for (const d of dirs) {
    for (const name of [`${base}.gz`, base]) {
      const path = `${d.replace(/\/+$/, "")}/${name}`;
      try {
        return { path, bytes: await Deno.readFile(path) };
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) {
          throw new QuantlabError("DATASET", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
        }
      }
    }
  }
  return undefined;
}

async function readEmbedded(base: string): Promise<{ path: string; bytes: Uint8Array } | undefined> {
  const url = new URL(`${base}.gz`, SUBSET_DIR);
  try {
    const res = await fetch(url);
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return { path: url.href, bytes: new Uint8Array(await res.arrayBuffer()) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || (e instanceof TypeError && /not found|No such file/i.test(e.message))) {
      return undefined;
    }
    throw new QuantlabError(
      "DATASET",
      `cannot read the embedded Fashion-MNIST file ${url.href}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

async function loadIdx(dirs: string[], base: string, verify: boolean, from: "folders" | "embedded" | "both") {
  const embeddedOnly = from === "embedded";
  let found = embeddedOnly ? undefined : await readFirst(dirs, base);
  let digests = FASHION_MNIST_SHA256;
  let embedded = false;
  if (!found && from !== "folders") {
    found = await readEmbedded(base);
    digests = FASHION_MNIST_SUBSET_SHA256;
    embedded = true;
  }
  if (!found) {
    throw new QuantlabError(
      "DATASET",
      `Fashion-MNIST file ${base}[.gz] not found in ${
        embeddedOnly ? "" : `${dirs.join(", ")} nor `
      }the embedded subset ${SUBSET_DIR.href}; ${FASHION_MNIST_HELP}`,
    );
  }
  const raw = isGzip(found.bytes) ? await gunzip(found.bytes, found.path) : found.bytes;
  if (verify) {
    const got = await sha256Hex(raw);
    if (got !== digests[base]) {
      throw new QuantlabError(
        "DATASET",
        `${found.path}: SHA-256 of the decompressed file is ${got}, expected ${digests[base]} ` +
          `(corrupt or not Fashion-MNIST; pass { verify: false } for other IDX data); ${FASHION_MNIST_HELP}`,
      );
    }
  }
  return { path: found.path, embedded, idx: parseIdx(raw, found.path) };
}

/**
 * Load the Fashion-MNIST training (60,000) or test (10,000) split as an {@link ImageDataset} (bytes, `pixelMax`
 * 255, {@link FASHION_MNIST_NORMALIZATION}); batch it with `batches()` for normalised `[b, 1, 28, 28]` float32
 * tensors, or use `withNormalization()` for a model trained with other constants. Falls back to the embedded subset (full test set, first
 * {@link FASHION_MNIST_SUBSET_TRAIN} training images) when no folder holds the files. Throws `DATASET` saying how to get the data when
 * the files are missing, and naming the file when a checksum, header or image size is wrong.
 *
 * @example
 * ```ts ignore
 * import { loadFashionMnist } from "./fashion_mnist.ts";
 * const test = await loadFashionMnist("test");
 * console.log(test.count); // 10000
 * ```
 */
export async function loadFashionMnist(
  split: "train" | "test",
  options: FashionMnistOptions = {},
): Promise<ImageDataset> {
  if (split !== "train" && split !== "test") {
    throw new QuantlabError("INVALID_ARGUMENT", `Fashion-MNIST split must be "train" or "test", got "${split}"`);
  }
  const prefix = split === "train" ? "train" : "t10k";
  const dirs = candidates(options.dir);
  const verify = options.verify ?? true;
  const embeddedOnly = forcedEmbedded(options);
  const images = await loadIdx(dirs, `${prefix}-images-idx3-ubyte`, verify, embeddedOnly ? "embedded" : "both");
  // Labels from the same place as the images (never official images with subset labels).
  const labels = await loadIdx(
    images.embedded ? [] : [images.path.replace(/\/[^/]*$/, "")],
    `${prefix}-labels-idx1-ubyte`,
    verify,
    images.embedded ? "embedded" : "folders",
  );
  const [n, h, w] = images.idx.dims;
  if (images.idx.dims.length !== 3 || h !== 28 || w !== 28) {
    throw new QuantlabError("DATASET", `${images.path}: images have dims [${images.idx.dims}], expected [N, 28, 28]`);
  }
  if (labels.idx.dims.length !== 1 || labels.idx.dims[0] !== n) {
    throw new QuantlabError("DATASET", `${labels.path}: ${labels.idx.dims[0]} labels for ${n} images`);
  }
  for (let i = 0; i < n; i++) {
    if (labels.idx.data[i] > 9) {
      throw new QuantlabError("DATASET", `${labels.path}: label ${labels.idx.data[i]} at ${i} is not 0..9`);
    }
  }
  loadedSources.set(split, {
    kind: images.embedded ? "embedded" : "folder",
    location: images.embedded ? SUBSET_DIR.href : images.path.replace(/\/[^/]*$/, ""),
    count: n,
  });
  return {
    // The embedded training subset is other data than the full split: its name (a cache identity) says so.
    name: images.embedded && split === "train" ? `fashion-mnist/train[0:${n}]` : `fashion-mnist/${split}`,
    pixels: images.idx.data,
    labels: labels.idx.data,
    count: n,
    channels: 1,
    height: 28,
    width: 28,
    pixelMax: 255,
    normalization: FASHION_MNIST_NORMALIZATION,
    classes: FASHION_MNIST_CLASSES,
  };
}
