import assert from "node:assert/strict";
import { subset } from "../../lib/data/batching.ts";
import { type ImageDataset, imageDataset, withNormalization } from "../../lib/data/images.ts";
import {
  asReader,
  type InputFeeds,
  type InputReader,
  readerFromDataset,
  readerFromFeeds,
  readerFromNpy,
  readerFromTensors,
} from "../../lib/data/reader.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { twoInputModel } from "./_models.ts";

const NPY = new URL("../fixtures/npy/", import.meta.url);
const expected = JSON.parse(await Deno.readTextFile(new URL("expected.json", NPY)));

async function collect(r: InputReader): Promise<InputFeeds[]> {
  const out: InputFeeds[] = [];
  for await (const b of r.batches()) out.push(b);
  return out;
}

function toy(n = 10, name = "toy"): ImageDataset {
  const rng = new Prng(3);
  const pixels = Uint8Array.from({ length: n * 2 * 2 * 2 }, () => rng.nextInt(256));
  return imageDataset({
    name,
    pixels,
    labels: new Uint8Array(n),
    channels: 2,
    height: 2,
    width: 2,
    normalization: { mean: [0.5, 0.25], std: [0.5, 0.125] },
  });
}

const invalid = (re: RegExp, code = "INVALID_ARGUMENT") => (e: unknown) =>
  e instanceof QuantlabError && e.code === code && re.test(e.message);

Deno.test("readerFromDataset: preprocessed batches of a range, re-iterable, identity names everything", async () => {
  const ds = toy();
  const r = readerFromDataset(ds, { input: "images", batchSize: 3, start: 2, count: 7 });
  assert.deepEqual(r.inputs, ["images"]);
  const a = await collect(r), b = await collect(r);
  assert.deepEqual(a.map((f) => f.images.shape[0]), [3, 3, 1]);
  assert.deepEqual(a.map((f) => [...f.images.data]), b.map((f) => [...f.images.data]), "re-iterable");
  // Batch 0 image 0 is dataset image 2, channel 1 normalised with its own constants.
  const p = ds.pixels[2 * 8 + 4];
  const f = Math.fround;
  assert.equal(a[0].images.data[4], f(f(f(p / 255) - f(0.25)) / f(0.125)));
  for (const part of ["toy", "p/255", "mean [0.5,0.25]", "std [0.5,0.125]", "[2:9]", "batch 3", "images"]) {
    assert.ok(r.identity.includes(part), `${part} in ${r.identity}`);
  }
  const ids = new Set([
    r.identity,
    readerFromDataset(ds, { input: "images", batchSize: 4, start: 2, count: 7 }).identity,
    readerFromDataset(ds, { input: "images", batchSize: 3, start: 1, count: 7 }).identity,
    readerFromDataset(ds, { input: "images", batchSize: 3, start: 2, count: 6 }).identity,
    readerFromDataset(withNormalization(ds, null), { input: "images", batchSize: 3, start: 2, count: 7 }).identity,
    readerFromDataset(ds, { input: "x", batchSize: 3, start: 2, count: 7 }).identity,
    // Same name, other pixels: the fingerprint tells them apart.
    readerFromDataset(toy(12), { input: "images", batchSize: 3, start: 3, count: 7 }).identity,
  ]);
  assert.equal(ids.size, 7);
  assert.equal(readerFromDataset(ds, { input: "images", batchSize: 3, start: 2, count: 7 }).identity, r.identity);
  assert.equal(readerFromDataset(subset(ds, 0, 4), { input: "x" }).name, "toy[0:4]");
  assert.throws(() => readerFromDataset(ds, { input: "x", start: 5, count: 6 }), invalid(/outside 0..10/));
  assert.throws(() => readerFromDataset(ds, { input: "x", batchSize: 0 }), invalid(/batchSize/));
  assert.throws(() => readerFromDataset(ds, {} as never), invalid(/options.input/));
});

Deno.test("readerFromTensors: splits every input along axis 0, Tensors or { data, shape }", async () => {
  const a = new Tensor<"float32">(Float32Array.from({ length: 15 }, (_, i) => i), [5, 3]);
  const b = { data: Float32Array.from({ length: 15 }, (_, i) => -i), shape: [5, 1, 3] };
  const r = readerFromTensors({ b, a }, { batchSize: 2 });
  assert.deepEqual(r.inputs, ["a", "b"]);
  const got = await collect(r);
  assert.deepEqual(got.map((f) => [f.a.shape, f.b.shape]), [[[2, 3], [2, 1, 3]], [[2, 3], [2, 1, 3]], [[1, 3], [
    1,
    1,
    3,
  ]]]);
  assert.deepEqual([...got[2].a.data, ...got[2].b.data], [12, 13, 14, -12, -13, -14]);
  assert.equal(r.identity, readerFromTensors({ a, b }, { batchSize: 2 }).identity, "content-named");
  assert.notEqual(r.identity, readerFromTensors({ a, b }, { batchSize: 3 }).identity);
  assert.notEqual(r.identity, readerFromTensors({ a: new Tensor(a.data.map((v) => v + 1), [5, 3]), b }).identity);
  assert.throws(
    () => readerFromTensors({ a, b: { data: new Float32Array(12), shape: [4, 3] } }),
    invalid(/"b" has 4 rows along axis 0 but "a" has 5/, "SHAPE_MISMATCH"),
  );
  assert.throws(
    () => readerFromTensors({ a: { data: new Float32Array(5), shape: [2, 3] } }),
    invalid(/shape \[2,3\] but 5 values/, "SHAPE_MISMATCH"),
  );
  assert.throws(() => readerFromTensors({ a: [1, 2, 3] as never }), invalid(/"a" must be a float32 Tensor/));
  assert.throws(() => readerFromTensors({ a: new Tensor(new Int32Array(3), [3]) as never }), invalid(/float32/));
  assert.throws(() => readerFromTensors({}), invalid(/no inputs/, "EMPTY_TENSOR"));
  assert.throws(
    () => readerFromTensors({ a: { data: new Float32Array(0), shape: [0, 3] } }),
    invalid(/no rows/, "EMPTY_TENSOR"),
  );
  assert.throws(() => readerFromTensors(a as never), invalid(/got a float32 Tensor \[5,3\]/));
});

Deno.test("readerFromNpy: NumPy files by path, URL or bytes; identity names the files", async () => {
  const images = new URL("calib_images.npy", NPY), scale = new URL("calib_scale.npy", NPY);
  const r = await readerFromNpy({ images: images.pathname, scale }, { batchSize: 2 });
  assert.deepEqual(r.inputs, ["images", "scale"]);
  const got = await collect(r);
  assert.deepEqual(got.map((f) => [f.images.shape, f.scale.shape]), [
    [[2, 2, 2, 2], [2, 3]],
    [[2, 2, 2, 2], [2, 3]],
    [[1, 2, 2, 2], [1, 3]],
  ]);
  const all = got.flatMap((f) => [...f.images.data]);
  assert.deepEqual(all, expected["calib_images.npy"].values);
  assert.deepEqual(got.flatMap((f) => [...f.scale.data]), expected["calib_scale.npy"].values);
  assert.ok(r.identity.includes("calib_images.npy") && r.identity.includes("batch 2"), r.identity);
  const bytes = await readerFromNpy({ images: Deno.readFileSync(images), scale: Deno.readFileSync(scale) }, {
    batchSize: 2,
  });
  assert.deepEqual((await collect(bytes)).flatMap((f) => [...f.images.data]), all);
  for (const [file, re] of [["fortran_2x3.npy", /Fortran/], ["f64_2x3.npy", /'<f8'/]] as const) {
    await assert.rejects(
      readerFromNpy({ x: new URL(file, NPY) }),
      (e) => e instanceof QuantlabError && e.code === "UNSUPPORTED" && e.message.includes(file) && re.test(e.message),
    );
  }
  await assert.rejects(
    readerFromNpy({ x: new URL("scalar.npy", NPY) }),
    (e) => e instanceof QuantlabError && /scalar.npy: a scalar has no batch axis/.test(e.message),
  );
  await assert.rejects(
    readerFromNpy({ x: "/nonexistent/calib.npy" }),
    (e) => e instanceof QuantlabError && e.code === "IO" && /\/nonexistent\/calib.npy.*"x"/.test(e.message),
  );
  await assert.rejects(
    readerFromNpy({ images: images.pathname, v: new URL("v1_2x3.npy", NPY) }),
    invalid(/"v" has 2 rows along axis 0 but "images" has 5/, "SHAPE_MISMATCH"),
  );
  await assert.rejects(readerFromNpy({ x: 42 as never }), invalid(/must be a path, a URL or the file's bytes/));
  await assert.rejects(readerFromNpy(["a.npy"] as never), invalid(/expected \{ inputName/));
});

Deno.test("asReader: readers, datasets, feeds and tensor batches; the model's inputs are checked", async () => {
  const model = twoInputModel();
  const feeds = [{ a: new Tensor(new Float32Array(6), [2, 3]), b: new Tensor(new Float32Array(6), [2, 1, 3]) }];
  const r = readerFromFeeds(feeds);
  assert.equal(asReader(r, model), r);
  assert.deepEqual(asReader(feeds, model).inputs, ["a", "b"]);
  // A single-input model: datasets and tensor batches take the input name from it.
  const single = {
    graph: { input: [{ name: "input" }], initializer: [], node: [], output: [], valueInfo: [], name: "g" },
    source: "single.onnx",
  } as never;
  const ds = toy();
  const dr = asReader(ds, single, { batchSize: 4, count: 6 });
  assert.deepEqual(dr.inputs, ["input"]);
  assert.deepEqual((await collect(dr)).map((f) => f.input.shape[0]), [4, 2]);
  assert.equal(dr.identity, readerFromDataset(ds, { input: "input", batchSize: 4, count: 6 }).identity);
  const t = new Tensor(new Float32Array(8), [1, 2, 2, 2]);
  assert.deepEqual(asReader([t, t], single).inputs, ["input"]);
  // Any synchronous iterable of tensors (e.g. ZeroShotData) is collected once.
  assert.equal((await collect(asReader(new Set([t]), single))).length, 1);
});

Deno.test("asReader: anything else is a typed INVALID_ARGUMENT naming what was passed and what is expected", () => {
  const model = twoInputModel();
  const expects = /expected calibration data as an InputReader, an ImageDataset, or a non-empty array of feeds/;
  const cases: [unknown, RegExp][] = [
    [42, /got number 42/],
    [undefined, /got undefined/],
    [null, /got null/],
    ["calib.npy", /got the string "calib.npy"/],
    [[], /got an empty array/],
    [{ images: [1, 2] }, /got an object with keys \[images\]/],
    [new Tensor(new Float32Array(2), [1, 2]), /got a float32 Tensor \[1,2\]/],
    [[{ a: [1, 2] }], /got an array of 1 \(first: an object with keys \[a\]\)/],
    [[1, 2, 3], /got an array of 3 \(first: number 1\)/],
    [new Float32Array(4), /got a Float32Array of 4/],
    // The old digits dataset shape: float images, no pixels.
    [
      { images: new Tensor(new Float32Array(4), [1, 1, 2, 2]), labels: new Uint8Array(1), count: 1, classes: 10 },
      /keys \[images, labels, count, classes\]/,
    ],
  ];
  for (const [v, re] of cases) {
    assert.throws(() => asReader(v, model), (e) => invalid(expects)(e) && invalid(re)(e), String(re));
  }
  const asyncGen = (async function* () {})();
  assert.throws(() => asReader(asyncGen), invalid(/async iterable.*Array.fromAsync/));
  // Datasets and tensor batches need a single-input model to name the input.
  assert.throws(() => asReader(toy()), invalid(/dataset "toy" feeds one input and needs the model/));
  assert.throws(
    () => asReader(toy(), model),
    invalid(/dataset "toy" feeds one input but two-input k=2 has 2 inputs \[a, b\]/),
  );
  assert.throws(() => asReader([new Tensor(new Float32Array(3), [1, 3])], model), invalid(/has 2 inputs/));
  // Feeds that do not match the model's inputs.
  assert.throws(
    () => asReader([{ a: new Tensor(new Float32Array(3), [1, 3]), c: new Tensor(new Float32Array(3), [1, 3]) }], model),
    invalid(/feeds \[a, c\] but two-input k=2 takes \[a, b\]; missing b; unknown c/),
  );
});
