import assert from "node:assert/strict";
import { zeroShotComparison, zeroShotExperiment } from "../../lib/experiments/zero_shot.ts";
import { fashionMnistAvailable } from "../onnx/_fixtures.ts";

Deno.test({
  name: "experiment 10 (quick): real vs ZeroQ vs noise table, charts, image grid, findings",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const { report, grid, zeroq } = await zeroShotComparison({
      quick: true,
      progress: "none",
      session: { backend: "node", threads: 2 },
    });
    assert.equal(zeroShotExperiment.id, "zero-shot");
    const acc = report.table("accuracy");
    assert.deepEqual(acc.rows.map((r) => r.setting), ["W8A8", "W4A4", "W4A4 + input quantized"]);
    for (const id of ["accuracy", "loss", "statistics"]) assert.ok(report.chart(id).title.length > 0);
    assert.ok(report.table("statistics").rows.length >= 9);
    assert.equal(report.findings.length, 4);
    // Quick settings still show the robust parts of the claim.
    assert.ok(report.numbers.W8A8_zeroq >= report.numbers.W8A8_real - 1.5, JSON.stringify(report.numbers));
    assert.ok(report.numbers.input_quantized_zeroq < report.numbers.W4A4_zeroq);
    assert.ok(zeroq!.finalLosses[0] < zeroq!.losses[0][0] / 10);
    assert.ok(grid!.png.length > 100 && grid!.toString().includes("PNG"));
  },
});
