/**
 * Experiment 12 (QAT) quick preset: the digits CNN, W4A4 and W2A2, PTQ and four QAT methods; the report has its
 * tables, charts and the three findings, each citing its survey section.
 */
import assert from "node:assert/strict";
import { QAT_METHODS, qatComparison, qatExperiment } from "../../lib/experiments/qat.ts";
import { BUILTIN_EXPERIMENTS } from "../../lib/experiments/catalog.ts";

Deno.test("experiment qat (quick): every method at W4A4 and W2A2, findings cite the survey", async () => {
  const { report, runs, float } = await qatComparison({ quick: true, progress: "none" });
  assert.ok(BUILTIN_EXPERIMENTS.includes(qatExperiment));
  assert.equal(runs.length, 2 * (1 + QAT_METHODS.length));
  assert.ok(float > 95, `${float}`);
  for (const r of runs.filter((r) => r.method !== "PTQ")) assert.equal(r.history.length, 2, r.method);
  assert.deepStrictEqual(report.findings.map((f) => f.reference?.section.startsWith("survey §")), [true, true, true]);
  for (const id of ["accuracy", "curves", "papers"]) assert.ok(report.table(id).rows.length > 0, id);
  assert.ok(report.chart("accuracy") && report.chart("curves"));
  // W4A4 QAT on the digits CNN reaches float within a point; W2A2 QAT far above PTQ.
  const at = (bits: number, m: string) => runs.find((r) => r.bits === bits && r.method === m)!.accuracy;
  assert.ok(Math.max(at(4, "STE"), at(4, "LSQ")) > float - 2, `${at(4, "LSQ")} vs float ${float}`);
  assert.ok(at(2, "LSQ") > at(2, "PTQ") + 10, `W2A2 LSQ ${at(2, "LSQ")} vs PTQ ${at(2, "PTQ")}`);
});
