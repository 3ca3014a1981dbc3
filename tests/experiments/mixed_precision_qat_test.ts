/**
 * QAT after bit allocation (lib/experiments/mixed_precision_qat.ts): a mixed allocation's per-layer widths survive
 * `qat(allocation.apply(base))` into the training graph's grids and into the exported QDQ and QOperator models (every
 * layer's weight codes within its own `2^b` levels), and the export reproduces the training-time evaluation. On the
 * digits CNN (no Fashion-MNIST needed).
 */
import assert from "node:assert/strict";
import { trainTestSplit } from "../../lib/data/batching.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { evaluateModel } from "../../lib/grad/train.ts";
import { hawqAnalysis } from "../../lib/mixed/hawq.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import type { SessionOptions } from "../../lib/onnx/session.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { qat } from "../../lib/qat/qat.ts";

const MODEL = new URL("../../datasets/models/digits_cnn.onnx", import.meta.url);
const NODE: SessionOptions = { backend: "node", threads: 2 };

Deno.test("QAT after allocation: per-layer bits survive into the training graph and the QDQ / QOperator exports", async () => {
  const model = await OnnxModel.load(MODEL);
  const { train, test } = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });
  const base = ptq(model).weights(quantizer().int(8).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric()).firstLast(8).calibrateOn(train, { count: 256 }).session(NODE);
  const analysis = await hawqAnalysis(base, train, {
    bits: [2, 3, 4, 8],
    count: 16,
    batchSize: 16,
    trace: { maxIterations: 2 },
  });
  const searched = analysis.layers.filter((l) => l.fixed === undefined).map((l) => l.node);
  assert.equal(searched.length, 2, `searched layers ${searched}`);
  // Two different sub-8-bit widths in one model, first and last layers at 8.
  const bits = { ...analysis.uniform(8), [searched[0]]: 2, [searched[1]]: 3 };
  const allocation = analysis.allocation(bits, "test");
  const r = await qat(allocation.apply(base)).fakeQuant({ weights: "lsq", activations: "lsq" })
    .optimizer({ kind: "adam", lr: 1e-3 }).epochs(2).batchSize(64).seed(0).session(NODE).train(train, { test });

  const plan = r.state.plan!;
  const byNode = new Map(plan.weights.map((w) => [w.node, w]));
  assert.deepStrictEqual(plan.weightBits(), bits);
  const qdqInits = indexGraph(r.qdq.graph).initializers;
  const qop = r.qoperator;
  const qopInits = indexGraph(qop.graph).initializers;
  let checkedQop = 0;
  for (const [node, b] of Object.entries(bits)) {
    const w = byNode.get(node)!.tensor;
    // Training graph: the weight's LSQ fake quantizer was built on this layer's width (its grid is lsqGrid(bits)).
    const grid = r.run.trainable.qdq.weightParams.get(w);
    assert.ok(grid, `no training-graph weight parameters for ${w}`);
    assert.equal(grid.bits, b, `${node}: training-graph grid at ${grid.bits} bits, planned ${b}`);
    assert.equal(r.run.trainable.quantizerParams.get(w)?.kind, "lsq");
    const lo = -(2 ** (b - 1)), hi = 2 ** (b - 1) - 1;
    const inRange = (codes: Int8Array, where: string) => {
      let min = Infinity, max = -Infinity;
      const used = new Set<number>();
      for (const c of codes) {
        min = Math.min(min, c);
        max = Math.max(max, c);
        used.add(c);
      }
      assert.ok(min >= lo && max <= hi, `${where} ${node}: codes in [${min}, ${max}], ${b}-bit grid is [${lo}, ${hi}]`);
      // A sub-8-bit grid is used, not just a corner of it (a layer left at 8 bits fails the range check above).
      if (b < 8) assert.ok(used.size > 2 ** (b - 1), `${where} ${node}: only ${used.size} distinct codes at ${b} bits`);
    };
    inRange(tensorValues(qdqInits.get(`${w}_quantized`)!) as Int8Array, "QDQ");
    const q = qop.graph.node.find((n) => n.name === node || n.input[3] === `${w}_quantized`);
    if (q && (q.opType === "QLinearConv" || q.opType === "QGemm")) {
      inRange(tensorValues(qopInits.get(q.input[3])!) as Int8Array, "QOperator");
      checkedQop++;
    }
  }
  assert.ok(checkedQop >= 3, `QOperator weight layers checked: ${checkedQop}`);

  // The export reproduces the training-time evaluation: the QDQ model in float QDQ arithmetic (no integer-kernel
  // fusion) gives exactly the accuracy the training loop measured on its fake-quantized graph.
  const trainingTime = r.history.at(-1)!.testAccuracy!;
  const floatQdq = (await evaluateModel(r.qdq, test, { session: { ...NODE, optimization: "basic" } })).accuracy;
  assert.equal(floatQdq, trainingTime, `QDQ (float arithmetic) ${floatQdq} vs training-time ${trainingTime}`);
  // ONNX Runtime's integer kernels (fused QDQ and the QOperator model) round requantization differently: close.
  const ev = await r.evaluate(test);
  assert.equal(ev.training, trainingTime);
  assert.ok(ev.qoperator !== undefined && Math.abs(ev.qoperator - ev.qdq) <= 2 / test.count + 1e-9, JSON.stringify(ev));
  assert.ok(Math.abs(ev.qdq - trainingTime) <= 0.02, JSON.stringify(ev));
  assert.ok(trainingTime > 0.9, `${trainingTime}`);
});
