// The fluent API end to end on the digits CNN (small settings) and its typed errors.
import assert from "node:assert/strict";
import { batches, subset } from "../../lib/data/batching.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { evaluateAccuracy } from "../../lib/ptq/evaluate.ts";
import { captureValues } from "../../lib/vqmodel/activations.ts";
import { initializerValues } from "../../lib/vqmodel/fit.ts";
import { reestimateBatchNorm } from "../../lib/vqmodel/finetune.ts";
import { vqModel } from "../../lib/vqmodel/vq_model.ts";
import { fixtureInput, tinyModel } from "./_fixtures.ts";

const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
const digits = await loadDigits();
const train = subset(digits, 0, 1297), test = subset(digits, 1297, 500);

Deno.test("kmeans: linear init over [min, max], k = 2^bits per layer; fine-tuning moves codebooks only and helps", async () => {
  const q = await vqModel(model).kmeans({ bits: 1, iterations: 0 }).quantize();
  for (const l of q.layers) {
    const w = initializerValues(model, l.weight);
    const lo = w.reduce((a, b) => Math.min(a, b)), hi = w.reduce((a, b) => Math.max(a, b));
    // zero Lloyd iterations: the centroids are the linear initialisation itself
    assert.deepEqual([...l.codebook], [Math.fround(lo), Math.fround(hi)], l.weight);
  }
  const base = await vqModel(model).kmeans({ bits: 2 }).quantize();
  const tuned = await vqModel(model).kmeans({ bits: 2 }).data(train).finetune({ steps: 40, loss: "labels" }).quantize();
  base.layers.forEach((l, i) => assert.deepEqual(tuned.layers[i].codes, l.codes, "codes frozen"));
  assert.ok(tuned.layers.some((l, i) => l.codebook.some((v, j) => v !== base.layers[i].codebook[j])));
  const a0 = (await evaluateAccuracy(base.model, test)).top1, a1 = (await evaluateAccuracy(tuned.model, test)).top1;
  assert.ok(a1 > a0 + 0.05, `fine-tuning: ${a0} -> ${a1}`);
  assert.ok(Math.abs(base.bitsPerWeight - 2.036) < 0.01, String(base.bitsPerWeight));
});

Deno.test("pq: skips the first layer, model-wide bit budget, layerwise + global fine-tune + BatchNorm", async () => {
  const b = vqModel(model).pq({ targetBits: 1 }).data(train, { batchSize: 32, activationBatches: 2 });
  assert.deepEqual(b.targets().map((s) => s.weight), ["conv2.weight", "conv3.weight", "fc.weight"]);
  const q = await b.layerwise({ steps: 5 }).finetune({ steps: 20 }).batchNorm({ images: 128 }).quantize();
  // the model-wide budget holds, and doubling any layer's k would break it
  assert.ok(q.bitsPerWeight <= 1, String(q.bitsPerWeight));
  const total = q.layers.reduce((a, l) => a + l.codeBits() + l.tableBits(), 0);
  const n = q.layers.reduce((a, l) => a + l.size, 0);
  for (const l of q.layers) {
    const more = l.blocks + 32 * l.k * l.blockSize;
    assert.ok(l.k * 2 > Math.min(256, l.blocks / 4) || total + more > n, `${l} could double`);
  }
  assert.equal(q.layers[0].blockSize, 9);
  assert.equal(q.layers[2].blockSize, 4);
  assert.ok(Object.keys(q.losses).length === 4);
  const acc = (await evaluateAccuracy(q.model, test)).top1;
  assert.ok(acc > 0.5, `pq ~1 bit accuracy ${acc}`);
  assert.ok(q.compressionRatio > 10, String(q.compressionRatio));
});

Deno.test("reestimateBatchNorm: running mean / unbiased variance = statistics of the BN inputs", async () => {
  const tiny = await tinyModel();
  const x = fixtureInput();
  const m = await reestimateBatchNorm(tiny, [x]);
  const [[v]] = await captureValues(tiny, ["input"].map(() => tiny.graph.node[1].input[0]), [x]);
  const [N, C, H, W] = v.shape, d = v.data as Float32Array, n = N * H * W;
  const mean = initializerValues(m, "bn1.running_mean"), vr = initializerValues(m, "bn1.running_var");
  for (let c = 0; c < C; c++) {
    let s = 0, q = 0;
    for (let i = 0; i < N; i++) for (let k = 0; k < H * W; k++) s += d[(i * C + c) * H * W + k];
    const mu = s / n;
    for (let i = 0; i < N; i++) for (let k = 0; k < H * W; k++) q += (d[(i * C + c) * H * W + k] - mu) ** 2;
    assert.ok(Math.abs(mean[c] - mu) < 1e-5, `mean ${c}`);
    assert.ok(Math.abs(vr[c] - q / (n - 1)) < 1e-4, `var ${c}`);
  }
});

Deno.test("typed errors name what is wrong", async () => {
  assert.throws(
    () => vqModel(model).kmeans({ bits: 0 }),
    (e: Error & { code?: string }) => e.code === "BITS_OUT_OF_RANGE",
  );
  assert.throws(
    () => vqModel(model).pq({ centroids: 1 }),
    (e: Error & { code?: string }) => e.code === "INVALID_ARGUMENT",
  );
  assert.throws(
    () => vqModel(model).kmeans({ bits: 2 }).exclude("nope.weight").targets(),
    (e: Error) => e.message.includes("nope.weight"),
  );
  await assert.rejects(
    () => vqModel(model).kmeans({ bits: 2 }).finetune({ steps: 2 }).quantize(),
    (e: Error) => e.message.includes(".data("),
  );
  await assert.rejects(() => vqModel(model).quantize(), (e: Error) => e.message.includes(".kmeans"));
  // unused: batches import keeps the data path typed
  assert.ok([...batches(test, { batchSize: 250 })].length === 2);
});

Deno.test("codebookBits 16: float16 centroids, counted at 16 bits, for both methods", async () => {
  for (const b of [vqModel(model).kmeans({ bits: 2, codebookBits: 16 }), vqModel(model).pq({ codebookBits: 16 })]) {
    const q = await b.quantize();
    for (const l of q.layers) {
      assert.equal(l.codebookBits, 16);
      assert.ok(l.codebook.every((v) => Math.f16round(v) === v), l.weight);
      assert.equal(l.tableBits(), 16 * l.codebook.length);
    }
  }
  assert.throws(() => vqModel(model).pq({ codebookBits: 8 as 16 }), (e: Error) => e.message.includes("codebookBits"));
});
