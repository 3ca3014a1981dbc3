import assert from "node:assert/strict";
import { DIGITS_SHA256, loadDigits, parseDigitsCsv } from "../../lib/data/digits.ts";
import { trainTestSplit } from "../../lib/data/batching.ts";
import { gatherImages, selectImages } from "../../lib/data/images.ts";
import { QuantlabError } from "../../lib/errors.ts";

const ref = JSON.parse(await Deno.readTextFile(new URL("../fixtures/digits_reference.json", import.meta.url)));

Deno.test("digits: agrees with scikit-learn's load_digits (fixture)", async () => {
  const d = await loadDigits();
  assert.equal(d.count, ref.count);
  assert.deepEqual([d.channels, d.height, d.width, d.pixelMax, d.normalization], [1, 8, 8, 16, undefined]);
  const images = gatherImages(d);
  assert.deepEqual(images.shape, [ref.count, 1, 8, 8]);
  const counts = new Array(10).fill(0);
  for (const y of d.labels) counts[y]++;
  assert.deepEqual(counts, ref.class_counts);
  assert.deepEqual(Array.from(d.labels.subarray(0, 20)), ref.first_labels);
  let total = 0;
  for (const v of d.pixels) total += v;
  assert.equal(Math.round(total), ref.pixel_sum);
  for (let i = 0; i < 10; i++) {
    let s = 0;
    for (let j = 0; j < 64; j++) s += d.pixels[i * 64 + j];
    assert.equal(s, ref.row_sums_first10[i]);
  }
  assert.deepEqual(Array.from(d.pixels.subarray(6400, 6464)), ref.image_100);
  assert.deepEqual(Array.from(images.data.subarray(6400, 6464), (v) => v * 16), ref.image_100);
  for (let c = 0; c < 10; c++) {
    let s = 0, n = 0;
    for (let i = 0; i < d.count; i++) {
      if (d.labels[i] !== c) continue;
      for (let j = 0; j < 64; j++) s += d.pixels[i * 64 + j];
      n += 64;
    }
    assert.ok(Math.abs(s / n - ref.class_pixel_means[c]) < 1e-9);
  }
  assert.ok(images.data.every((v) => v >= 0 && v <= 1));
  // The float images are exactly what the loader produced before it stored bytes: raw / 16 in float32.
  assert.deepEqual(images.data, Float32Array.from(d.pixels, (v) => v / 16));
});

Deno.test("digits: loads are cached and the checksum is the embedded file's", async () => {
  assert.equal(await loadDigits(), await loadDigits());
  const bytes = await Deno.readFile(new URL("../../datasets/digits.csv.gz", import.meta.url));
  const hex = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  assert.equal(hex, DIGITS_SHA256);
});

Deno.test("digits: missing or corrupt file -> DATASET error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => loadDigits({ url: new URL(`file://${dir}/nope.csv.gz`) }),
      (e: unknown) => e instanceof QuantlabError && e.code === "DATASET" && e.message.includes("nope.csv.gz"),
    );
    const bytes = await Deno.readFile(new URL("../../datasets/digits.csv.gz", import.meta.url));
    bytes[100] ^= 0xff;
    await Deno.writeFile(`${dir}/bad.csv.gz`, bytes);
    await assert.rejects(
      () => loadDigits({ url: new URL(`file://${dir}/bad.csv.gz`) }),
      (e: unknown) => e instanceof QuantlabError && e.code === "DATASET" && /SHA-256/.test(e.message),
    );
    await assert.rejects(
      () => loadDigits({ url: new URL(`file://${dir}/bad.csv.gz`), skipChecksum: true }),
      (e: unknown) => e instanceof QuantlabError && e.code === "DATASET",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("digits: malformed CSV rows are rejected with the row named", () => {
  const good = Array(64).fill(3).join(",") + ",4";
  assert.throws(
    () => parseDigitsCsv(good + "\n1,2,3\n"),
    (e: unknown) => e instanceof QuantlabError && /row 2/.test(e.message),
  );
  assert.throws(() => parseDigitsCsv(Array(64).fill(17).join(",") + ",1"), /expected 0..16/);
  assert.throws(() => parseDigitsCsv(Array(64).fill(1).join(",") + ",10"), /expected 0..9/);
  assert.throws(() => parseDigitsCsv(""), (e: unknown) => e instanceof QuantlabError && e.code === "DATASET");
});

Deno.test("digits: split is seeded, stratified, disjoint and complete", async () => {
  const d = await loadDigits();
  const a = trainTestSplit(d, { testFraction: 0.2, seed: 5 });
  const b = trainTestSplit(d, { testFraction: 0.2, seed: 5 });
  const c = trainTestSplit(d, { testFraction: 0.2, seed: 6 });
  assert.deepEqual(a.test.labels, b.test.labels);
  assert.deepEqual(a.test.pixels, b.test.pixels);
  assert.notDeepEqual(a.test.pixels, c.test.pixels);
  assert.equal(a.train.name, "digits/train");
  assert.equal(a.test.pixelMax, 16);
  assert.equal(a.train.count + a.test.count, d.count);
  const counts = new Array(10).fill(0);
  for (const y of a.test.labels) counts[y]++;
  for (let k = 0; k < 10; k++) assert.equal(counts[k], Math.floor(0.2 * ref.class_counts[k] + 0.5));
  // Every image appears exactly once across train and test.
  const key = (ds: typeof d, i: number) => ds.pixels.subarray(i * 64, i * 64 + 64).join(",") + ":" + ds.labels[i];
  const all = new Map<string, number>();
  for (let i = 0; i < d.count; i++) all.set(key(d, i), (all.get(key(d, i)) ?? 0) + 1);
  for (const ds of [a.train, a.test]) {
    for (let i = 0; i < ds.count; i++) {
      const k = key(ds, i);
      assert.ok((all.get(k) ?? 0) > 0, "image not in the original set or used twice");
      all.set(k, all.get(k)! - 1);
    }
  }
  assert.ok([...all.values()].every((v) => v === 0));
  assert.throws(() => trainTestSplit(d, { testFraction: 1 }), /testFraction/);
  assert.throws(
    () => selectImages(d, [d.count]),
    (e: unknown) => e instanceof QuantlabError && e.code === "INVALID_ARGUMENT",
  );
});
