import assert from "node:assert/strict";
import { batches, subset } from "../../lib/data/batching.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { FASHION_MNIST_NORMALIZATION, loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import {
  describePreprocessing,
  gatherImages,
  type ImageDataset,
  imageDataset,
  normalizationTable,
  normalizationTables,
  selectImages,
  withNormalization,
} from "../../lib/data/images.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { fashionMnistAvailable } from "../onnx/_fixtures.ts";

const f = Math.fround;

/** The pre-issue-10 formula for one channel, verbatim: float32(float32(float32(p / 255) - mean) / std). */
function oldFormula(p: number, mean: number, std: number): number {
  return f(f(f(p / 255) - f(mean)) / f(std));
}

function rgb(n: number): ImageDataset {
  const rng = new Prng(11);
  const pixels = new Uint8Array(n * 3 * 2 * 4);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.nextInt(256);
  return imageDataset({
    name: "rgb",
    pixels,
    labels: Uint8Array.from({ length: n }, (_, i) => i % 4),
    channels: 3,
    height: 2,
    width: 4,
    normalization: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  });
}

Deno.test("images: per-channel normalisation of a 3-channel set, in float32 at every step", () => {
  const ds = rgb(5);
  const x = [...batches(ds, { batchSize: 5 })][0].x;
  assert.deepEqual(x.shape, [5, 3, 2, 4]);
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  for (let i = 0; i < 5; i++) {
    for (let c = 0; c < 3; c++) {
      for (let j = 0; j < 8; j++) {
        const at = i * 24 + c * 8 + j;
        assert.equal(x.data[at], oldFormula(ds.pixels[at], mean[c], std[c]), `image ${i} channel ${c} pixel ${j}`);
      }
    }
  }
  // Channels really differ: the same byte maps to three values.
  const [a, b, c] = normalizationTables(ds);
  assert.ok(a[100] !== b[100] && b[100] !== c[100]);
  assert.equal(describePreprocessing(ds), "p/255 (mean [0.485,0.456,0.406], std [0.229,0.224,0.225])");
});

Deno.test("images: one table is bit-identical to the old normalizationTable for every byte", () => {
  for (const [m, s] of [[0.286, 0.353], [0.5, 0.25], [0, 1], [0.1307, 0.3081]]) {
    const lut = normalizationTable(m, s);
    for (let p = 0; p < 256; p++) assert.ok(Object.is(lut[p], oldFormula(p, m, s)), `${m}/${s} p=${p}`);
  }
});

Deno.test({
  name: "images: Fashion-MNIST batches are bit-identical to the old formula (mean 0.2860, std 0.3530)",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const test = await loadFashionMnist("test");
    assert.equal(test.pixelMax, 255);
    assert.deepEqual(test.normalization, { mean: [0.286], std: [0.353] });
    assert.equal(test.normalization, FASHION_MNIST_NORMALIZATION);
    const n = 500;
    const x = [...batches(test, { batchSize: n, count: n, start: 1234 })][0].x;
    const old = Float32Array.from(
      test.pixels.subarray(1234 * 784, (1234 + n) * 784),
      (p) => oldFormula(p, 0.286, 0.353),
    );
    assert.deepEqual(x.data, old);
  },
});

Deno.test("images: digits batches are exactly p / 16 (the old float images), mean 0 and std 1 change nothing", async () => {
  const d = await loadDigits();
  const x = gatherImages(d);
  const old = Float32Array.from(d.pixels, (v) => v / 16);
  assert.deepEqual(x.data, old);
  assert.deepEqual([...batches(d, { batchSize: 2000 })][0].x.data, old);
  assert.deepEqual(gatherImages(withNormalization(d, { mean: 0, std: 1 })).data, old);
});

Deno.test("images: withNormalization is a view with other preprocessing; null removes it", () => {
  const ds = rgb(3);
  const v = withNormalization(ds, { mean: 0.5, std: [0.5, 0.25, 1] });
  assert.equal(v.pixels, ds.pixels);
  assert.equal(v.labels, ds.labels);
  assert.deepEqual(v.normalization, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 1] });
  assert.deepEqual(ds.normalization?.mean, [0.485, 0.456, 0.406], "the original is unchanged");
  const x = gatherImages(v, [1]);
  for (let c = 0; c < 3; c++) {
    for (let j = 0; j < 8; j++) {
      assert.equal(x.data[c * 8 + j], oldFormula(ds.pixels[24 + c * 8 + j], 0.5, [0.5, 0.25, 1][c]));
    }
  }
  const none = withNormalization(ds, null);
  assert.equal(none.normalization, undefined);
  assert.equal(gatherImages(none, [0]).data[0], f(ds.pixels[0] / 255));
  // Views compose with subsets and selections and keep the preprocessing.
  assert.deepEqual(subset(v, 1, 2).normalization, v.normalization);
  assert.deepEqual(selectImages(v, [2, 0]).normalization, v.normalization);
  assert.deepEqual(gatherImages(selectImages(v, [2, 0])).data, gatherImages(v, [2, 0]).data);
  const bad = (spec: unknown, re: RegExp) =>
    assert.throws(
      () => withNormalization(ds, spec as never),
      (e) => e instanceof QuantlabError && e.code === "INVALID_ARGUMENT" && re.test(e.message),
    );
  bad({ mean: [0.5, 0.5], std: 1 }, /mean must be 3 finite number/);
  bad({ mean: 0, std: [1, 0, 1] }, /non-zero/);
  bad({ mean: 0, std: NaN }, /std must be 3 finite/);
  bad({ mean: "0.5", std: 1 }, /mean/);
  bad(undefined, /\{ mean, std \}/);
});

Deno.test("images: imageDataset checks sizes, labels and pixelMax; gather checks indices", () => {
  const base = { name: "t", pixels: new Uint8Array(8), labels: new Uint8Array([0, 1]), height: 2, width: 2 };
  const ds = imageDataset(base);
  assert.deepEqual([ds.count, ds.channels, ds.pixelMax, ds.classes.join()], [2, 1, 255, "0,1"]);
  const bad = (spec: object, code: string, re: RegExp) =>
    assert.throws(
      () => imageDataset({ ...base, ...spec }),
      (e) => e instanceof QuantlabError && e.code === code && re.test(e.message),
    );
  bad({ pixels: new Uint8Array(7) }, "SHAPE_MISMATCH", /7 pixels for 2 labels/);
  bad({ channels: 0 }, "INVALID_ARGUMENT", /channels/);
  bad({ pixelMax: 0 }, "INVALID_ARGUMENT", /pixelMax/);
  bad({ classes: ["only"] }, "DATASET", /label 1 but only 1 class/);
  bad({ pixels: new Float32Array(8) }, "INVALID_ARGUMENT", /Uint8Array/);
  assert.throws(() => gatherImages(ds, [2]), (e) => e instanceof QuantlabError && /index 2/.test(e.message));
  assert.throws(
    () => normalizationTables({ ...ds, channels: 2, normalization: { mean: [0], std: [1] } }),
    (e) => e instanceof QuantlabError && /1 means and 1 stds for 2 channel/.test(e.message),
  );
});
