import assert from "node:assert/strict";
import { integerOnlyComparison, requantizationTable } from "../../lib/experiments/integer_only.ts";
import { quantizeMultiplier } from "../../lib/integer/dyadic.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { fashionMnistAvailable, modelPath } from "../onnx/_fixtures.ts";

Deno.test("requantizationTable: M = s_x s_w / s_y per channel, TFLite multipliers, all integer layers", async () => {
  const model = await OnnxModel.load(modelPath("resnet8_op13"));
  const x = new Tensor<"float32">(new Prng(4).fillNormal(new Float32Array(32 * 784)) as Float32Array, [32, 1, 28, 28]);
  const m = await ptq(model).calibrateOn([x]).session({ backend: "node" }).quantize();
  const rows = requantizationTable(m.qoperator.model);
  assert.equal(rows.length, 10); // 9 QLinearConv + 1 QGemm
  assert.deepStrictEqual(rows.map((r) => r.op).filter((o) => o === "QLinearConv").length, 9);
  for (const r of rows) {
    assert.ok(r.mMin > 0 && r.mMin <= r.mMax && r.mMax < 1, JSON.stringify(r));
    assert.ok(r.m0 >= 2 ** 30 && r.m0 < 2 ** 31);
    assert.ok(r.maxRelError < 2 ** -30);
    assert.ok(r.shiftMin <= r.shift && r.shift <= r.shiftMax);
  }
  // Channel 0 of the first conv recomputed from the stored scales.
  const conv = m.qoperator.model.graph.node.find((n) => n.opType === "QLinearConv")!;
  const init = (name: string) => m.qoperator.model.graph.initializer.find((t) => t.name === name)!;
  const f32 = (name: string) => new Float32Array(init(name).rawData!.slice().buffer);
  const q = quantizeMultiplier((f32(conv.input[1])[0] * f32(conv.input[4])[0]) / f32(conv.input[6])[0]);
  assert.equal(rows[0].m0, q.multiplier);
  assert.equal(rows[0].shift, q.rightShift);
});

Deno.test({
  name: "integer_only (quick): QOperator agrees with QDQ within 1 LSB; sizes, latency, requantization tables",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const r = await integerOnlyComparison({ quick: true, progress: "none" });
    assert.ok(r.numbers.maxLsb <= 1, r.findingsText());
    assert.ok(r.numbers.classAgreement > 0.99);
    assert.ok(r.numbers.qoperatorBytes < r.numbers.floatBytes / 2.5);
    assert.ok(r.table("latency").rows.length >= 1);
    assert.ok(r.table("requantization").rows.length >= 10);
    assert.ok(r.findings[0].holds, r.findingsText());
    assert.equal(r.charts.length, 2);
  },
});
