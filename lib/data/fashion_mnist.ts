/**
 * Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 70,000 28x28 grey-scale clothing images in 10 classes, read from
 * the standard IDX files (gzip-compressed or not).
 *
 * Where the files are looked for, in order: the `dir` option, `$FASHION_MNIST_DIR`, `datasets/fashion-mnist`
 * under the current directory (where `deno task fetch-data` puts them), and Debian's
 * `dataset-fashion-mnist` package (`/usr/share/datasets/fashion-mnist`). Each file's decompressed content is
 * checked against the SHA-256 recorded below (the uncompressed IDX bytes, so re-compressed copies such as
 * Debian's still verify).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { ImageDataset } from "./batching.ts";
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
 * Mean and standard deviation of the training pixels (scaled to [0, 1]), the usual normalisation.
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_NORMALIZATION } from "./fashion_mnist.ts";
 * if (FASHION_MNIST_NORMALIZATION.mean !== 0.286 || FASHION_MNIST_NORMALIZATION.std !== 0.353) throw new Error("bad");
 * ```
 */
export const FASHION_MNIST_NORMALIZATION = Object.freeze({ mean: 0.2860, std: 0.3530 });

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
export const FASHION_MNIST_HELP =
  "get Fashion-MNIST with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or `deno task fetch-data` " +
  "(downloads to datasets/fashion-mnist), or pass { dir } / set FASHION_MNIST_DIR to a folder holding " +
  "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]";

/** Options for {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** Folder holding the IDX files (searched first). */
  dir?: string;
  /** Check SHA-256 of the decompressed files (default true). */
  verify?: boolean;
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

async function loadIdx(dirs: string[], base: string, verify: boolean) {
  const found = await readFirst(dirs, base);
  if (!found) {
    throw new QuantlabError(
      "DATASET",
      `Fashion-MNIST file ${base}[.gz] not found in ${dirs.join(", ")}; ${FASHION_MNIST_HELP}`,
    );
  }
  const raw = isGzip(found.bytes) ? await gunzip(found.bytes, found.path) : found.bytes;
  if (verify) {
    const got = await sha256Hex(raw);
    if (got !== FASHION_MNIST_SHA256[base]) {
      throw new QuantlabError(
        "DATASET",
        `${found.path}: SHA-256 of the decompressed file is ${got}, expected ${FASHION_MNIST_SHA256[base]} ` +
          `(corrupt or not Fashion-MNIST; pass { verify: false } for other IDX data); ${FASHION_MNIST_HELP}`,
      );
    }
  }
  return { path: found.path, idx: parseIdx(raw, found.path) };
}

/**
 * Load the Fashion-MNIST training (60,000) or test (10,000) split as an {@link ImageDataset}; batch it with
 * `batches()` for normalised `[b, 1, 28, 28]` float32 tensors. Throws `DATASET` saying how to get the data when
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
  const images = await loadIdx(dirs, `${prefix}-images-idx3-ubyte`, verify);
  const labels = await loadIdx(dirs, `${prefix}-labels-idx1-ubyte`, verify);
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
  return {
    name: `fashion-mnist/${split}`,
    pixels: images.idx.data,
    labels: labels.idx.data,
    count: n,
    channels: 1,
    height: 28,
    width: 28,
    ...FASHION_MNIST_NORMALIZATION,
    classes: FASHION_MNIST_CLASSES,
  };
}
