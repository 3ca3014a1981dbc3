/**
 * Issue 15, the remaining cases: float64 squared norms in k-means (clusters at +-1e20), product-quantizer codes and
 * codebooks, labels and pixel counts, opsets checked at `ptq()`, custom-domain ops in the gradient compiler,
 * impossible allocations, and seeds validated and hashed in full. Each ended in a silent wrong answer, NaN, a raw
 * TypeError/RangeError or the wrong error code before the fix.
 */
import assert from "node:assert/strict";
import { QuantlabError, type QuantlabErrorCode } from "../../lib/errors.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { kmeans } from "../../lib/vq/kmeans.ts";
import { assignNearest, prepareCentroids } from "../../lib/vq/nearest.ts";
import { ProductQuantizer, productQuantizer } from "../../lib/vq/product_quantizer.ts";
import { imageDataset } from "../../lib/data/images.ts";
import { batches } from "../../lib/data/batching.ts";
import { epochOrder, labelledBatch } from "../../lib/grad/train_data.ts";
import { evaluateModel, Trainer } from "../../lib/grad/train.ts";
import { sgd } from "../../lib/grad/optim.ts";
import { buildGradientGraph } from "../../lib/grad/compiler.ts";
import { mseLoss } from "../../lib/grad/losses.ts";
import { NetBuilder } from "../../lib/models/layers.ts";
import { digitsCnn } from "../../lib/models/digits_cnn.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { zeroShot } from "../../lib/zeroshot/distill.ts";
import { simdKernel } from "../../lib/vq/simd_kernel.ts";

const typed = (code: QuantlabErrorCode, re?: RegExp) => (e: unknown) =>
  e instanceof QuantlabError && e.code === code && (!re || re.test(e.message));

const WEB = { backend: "web", threads: 1 } as const;

// ---- 1. k-means squared norms in float64 -------------------------------------------------------------------

Deno.test("k-means: well-separated clusters at +-1e20 stay apart on both backends (float64 norms)", () => {
  const x = new Float32Array([1e20, 1e20, 1.01e20, 1e20, -1e20, -1e20, -1.01e20, -1e20]);
  const backends = simdKernel() ? ["js", "simd"] as const : ["js"] as const;
  for (const backend of backends) {
    const m = kmeans().centroids(2).backend(backend).seed(0).fit(x, 2);
    const a = m.assignments;
    assert.equal(a[0], a[1], backend);
    assert.equal(a[2], a[3], backend);
    assert.notEqual(a[0], a[2], `${backend}: both clusters collapsed into one`);
    assert.ok(Number.isFinite(m.inertia) && m.inertia < 1e37, `${backend}: inertia ${m.inertia}`);
    // Large and tiny scales through the nearest-centroid search directly.
    for (const s of [1e20, 1e-25]) {
      const cents = prepareCentroids(new Float32Array([-s, 0, s, 0]), 2, 2);
      assert.ok(cents.norms instanceof Float64Array && Number.isFinite(cents.norms[0]) && cents.norms[0] > 0);
      const index = new Int32Array(2);
      assignNearest(cents, { points: new Float32Array([0.9 * s, 0, -0.9 * s, 0]), n: 2, index, backend });
      assert.deepEqual([...index], [1, 0], `${backend}, scale ${s}`);
    }
  }
  // PQ training goes through the same search.
  const pq = productQuantizer().subvectors(1).centroids(2).seed(0).fit(x, 2);
  const { codes } = pq.encode(x, 2);
  assert.notEqual(codes[0], codes[2]);
});

// ---- 2. product-quantizer codes and codebooks ------------------------------------------------------------------

Deno.test("PQ: out-of-range codes and NaN codebooks or queries are typed errors naming the first bad index", () => {
  const pq = ProductQuantizer.fromCodebooks(new Float32Array([0, 0, 1, 1, 5, 5, -5, -5]), 2, 2, 4);
  assert.throws(
    () => pq.asymmetricDistances([0, 0, 0, 0], new Uint8Array([1, 7])),
    typed("INVALID_ARGUMENT", /code 7 at flat index 1/),
  );
  assert.throws(
    () => pq.decode(new Uint8Array([0, 1, 2, 0])),
    typed("INVALID_ARGUMENT", /code 2 at flat index 2 \(vector 1, sub-space 0\)/),
  );
  assert.throws(() => pq.decode([0, 1] as unknown as Uint8Array), typed("INVALID_ARGUMENT", /Uint8Array/));
  assert.throws(() => pq.asymmetricDistances([0, 0, 0], new Uint8Array(2)), typed("SHAPE_MISMATCH"));
  assert.throws(() => pq.distanceTable([0, NaN, 0, 0]), typed("NON_FINITE", /query.*NaN.*index 1/));
  assert.throws(
    () => ProductQuantizer.fromCodebooks(new Float32Array([0, 0, 1, NaN, 5, 5, -5, -5]), 2, 2, 4),
    typed("NON_FINITE", /codebooks.*index 3/),
  );
  // Healthy input still works.
  assert.deepEqual([...pq.asymmetricDistances([0, 0, 0, 0], new Uint8Array([0, 0]))], [50]);
});

Deno.test("k-means and PQ weights: decode rejects NaN tables and bad codes, naming the tensor", () => {
  const w = Tensor.from([0.1, 0.12, -1, -1.1, 2, 2.05, 0.11, -0.9], [2, 4]);
  const km = kmeans().bits(2).init("linear").fitWeights(w, { name: "fc.weight" });
  const e = km.encode();
  const nanTable = { ...e, tables: { centroids: Float32Array.from([NaN, 0, 1, 2]) } };
  assert.throws(() => km.decode(nanTable), typed("NON_FINITE", /fc\.weight.*centroids.*index 0/));
  const badCode = { ...e, codes: new Tensor<"uint8">(Uint8Array.from([0, 1, 2, 3, 9, 0, 0, 0]), [2, 4]) };
  assert.throws(() => km.decode(badCode), typed("INVALID_ARGUMENT", /fc\.weight: code 9 at flat index 4/));
  const fractional = { ...e, codes: new Tensor(Float32Array.from([0, 1.5, 0, 0, 0, 0, 0, 0]), [2, 4]) };
  assert.throws(() => km.decode(fractional as never), typed("INVALID_ARGUMENT", /code 1.5 at flat index 1/));

  const cw = Tensor.from(new Prng(0).fillNormal(new Float32Array(8 * 4 * 3 * 3)) as Float32Array, [8, 4, 3, 3]);
  const pw = productQuantizer().centroids(4).fitWeights(cw, { name: "conv.weight" });
  const pe = pw.encode();
  const cb = pe.tables.codebooks.slice();
  cb[7] = Infinity;
  assert.throws(
    () => pw.decode({ ...pe, tables: { codebooks: cb } }),
    typed("NON_FINITE", /conv\.weight.*codebooks.*index 7/),
  );
  const codes = Uint8Array.from(pe.codes.data);
  codes[5] = 200;
  assert.throws(
    () => pw.decode({ ...pe, codes: new Tensor<"uint8">(codes, pe.codes.shape) }),
    typed("INVALID_ARGUMENT", /conv\.weight: block code 200 at flat index 5/),
  );
});

// ---- 3. labels and pixel counts -----------------------------------------------------------------------------

function toySet(labels = [0, 1, 0, 1, 1, 0, 1, 0]) {
  return imageDataset({
    name: "toy",
    pixels: Uint8Array.from({ length: labels.length * 2 }, (_, i) => (i * 7) % 3),
    labels: Uint8Array.from(labels),
    channels: 2,
    height: 1,
    width: 1,
    pixelMax: 2,
  });
}

Deno.test("datasets: a pixel array shorter than the declared shape and labels outside [0, classes) are typed", () => {
  const ds = toySet();
  const short = { ...ds, pixels: ds.pixels.subarray(0, 13) };
  assert.throws(
    () => [...batches(short)],
    typed("SHAPE_MISMATCH", /13 pixels for 8 images of \[2, 1, 1\] \(expected 16\)/),
  );
  assert.throws(() => labelledBatch(short, [0, 1]), typed("SHAPE_MISMATCH", /13 pixels/));
  const fewLabels = { ...ds, labels: ds.labels.subarray(0, 7) };
  assert.throws(() => labelledBatch(fewLabels, [0]), typed("SHAPE_MISMATCH", /7 labels for count = 8/));
  // A label past the class names: at construction, and when read from a hand-edited copy.
  assert.throws(
    () =>
      imageDataset({
        name: "bad",
        pixels: new Uint8Array(3),
        labels: Uint8Array.from([0, 5, 5]),
        height: 1,
        width: 1,
        classes: ["a", "b"],
      }),
    typed("DATASET", /label 5 but only 2 class names \(first at image 1; 2 of 3 labels outside \[0, 2\)\)/),
  );
  const edited = { ...ds, labels: Uint8Array.from([0, 1, 0, 7, 1, 0, 1, 0]) };
  assert.throws(() => labelledBatch(edited, [2, 3]), typed("DATASET", /label 7 at image 3 is outside \[0, 2\)/));
  assert.throws(() => [...batches(edited, { batchSize: 4 })], typed("DATASET", /label 7 at image 3/));
});

function toyNet() {
  const net = new NetBuilder({ channels: 2, height: 1, width: 1, seed: 0 });
  return net.finish(net.linear("fc", net.flatten(net.batchNorm("bn", net.input, 2)), 2, 2), "toy");
}

Deno.test("Trainer.step and evaluateModel: labels outside the model's classes are DATASET errors, nothing updated", async () => {
  const ds = toySet();
  const t = await Trainer.create({
    model: toyNet(),
    optimizer: sgd({ lr: 0.1 }),
    sample: labelledBatch(ds, [0, 1]),
    session: WEB,
  });
  try {
    const before = new Map([...t.params].map(([k, v]) => [k, v.slice()]));
    const x = labelledBatch(ds, [0, 1, 2, 3]).x;
    for (const bad of [[-1, 0, 1, 0], [0, 1, 2, 0]]) {
      const labels = new Tensor<"int32">(Int32Array.from(bad), [4]);
      await assert.rejects(
        () => t.step({ x, labels }),
        typed("DATASET", /label (-1|2) at batch position (0|2) is outside \[0, 2\)/),
      );
    }
    assert.equal(t.steps, 0);
    for (const [k, v] of t.params) assert.deepEqual([...v], [...before.get(k)!], k);
    const ok = await t.step(labelledBatch(ds, [0, 1, 2, 3]));
    assert.ok(Number.isFinite(ok.loss));
  } finally {
    await t.release();
  }
  // A dataset with more classes than the model's logits.
  const three = imageDataset({
    name: "three",
    pixels: new Uint8Array(6),
    labels: Uint8Array.from([0, 1, 2]),
    channels: 2,
    height: 1,
    width: 1,
  });
  await assert.rejects(
    () => evaluateModel(toyNet(), three, { session: WEB }),
    typed("DATASET", /label 2 .*outside \[0, 2\)/),
  );
});

// ---- 4. opsets at ptq(), calibrateOn(a tensor) ------------------------------------------------------------------

Deno.test("ptq(): an unsupported opset fails at once naming the model and the range; calibrateOn(tensor) is typed", () => {
  for (const v of [999, 7]) {
    const m = digitsCnn();
    m.proto.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")!.version = v;
    assert.throws(
      () => ptq(m),
      typed("UNSUPPORTED", new RegExp(`digits_cnn: ptq\\(\\) supports ai.onnx opsets 13..22, the model imports ${v}`)),
    );
  }
  const p = ptq(digitsCnn());
  assert.throws(
    () => p.calibrateOn(Tensor.zeros([4, 1, 8, 8]) as never),
    typed("INVALID_ARGUMENT", /a single batch goes in an array/),
  );
  assert.throws(() => p.calibrateOn(42 as never), typed("INVALID_ARGUMENT"));
  // The array form is accepted.
  p.calibrateOn([Tensor.zeros([4, 1, 8, 8])]);
});

// ---- 5. custom-domain ops in the gradient compiler ------------------------------------------------------------

Deno.test("gradient compiler: a custom-domain op is UNSUPPORTED_OP naming the node and the domain", async () => {
  const p = emptyModel(17);
  p.opsetImport.push({ domain: "com.example", version: 1 });
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 1 }] } } });
  p.graph.initializer.push(makeTensorProto("w", new Float32Array([3]), [1]));
  p.graph.node.push(
    { input: ["x", "w"], output: ["h"], name: "mul", opType: "Mul", domain: "", attribute: [] },
    { input: ["h"], output: ["y"], name: "magic", opType: "Swish", domain: "com.example", attribute: [] },
  );
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  const m = OnnxModel.fromProto(p, "custom.onnx");
  const x = Tensor.from([1, 2], [2, 1]), t = Tensor.from([0, 0], [2, 1]);
  await assert.rejects(
    () => buildGradientGraph(m, { loss: mseLoss("y", "t"), wrt: ["w"], feeds: { x, t }, session: WEB }),
    typed("UNSUPPORTED_OP", /custom\.onnx: no gradient rule for Swish "magic" in domain "com\.example"/),
  );
});

// ---- 6. impossible allocations ------------------------------------------------------------------------------------

Deno.test("Tensor.zeros and zeroShot().noise(): negative or huge shapes are typed errors with the element count", () => {
  assert.throws(() => Tensor.zeros([-1]), typed("SHAPE_MISMATCH", /dimension -1 at axis 0/));
  assert.throws(() => Tensor.zeros([2, 0.5]), typed("SHAPE_MISMATCH", /dimension 0.5 at axis 1/));
  assert.throws(() => Tensor.zeros([1e6, 1e6]), typed("INVALID_ARGUMENT", /too large: 1000000000000 elements/));
  assert.equal(Tensor.zeros([0, 3]).size, 0);
  const t0 = performance.now();
  const z = zeroShot(digitsCnn()).inputShape([1, 1e6, 1e6]).batch(2);
  assert.throws(() => z.noise(), typed("INVALID_ARGUMENT", /digits_cnn.*too large: 2000000000000 elements/));
  assert.throws(() => zeroShot(digitsCnn()).batch(1e9).batches(100).noise(), typed("INVALID_ARGUMENT", /too large/));
  assert.ok(performance.now() - t0 < 2000, "refused before allocating");
});

// ---- 7. seeds validated and hashed in full ----------------------------------------------------------------------

Deno.test("seeds: 0, 2^32, 2^40 and -1 give different streams; non-safe-integer seeds are typed errors", () => {
  const first = (s: number) => {
    const p = new Prng(s);
    return [p.nextUint32(), p.nextUint32()].join();
  };
  const streams = [0, 2 ** 32, 2 ** 40, -1, 2 ** 32 - 1].map(first);
  assert.equal(new Set(streams).size, streams.length, streams.join(" | "));
  for (const bad of [0.5, NaN, Infinity, -Infinity, 2 ** 53, 1e300]) {
    assert.throws(() => new Prng(bad), typed("INVALID_ARGUMENT", /Prng seed must be an integer/), String(bad));
  }
  // Stochastic rounding, k-means/PQ, zeroShot, shuffles: the same rules end to end.
  const x = new Prng(3).fillNormal(new Float32Array(256)) as Float32Array;
  const fq = (seed: number) =>
    quantizer().int(4).rounding("stochastic", { seed }).fakeQuantize(x, [256], "w").values.data.join();
  assert.notEqual(fq(0), fq(2 ** 32));
  assert.notEqual(fq(2 ** 32), fq(2 ** 40));
  assert.equal(fq(2 ** 40), fq(2 ** 40));
  assert.throws(
    () => quantizer().rounding("stochastic", { seed: 2 ** 60 }),
    typed("INVALID_ARGUMENT", /rounding seed/),
  );
  assert.throws(() => kmeans().seed(2 ** 53), typed("INVALID_ARGUMENT", /k-means seed/));
  assert.throws(() => productQuantizer().seed(-(2 ** 60)), typed("INVALID_ARGUMENT", /PQ seed/));
  assert.throws(() => zeroShot(digitsCnn()).seed(1.5), typed("INVALID_ARGUMENT", /zeroShot\(\)\.seed/));
  const noise = (seed: number) => zeroShot(digitsCnn()).batch(2).seed(seed).noise().images().data.slice(0, 8).join();
  assert.notEqual(noise(0), noise(2 ** 32));
  const ds = toySet();
  const order = (seed: number) =>
    [...batches(ds, { batchSize: 8, shuffleSeed: seed })][0].labels.join() + "/" +
    [...batches(ds, { batchSize: 8, shuffleSeed: seed })][0].x.data.join();
  assert.notEqual(epochOrder(64, 0, 0).join(), epochOrder(64, 2 ** 32, 0).join());
  assert.equal(epochOrder(64, 2 ** 32, 3).join(), epochOrder(64, 2 ** 32, 3).join());
  assert.throws(() => [...batches(ds, { shuffleSeed: 2 ** 53 })], typed("INVALID_ARGUMENT"));
  assert.equal(order(5), order(5));
});
