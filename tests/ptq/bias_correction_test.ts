import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { foldBatchNorm } from "../../lib/onnx/fold_bn.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { batches, subset } from "../../lib/data/batching.ts";
import { correctBias } from "../../lib/ptq/bias_correction.ts";
import { calibratePlan } from "../../lib/ptq/calibrate_pass.ts";
import { readerFromFeeds } from "../../lib/data/reader.ts";
import { materializeQdq } from "../../lib/ptq/materialize.ts";
import { buildPlan } from "../../lib/ptq/policy.ts";
import { evaluateAccuracy } from "../../lib/ptq/evaluate.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { fashionMnistAvailable, modelPath } from "../onnx/_fixtures.ts";

/** Mean over output channels of |mean over images of (approx - ref)|, and the outputs' mean |ref|. */
async function meanOutputError(ref: OnnxModel, approx: OnnxModel, xs: Tensor<"float32">[]): Promise<number> {
  const input = ref.graph.input[0].name, output = ref.graph.output[0].name;
  const a = await createSession(ref, { backend: "node" }), b = await createSession(approx, { backend: "node" });
  let sums: Float64Array | undefined;
  let n = 0;
  for (const x of xs) {
    const y0 = (await a.run({ [input]: x }))[output], y1 = (await b.run({ [input]: x }))[output];
    const c = y0.shape[1], inner = y0.size / (y0.shape[0] * c);
    sums ??= new Float64Array(c);
    const d0 = y0.data as Float32Array, d1 = y1.data as Float32Array;
    for (let i = 0; i < d0.length; i++) sums[Math.floor(i / inner) % c] += d1[i] - d0[i];
    n += y0.shape[0] * inner;
  }
  return sums!.reduce((s, v) => s + Math.abs(v / n), 0) / sums!.length;
}

/** Conv(4->8) -> Relu -> Conv(8->6): a small float model with random weights. */
function twoConvs(seed: number): OnnxModel {
  const rng = new Prng(seed);
  const p = emptyModel(13);
  p.graph.input.push({
    name: "x",
    type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 4 }, { value: 8 }, { value: 8 }] } },
  });
  const w1 = rng.fillNormal(new Float32Array(8 * 4 * 9)) as Float32Array;
  const w2 = (rng.fillNormal(new Float32Array(6 * 8 * 9)) as Float32Array).map((v) => v * 0.3);
  p.graph.initializer.push(
    makeTensorProto("w1", w1, [8, 4, 3, 3]),
    makeTensorProto("b1", new Float32Array(8).fill(0.1), [8]),
    makeTensorProto("w2", w2, [6, 8, 3, 3]),
  );
  const pads = [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }];
  p.graph.node.push(
    { input: ["x", "w1", "b1"], output: ["h"], name: "c1", opType: "Conv", domain: "", attribute: pads },
    { input: ["h"], output: ["r"], name: "relu", opType: "Relu", domain: "", attribute: [] },
    { input: ["r", "w2"], output: ["y"], name: "c2", opType: "Conv", domain: "", attribute: pads },
  );
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  return OnnxModel.fromProto(p);
}

Deno.test("bias correction: each layer's mean error on the calibration data drops over 20x", async () => {
  const m = twoConvs(5);
  const rng = new Prng(11);
  // Non-zero-mean inputs make the weight error show in the mean output.
  const xs = Array.from({ length: 4 }, () => {
    const v = rng.fillNormal(new Float32Array(16 * 4 * 64)) as Float32Array;
    return new Tensor<"float32">(v.map((u) => u + 0.5), [16, 4, 8, 8]);
  });
  const w = quantizer().int(3).symmetric(); // coarse per-tensor weights: large mean shifts
  const plan = buildPlan(m, { weights: w, activations: quantizer().uint(8).asymmetric() });
  const reader = readerFromFeeds(xs.map((x) => ({ x })));
  const act = await calibratePlan(m, plan, reader, { session: { backend: "node" } });
  const state = { model: m, plan, activationParams: act };
  const r = await correctBias(state, reader, { backend: "node" });
  assert.equal(r.layers.length, 2);
  assert.deepStrictEqual(r.layers.map((l) => l.channels), [8, 6]);
  for (const l of r.layers) {
    assert.ok(l.meanAbsErrorBefore > 0.02, `${l.node}: before ${l.meanAbsErrorBefore}`);
    assert.ok(
      l.meanAbsErrorAfter < l.meanAbsErrorBefore / 20,
      `${l.node}: ${l.meanAbsErrorBefore} -> ${l.meanAbsErrorAfter}`,
    );
  }
  // c2 had no bias: it got one, stored as int32 in the QDQ model.
  const c2 = r.model.graph.node.find((n) => n.name === "c2")!;
  assert.equal(c2.input.length, 3);
  const plain = materializeQdq(state).model;
  const before = await meanOutputError(m, plain, xs), after = await meanOutputError(m, r.qdq.model, xs);
  assert.ok(after < before / 20, `mean output error ${before} -> ${after}`);
  // Inputs untouched; no data -> typed error.
  assert.equal(m.graph.node[2].input.length, 2);
  await assert.rejects(
    correctBias(state, { name: "empty", identity: "empty", inputs: ["x"], batches: () => [] }),
    (e: unknown) => e instanceof QuantlabError && e.code === "EMPTY_TENSOR",
  );
});

Deno.test({
  name: "bias correction at W4A8 on the residual fixture: lower mean output error on held-out images, accuracy kept",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const [train, test] = await Promise.all([loadFashionMnist("train"), loadFashionMnist("test")]);
    const model = await OnnxModel.load(modelPath("resnet8_op13"));
    const base = ptq(model)
      .weights(quantizer().int(4).symmetric().perChannel())
      .calibrateOn(train, { count: 512 })
      .batchSize(256)
      .session({ backend: "node" });
    const corrected = base.biasCorrection();
    assert.match(corrected.toString(), /biasCorrection\(512\)/);
    const [a, b] = await Promise.all([base.quantize(), corrected.quantize()]);
    assert.ok(b.biasCorrection && b.biasCorrection.length === 10, "all 10 Conv/Gemm layers corrected");
    const held = [...batches(test, { batchSize: 500, count: 1000 })].map((x) => x.x);
    const float = foldBatchNorm(model).model;
    const eA = await meanOutputError(float, a.qdq, held), eB = await meanOutputError(float, b.qdq, held);
    assert.ok(eB < eA / 2, `mean logit error ${eA} -> ${eB}`);
    const small = subset(test, 0, 2000);
    const accA = (await evaluateAccuracy(a.qdq, small, { backend: "node", batchSize: 500 })).top1;
    const accB = (await evaluateAccuracy(b.qdq, small, { backend: "node", batchSize: 500 })).top1;
    assert.ok(accB >= accA - 0.005, `accuracy ${accA} -> ${accB}`);
    // The QOperator lowering still applies to the corrected model.
    assert.ok(b.qoperator.model.graph.node.some((n) => n.opType === "QLinearConv"));
    assert.deepStrictEqual(b.qoperator.float, []);
  },
});
