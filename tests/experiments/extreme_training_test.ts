import assert from "node:assert/strict";
import { extremeTrainingComparison, extremeTrainingExperiment } from "../../lib/experiments/extreme_training.ts";
import { BUILTIN_EXPERIMENTS } from "../../lib/experiments/catalog.ts";

Deno.test("experiment 13 (quick, digits CNN): PTQ collapse vs trained binary/ternary, export = training, charts", async () => {
  const { report, rows, curves } = await extremeTrainingComparison({
    quick: true,
    methods: ["binaryconnect", "twn"],
    progress: "none",
    session: { backend: "node", threads: 2 },
  });
  assert.ok(BUILTIN_EXPERIMENTS.includes(extremeTrainingExperiment));
  assert.deepEqual(rows.map((r) => `${r.model}/${r.method}`), ["digits CNN/binaryconnect", "digits CNN/twn"]);
  for (const r of rows) {
    assert.ok(r.ptq < r.float - 20, `${r.method}: PTQ ${r.ptq} vs float ${r.float}`);
    assert.ok(r.trained > r.float - 3, `${r.method}: trained ${r.trained} vs float ${r.float}`);
    assert.equal(r.trained, r.trainedGraph);
  }
  assert.equal(rows[0].extremeBits, 1);
  assert.ok(rows[1].extremeBits > 2 && rows[1].extremeBits < 2.05 && rows[1].sparsity > 0.1);
  assert.ok(curves.length > 10 && curves.every((c) => Number.isFinite(c.loss)));
  assert.equal(report.table("accuracy").rows.length, 2);
  for (const id of ["accuracy", "curves-digits"]) assert.ok(report.chart(id).title.length > 0);
  assert.equal(report.findings.length, 4);
  assert.ok(report.findings.every((f) => f.holds), JSON.stringify(report.findings));
  assert.ok(report.findings[1].reference?.result.includes("8.23"));
  assert.ok(report.findings[2].reference?.result.includes("8.27"));
});
