/**
 * The embedded 8x8 handwritten digits (UCI "Optical Recognition of
 * Handwritten Digits", test part: 1,797 images, 10 classes, pixels 0..16), as
 * shipped with scikit-learn (`datasets/digits.csv.gz`, byte-identical), loaded as an
 * {@link ImageDataset}: the raw values 0..16 as bytes with `pixelMax` 16 and no normalisation, so batches are
 * `p / 16` in [0, 1] (float32, exact).
 *
 * The file is read with `fetch(new URL("../../datasets/...", import.meta.url))`,
 * so the loader works both from a checkout (file: URL) and when quantlab is
 * imported by http(s) URL. Its SHA-256 is checked before use.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { ImageDataset } from "./images.ts";

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

/**
 * Class names of the digits set, `"0"` .. `"9"`.
 *
 * @example
 * ```ts
 * import { DIGITS_CLASSES } from "./digits.ts";
 * if (DIGITS_CLASSES.length !== 10 || DIGITS_CLASSES[7] !== "7") throw new Error("bad");
 * ```
 */
export const DIGITS_CLASSES: readonly string[] = Object.freeze(Array.from({ length: 10 }, (_, i) => String(i)));

/** Options of {@link loadDigits}. */
export interface LoadDigitsOptions {
  /** Where the gzip CSV lives (default: `datasets/digits.csv.gz` next to this module). */
  readonly url?: string | URL;
  /** Skip the checksum (for a modified copy). Default false. */
  readonly skipChecksum?: boolean;
}

const cache = new Map<string, Promise<ImageDataset>>();

/**
 * Load the embedded digits set (cached per URL) as `[1, 8, 8]` images with pixels 0..16 (`pixelMax` 16, no
 * normalisation). Throws a `DATASET` error when the file is missing, corrupt (checksum) or malformed.
 *
 * @example
 * ```ts
 * import { loadDigits } from "./digits.ts";
 * import { gatherImages } from "./images.ts";
 * const d = await loadDigits();
 * if (d.count !== 1797 || d.pixelMax !== 16 || d.labels[0] !== 0) throw new Error("bad");
 * if (gatherImages(d).shape.join() !== "1797,1,8,8") throw new Error("bad shape");
 * ```
 */
export function loadDigits(options: LoadDigitsOptions = {}): Promise<ImageDataset> {
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

async function readDigits(url: URL, skipChecksum: boolean): Promise<ImageDataset> {
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
 * Parse the digits CSV (64 pixel values 0..16, then the label 0..9, per line) into an {@link ImageDataset}
 * named `"digits"` (`pixelMax` 16, no normalisation).
 *
 * @example
 * ```ts
 * import { parseDigitsCsv } from "./digits.ts";
 * const line = Array(64).fill(16).join(",") + ",7";
 * const d = parseDigitsCsv(line + "\n");
 * if (d.count !== 1 || d.labels[0] !== 7 || d.pixels[5] !== 16 || d.pixelMax !== 16) throw new Error("bad");
 * ```
 */
export function parseDigitsCsv(text: string, source = "digits csv"): ImageDataset {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const n = lines.length;
  if (n === 0) throw new QuantlabError("DATASET", `${source}: no rows`);
  const pixels = new Uint8Array(n * 64);
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
      pixels[i * 64 + j] = v;
    }
    const y = Number(parts[64]);
    if (!Number.isInteger(y) || y < 0 || y > 9) {
      throw new QuantlabError("DATASET", `${source}: row ${i + 1} label is "${parts[64]}", expected 0..9`);
    }
    labels[i] = y;
  }
  return {
    name: "digits",
    pixels,
    labels,
    count: n,
    channels: 1,
    height: 8,
    width: 8,
    pixelMax: 16,
    classes: DIGITS_CLASSES,
  };
}
