// HAWQ over the model-level core (lib/mixed/hawq.ts) on the Fashion-MNIST ResNet-8 at tiny settings: the
// sensitivity formula, first/last fixed, residual ties, the budgeted allocation and its plan consumed by ptq().
import assert from "node:assert/strict";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { subset } from "../../lib/data/batching.ts";
import { applyWeightBits, hawqAnalysis } from "../../lib/mixed/hawq.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { toTensor } from "../../lib/onnx/tensor_data.ts";
import { evaluateAccuracy } from "../../lib/ptq/evaluate.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import type { Tensor } from "../../lib/tensor/tensor.ts";

const model = await OnnxModel.load(new URL("../../datasets/models/resnet8_fashion.onnx", import.meta.url).pathname);
const train = await loadFashionMnist("train", { source: "embedded" });
const base = ptq(model).weights(quantizer().int(8).symmetric().perChannel()).activations(false).firstLast(8)
  .session({ backend: "node", threads: 1 });

Deno.test("HAWQ on ResNet-8 (tiny settings): traces, sensitivities, ties, budgeted plan consumed by ptq()", async () => {
  const messages: string[] = [];
  const a = await hawqAnalysis(base, train, {
    count: 16,
    batchSize: 16,
    trace: { maxIterations: 3, seed: 1 },
    onProgress: (m) => messages.push(m),
  });
  assert.ok(messages.some((m) => m.startsWith("trace")));
  assert.equal(a.layers.length, 10);
  assert.equal(a.layers[0].fixed, 8);
  assert.equal(a.layers[9].fixed, 8);
  assert.deepEqual(a.ties, [["layer2.conv1", "layer2.down.conv"], ["layer3.conv1", "layer3.down.conv"]]);
  // Omega(b) = Tr/n * ||Q_b(W) - W||^2 with the plan's quantizer at b bits (BN-folded weights).
  const l = a.layers.find((x) => x.node === "layer2.conv2")!;
  assert.equal(l.macs, 9216 * 14 * 14); // 32 x 14 x 14 outputs, 32*9 weights each
  const folded = (await base.state()).model;
  const W = toTensor(folded.graph.initializer.find((t) => t.name === l.tensor)!) as Tensor<"float32">;
  const fq = quantizer().int(3).symmetric().perChannel().fitWeights(W, { axis: 0 }).fakeQuantize().data;
  let d = 0;
  for (let i = 0; i < fq.length; i++) d += (fq[i] - W.data[i]) ** 2;
  assert.ok(Math.abs(l.sensitivity[3] - l.trace.tracePerParam * d) <= 1e-9 * Math.abs(l.sensitivity[3]));
  assert.ok(l.delta2[2] > l.delta2[3] && l.delta2[3] > l.delta2[4] && l.delta2[4] > l.delta2[8]);

  // At the size of uniform 3-bit: within budget, tied layers equal, first/last at 8; a random allocation too.
  const budget = a.usage(a.uniform(3)).size;
  const mixed = await a.allocate({ size: budget });
  assert.ok(mixed.usage.size <= budget * (1 + 1e-9));
  assert.ok(mixed.objective <= a.allocation(a.uniform(3)).objective + 1e-12);
  assert.equal(mixed.bits["layer2.conv1"], mixed.bits["layer2.down.conv"]);
  assert.equal(mixed.bits.conv, 8);
  assert.equal(mixed.bits.fc, 8);
  const rnd = a.random(4, { size: budget });
  assert.ok(rnd.usage.size <= budget * (1 + 1e-9) && rnd.usage.size >= 0.9 * budget);
  assert.deepEqual(a.random(4, { size: budget }).bits, rnd.bits);
  // BOPs budgets work alongside.
  const both = await a.allocate({ size: budget, bops: a.usage(a.uniform(4)).bops });
  assert.ok(both.usage.bops <= a.usage(a.uniform(4)).bops * (1 + 1e-9));

  // The plan carries the widths and ptq() consumes it.
  assert.deepEqual(mixed.plan.weightBits(), mixed.bits);
  const run = mixed.apply(base);
  assert.deepEqual((await run.plan()).weightBits(), mixed.bits);
  const m = await run.quantize();
  const top1 = (await evaluateAccuracy(m.qdq, subset(train, 0, 64), { backend: "node", threads: 1 })).top1;
  assert.ok(top1 > 0.3, `top-1 ${top1}`);
  assert.deepEqual(applyWeightBits(mixed.plan, mixed.bits).weightBits(), mixed.bits);
  assert.throws(() => applyWeightBits(mixed.plan, { nope: 4 }), /no planned weight/);
});
