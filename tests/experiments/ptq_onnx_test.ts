import assert from "node:assert/strict";
import { loadExperimentModel, ptqOnnxComparison } from "../../lib/experiments/ptq_onnx.ts";
import { fashionMnistAvailable } from "../onnx/_fixtures.ts";

Deno.test("ptq_onnx: the experiment model loads (trained reference or fixture)", async () => {
  const { model, origin } = await loadExperimentModel();
  assert.match(origin, /resnet8/);
  assert.ok(model.graph.node.filter((n) => n.opType === "Conv").length >= 9);
});

Deno.test({
  name: "ptq_onnx (quick): accuracy grid, per-layer SQNR, CLE/bias-correction rows; per-channel W4 beats per-tensor",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const r = await ptqOnnxComparison({ quick: true, progress: "none" });
    assert.equal(r.table("accuracy").rows.length, 6);
    assert.equal(r.table("methods").rows.length, 2);
    assert.ok(r.table("layer-sqnr").rows.length >= 10);
    assert.ok(r.charts.length >= 3 && r.charts.every((c) => c.svg?.startsWith("<svg")));
    assert.ok(r.numbers["w4.perChannel"] >= r.numbers["w4.perTensor"], r.findingsText());
    assert.ok(r.numbers.floatTop1 - r.numbers["w8.worst"] < 0.2, r.findingsText());
    assert.ok(r.numbers["w4.perTensor.bc"] > r.numbers["w4.perTensor.none"] - 0.01, r.findingsText());
    assert.equal(r.findings.length, 6);
    assert.ok(r.table("byom").rows.length >= 2, "bring-your-own-model parity rows");
  },
});
