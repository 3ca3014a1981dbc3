/**
 * QAT BatchNorm modes and observers on the digits CNN (three Conv + BatchNormalization pairs): folding with batch
 * statistics then freezing (Jacob et al. 2018), `batchNorm("keep")` with frozen running statistics, and
 * `freezeObservers(k)`. Each run checks that the exported QDQ model computes what the training graph computed.
 */
import assert from "node:assert/strict";
import { subset, trainTestSplit } from "../../lib/data/batching.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { qat } from "../../lib/qat/mod.ts";

const MODEL = new URL("../../datasets/models/digits_cnn.onnx", import.meta.url);
const NODE = { backend: "node" as const, threads: 2 };
const split = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });
const train = subset(split.train, 0, 384), test = subset(split.test, 0, 256);

function base(model: OnnxModel) {
  return ptq(model).weights(quantizer().int(4).symmetric().perChannel())
    .activations(quantizer().uint(4).asymmetric()).calibrateOn(train, { count: 256 }).session(NODE);
}

function init(m: OnnxModel, name: string): Float32Array {
  return tensorValues(indexGraph(m.graph).initializers.get(name)!) as Float32Array;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

Deno.test("qat batchNorm fold with batch statistics: running statistics move, freeze, export matches", async () => {
  const model = await OnnxModel.load(MODEL);
  const p = base(model);
  const start = (await p.state()).model;
  const weights = start.graph.node.filter((n) => n.opType === "Conv").map((n) => n.input[1]);
  assert.equal(weights.length, 3);
  // A vanishing learning rate: the folded weights (W gamma / sqrt(running_var + eps)) can then only move through the
  // running statistics, which the batch-statistics phase updates from the quantized network's own batches. (Biases
  // are compared neither way: export rounds them to their int32 grid.)
  for (const [freezeEpoch, epochs] of [[1, 2], [3, 1]]) {
    const q = qat(p).batchNorm("fold", { freezeEpoch }).optimizer({ kind: "adam", lr: 1e-9 }).epochs(epochs)
      .batchSize(64);
    assert.ok(q.toString().includes(`batch statistics until epoch ${freezeEpoch}`), q.toString());
    const r = await q.train(train, { test });
    const ev = await r.evaluate(test);
    assert.equal(ev.qdq, ev.training, `QDQ ${ev.qdq} vs training graph ${ev.training}`);
    assert.equal(ev.training, r.history.at(-1)!.testAccuracy);
    assert.ok(![...r.params.keys()].some((k) => k.endsWith("_bn_raw")), "export parameters are the folded ones");
    const moved = Math.max(...weights.map((w) => maxDiff(init(r.float, w), init(start, w))));
    assert.ok(moved > 1e-3, `folded weights moved by ${moved}`);
    assert.ok(ev.training > 0.8, `${ev.training}`);
  }
  // Without batch statistics nothing moves at this learning rate.
  const frozen = await qat(p).optimizer({ kind: "adam", lr: 1e-9 }).epochs(1).batchSize(64).train(train);
  const still = Math.max(...weights.map((w) => maxDiff(init(frozen.float, w), init(start, w))));
  assert.ok(still < 1e-5, `${still}`);
});

Deno.test("qat batchNorm keep: running statistics frozen, scale and shift trained, BN exported as a float op", async () => {
  const model = await OnnxModel.load(MODEL);
  const p = base(model).foldBatchNorm(false);
  const r = await qat(p).batchNorm("keep").optimizer({ kind: "adam", lr: 1e-2 }).epochs(1).batchSize(64)
    .train(train, { test });
  const bns = model.graph.node.filter((n) => n.opType === "BatchNormalization");
  assert.equal(bns.length, 3);
  let trained = 0;
  for (const bn of bns) {
    assert.deepStrictEqual(init(r.float, bn.input[3]), init(model, bn.input[3]), "running mean frozen");
    assert.deepStrictEqual(init(r.float, bn.input[4]), init(model, bn.input[4]), "running variance frozen");
    trained += maxDiff(init(r.float, bn.input[1]), init(model, bn.input[1])) > 1e-3 ? 1 : 0;
    trained += maxDiff(init(r.float, bn.input[2]), init(model, bn.input[2])) > 1e-3 ? 1 : 0;
  }
  assert.equal(trained, 6, "every BN scale and shift was trained");
  assert.equal(r.qdq.graph.node.filter((n) => n.opType === "BatchNormalization").length, 3);
  const ev = await r.evaluate(test);
  assert.equal(ev.qdq, ev.training);
});

Deno.test("qat freezeObservers(k): activation ranges re-calibrated before epoch k, fixed otherwise", async () => {
  const model = await OnnxModel.load(MODEL);
  const p = base(model);
  const calibrated = (await p.state()).activationParams;
  const same = (a: ReadonlyMap<string, { scale: Float32Array }>) =>
    [...calibrated].every(([k, v]) => a.get(k)!.scale[0] === v.scale[0]);
  const run = (k: number) =>
    qat(p).freezeObservers(k).optimizer({ kind: "adam", lr: 3e-3 }).epochs(2).batchSize(64).train(train, { test });
  const fixed = await run(0), refreshed = await run(2);
  assert.ok(same(fixed.run.state.activationParams), "freezeObservers(0): the PTQ calibration throughout");
  assert.ok(!same(refreshed.run.state.activationParams), "freezeObservers(2): re-calibrated at epoch 1");
  // The re-calibration ran on the trained float weights of epoch 0 (not the start).
  const ev = await refreshed.evaluate(test);
  assert.equal(ev.qdq, ev.training);
});

Deno.test("qat DoReFa weights: trains, exports on the odd-code int grid, bit-equal to the training graph's weights", async () => {
  const model = await OnnxModel.load(MODEL);
  // ONNX Runtime's "all" graph optimizations fuse the QDQ export's Q/DQ pairs into integer kernels whose rounding
  // differs from the float training graph by an image or two; with optimizations disabled the QDQ arithmetic stays
  // float and the export reproduces the training graph exactly.
  const p = base(model).session({ ...NODE, optimization: "disabled" });
  const r = await qat(p).fakeQuant({ weights: "dorefa" }).optimizer({ kind: "adam", lr: 1e-3 }).epochs(1).batchSize(64)
    .train(train, { test });
  const ev = await r.evaluate(test);
  assert.equal(ev.qdq, ev.training, `QDQ ${ev.qdq} vs training graph ${ev.training}`);
  assert.ok(ev.training > 0.8, `${ev.training}`);
  const w = r.state.plan!.weights[1].tensor;
  const scale = (tensorValues(indexGraph(r.qdq.graph).initializers.get(`${w}_scale`)!) as Float32Array)[0];
  const trained = r.run.dorefaValues!.get(w)!;
  const codes = tensorValues(indexGraph(r.qdq.graph).initializers.get(`${w}_quantized`)!) as Int8Array;
  assert.ok(codes.every((c) => Math.abs(c) % 2 === 1 && Math.abs(c) <= 15), "odd codes in [-15, 15]");
  assert.ok(codes.every((c, i) => Math.fround(c * scale) === trained[i]), "export = the training graph's weights");
  assert.ok(new Set(codes).size > 8, "most of the 16 levels are used");
});
