// A mixed-precision plan exported as integer operators (QOperator): every conv lowered to QLinearConv with its
// plan's width kept in the int8 codes, the model runs in ONNX Runtime and its accuracy equals the QDQ model's.
import assert from "node:assert/strict";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { subset } from "../../lib/data/batching.ts";
import { applyWeightBits } from "../../lib/mixed/hawq.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { evaluateAccuracy } from "../../lib/ptq/evaluate.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";

Deno.test("mixed plan -> QOperator: QLinearConv everywhere, widths kept, accuracy equals the QDQ model's", async () => {
  const model = await OnnxModel.load(new URL("../../datasets/models/resnet8_fashion.onnx", import.meta.url).pathname);
  const train = await loadFashionMnist("train", { source: "embedded" });
  const test = subset(await loadFashionMnist("test", { source: "embedded" }), 0, 200);
  const session = { backend: "node" as const, threads: 1 };
  const base = ptq(model).weights(quantizer().int(8).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric()).firstLast(8).calibrateOn(train, { count: 64 }).session(session);
  const bits = {
    "layer1.conv1": 4,
    "layer1.conv2": 3,
    "layer2.conv1": 8,
    "layer2.down.conv": 8,
    "layer2.conv2": 2,
    "layer3.conv1": 4,
    "layer3.down.conv": 4,
    "layer3.conv2": 3,
  };
  const plan = applyWeightBits(await base.plan(), bits);
  const m = await base.withPlan(plan).quantize();
  const q = m.qoperator;
  const convs = model.graph.node.filter((n) => n.opType === "Conv").map((n) => n.name);
  assert.equal(q.float.filter((f) => f.op === "Conv").length, 0, JSON.stringify(q.float));
  assert.equal(q.model.graph.node.filter((n) => n.opType === "QLinearConv").length, convs.length);
  // The codes of each lowered conv's weight use at most 2^b levels of its planned width.
  const g = q.model.graph;
  const wb = plan.weightBits();
  const byTensor = new Map(plan.weights.map((w) => [w.tensor, w.node]));
  const seen = new Set<string>();
  for (const n of g.node.filter((x) => x.opType === "QLinearConv")) {
    const w = g.initializer.find((t) => t.name === n.input[3]);
    assert.ok(w, `weight of ${n.name}`);
    // the lowered weight is "<planned tensor>_quantized"
    const node = byTensor.get(w.name.replace(/_quantized$/, ""));
    assert.ok(node, `no planned weight for ${w.name}`);
    seen.add(node);
    const levels = new Set(tensorValues(w) as Int8Array).size;
    assert.ok(
      levels <= 2 ** wb[node] && levels > 2 ** (wb[node] - 1) / 2,
      `${node} (${wb[node]} bits): ${levels} levels`,
    );
  }
  assert.equal(seen.size, convs.length);
  const lowBits = Object.values(bits).filter((b) => b < 8).length;
  assert.ok(lowBits >= 5);
  const accQdq = (await evaluateAccuracy(m.qdq, test, session)).top1;
  const accQop = (await evaluateAccuracy(q.model, test, session)).top1;
  assert.ok(Math.abs(accQdq - accQop) <= 0.01, `QDQ ${accQdq} vs QOperator ${accQop}`);
  assert.ok(accQdq > 0.5, `QDQ accuracy ${accQdq}`);
});
