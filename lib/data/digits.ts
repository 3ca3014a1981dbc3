/**
 * The embedded 8x8 handwritten digits (UCI "Optical Recognition of
 * Handwritten Digits", test part: 1,797 images, 10 classes, pixels 0..16), as
 * shipped with scikit-learn (`datasets/digits.csv.gz`, byte-identical).
 *
 * The file is read with `fetch(new URL("../../datasets/...", import.meta.url))`,
 * so the loader works both from a checkout (file: URL) and when quantlab is
 * imported by http(s) URL. Its SHA-256 is checked before use.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";

/**
 * SHA-256 of `datasets/digits.csv.gz` (scikit-learn 1.2.1's copy).
 *
 * @example
 * ```ts
 * import { DIGITS_SHA256 } from "./digits.ts";
 * if (!/^[0-9a-f]{64}$/.test(DIGITS_SHA256)) throw new Error("bad");
 * ```
 */
export const DIGITS_SHA256 = "46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a";

/**
 * Number of images in the digits set.
 *
 * @example
 * ```ts
 * import { DIGITS_COUNT } from "./digits.ts";
 * if (DIGITS_COUNT !== 1797) throw new Error("bad");
 * ```
 */
export const DIGITS_COUNT = 1797;

/** A labelled image set. */
export interface DigitsDataset {
  /** Images `[n, 1, 8, 8]`, float32, pixels scaled to [0, 1] (raw value / 16). */
  readonly images: Tensor<"float32">;
  /** Class of each image, 0..9. */
  readonly labels: Uint8Array;
  /** Number of images. */
  readonly count: number;
  /** Number of classes (10). */
  readonly classes: number;
}

/** Options of {@link loadDigits}. */
export interface LoadDigitsOptions {
  /** Where the gzip CSV lives (default: `datasets/digits.csv.gz` next to this module). */
  readonly url?: string | URL;
  /** Skip the checksum (for a modified copy). Default false. */
  readonly skipChecksum?: boolean;
}

const cache = new Map<string, Promise<DigitsDataset>>();

/**
 * Load the embedded digits set (cached per URL). Throws a `DATASET` error
 * when the file is missing, corrupt (checksum) or malformed.
 *
 * @example
 * ```ts
 * import { loadDigits } from "./digits.ts";
 * const d = await loadDigits();
 * if (d.count !== 1797 || d.images.shape.join() !== "1797,1,8,8" || d.labels[0] !== 0) throw new Error("bad");
 * ```
 */
export function loadDigits(options: LoadDigitsOptions = {}): Promise<DigitsDataset> {
  const url = new URL(options.url ?? new URL("../../datasets/digits.csv.gz", import.meta.url));
  const key = `${url.href}|${options.skipChecksum ? 1 : 0}`;
  let p = cache.get(key);
  if (!p) {
    p = readDigits(url, options.skipChecksum ?? false);
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

async function readDigits(url: URL, skipChecksum: boolean): Promise<DigitsDataset> {
  let bytes: Uint8Array;
  try {
    const res = await fetch(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status} ${res.statusText}`);
    }
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new QuantlabError(
      "DATASET",
      `digits: could not read ${url.href} (${(e as Error).message}); expected the embedded datasets/digits.csv.gz`,
      { cause: e },
    );
  }
  if (!skipChecksum) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex !== DIGITS_SHA256) {
      throw new QuantlabError(
        "DATASET",
        `digits: ${url.href} has SHA-256 ${hex}, expected ${DIGITS_SHA256} (file corrupt or replaced)`,
      );
    }
  }
  let text: string;
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("gzip"),
    );
    text = await new Response(stream).text();
  } catch (e) {
    throw new QuantlabError("DATASET", `digits: ${url.href} is not valid gzip: ${(e as Error).message}`, { cause: e });
  }
  return parseDigitsCsv(text, url.href);
}

/**
 * Parse the digits CSV (64 pixel values 0..16, then the label 0..9, per line).
 *
 * @example
 * ```ts
 * import { parseDigitsCsv } from "./digits.ts";
 * const line = Array(64).fill(16).join(",") + ",7";
 * const d = parseDigitsCsv(line + "\n");
 * if (d.count !== 1 || d.labels[0] !== 7 || d.images.data[5] !== 1) throw new Error("bad");
 * ```
 */
export function parseDigitsCsv(text: string, source = "digits csv"): DigitsDataset {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const n = lines.length;
  if (n === 0) throw new QuantlabError("DATASET", `${source}: no rows`);
  const images = new Float32Array(n * 64);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const parts = lines[i].split(",");
    if (parts.length !== 65) {
      throw new QuantlabError("DATASET", `${source}: row ${i + 1} has ${parts.length} fields, expected 65`);
    }
    for (let j = 0; j < 64; j++) {
      const v = Number(parts[j]);
      if (!Number.isInteger(v) || v < 0 || v > 16) {
        throw new QuantlabError("DATASET", `${source}: row ${i + 1} pixel ${j} is "${parts[j]}", expected 0..16`);
      }
      images[i * 64 + j] = v / 16;
    }
    const y = Number(parts[64]);
    if (!Number.isInteger(y) || y < 0 || y > 9) {
      throw new QuantlabError("DATASET", `${source}: row ${i + 1} label is "${parts[64]}", expected 0..9`);
    }
    labels[i] = y;
  }
  return { images: new Tensor(images, [n, 1, 8, 8]), labels, count: n, classes: 10 };
}

/**
 * The images at `indices`, in that order (copies).
 *
 * @example
 * ```ts
 * import { parseDigitsCsv, selectDigits } from "./digits.ts";
 * const d = parseDigitsCsv([0, 1, 2].map((y) => Array(64).fill(y).join(",") + "," + y).join("\n"));
 * const s = selectDigits(d, [2, 0]);
 * if (s.labels.join() !== "2,0" || s.images.data[0] !== 2 / 16) throw new Error("bad");
 * ```
 */
export function selectDigits(d: DigitsDataset, indices: ArrayLike<number>): DigitsDataset {
  const per = d.images.size / d.count;
  const out = new Float32Array(indices.length * per);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= d.count) {
      throw new QuantlabError("INVALID_ARGUMENT", `subset index ${i} at position ${k} is outside 0..${d.count - 1}`);
    }
    out.set(d.images.data.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = d.labels[i];
  }
  const shape = [indices.length, ...d.images.shape.slice(1)];
  return { images: new Tensor(out, shape), labels, count: indices.length, classes: d.classes };
}

/**
 * A seeded, stratified train/test split: each class contributes
 * `round(testFraction * classCount)` images to the test set.
 *
 * @example
 * ```ts
 * import { loadDigits, trainTestSplit } from "./digits.ts";
 * const { train, test } = trainTestSplit(await loadDigits(), { testFraction: 0.25, seed: 1 });
 * if (train.count + test.count !== 1797 || Math.abs(test.count - 449) > 5) throw new Error("bad");
 * ```
 */
export function trainTestSplit(
  d: DigitsDataset,
  options: { testFraction?: number; seed?: number } = {},
): { train: DigitsDataset; test: DigitsDataset } {
  const f = options.testFraction ?? 0.2;
  if (!(f > 0 && f < 1)) {
    throw new QuantlabError("INVALID_ARGUMENT", `testFraction must be in (0, 1), got ${f}`);
  }
  const rng = new Prng(options.seed ?? 0);
  const byClass: number[][] = Array.from({ length: d.classes }, () => []);
  for (let i = 0; i < d.count; i++) byClass[d.labels[i]].push(i);
  const train: number[] = [], test: number[] = [];
  for (const idx of byClass) {
    rng.shuffle(idx);
    const k = Math.floor(f * idx.length + 0.5);
    test.push(...idx.slice(0, k));
    train.push(...idx.slice(k));
  }
  rng.shuffle(train);
  rng.shuffle(test);
  return { train: selectDigits(d, train), test: selectDigits(d, test) };
}
