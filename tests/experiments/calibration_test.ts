import assert from "node:assert/strict";
import { calibrationComparison } from "../../lib/experiments/calibration.ts";
import { meanSliceSqnr } from "../../lib/quant/metrics.ts";

Deno.test("calibration: meanSliceSqnr averages per-row SQNRs", () => {
  const x = new Float32Array([3, 4, 1, 1]), y = new Float32Array([3, 3, 1, 0]);
  const expected = (10 * Math.log10(25) + 10 * Math.log10(2)) / 2;
  assert.ok(Math.abs(meanSliceSqnr(x, y, 2) - expected) < 1e-12);
});

Deno.test("calibration: clipping beats min-max at 4 bits; per-row dynamic beats static", async () => {
  const r = await calibrationComparison({ quick: true, progress: "none" });
  assert.ok(r.numbers["best4.gainOverMinMax"] > 3, r.findingsText());
  assert.ok(r.numbers["dynamic.rowSqnrGain8"] > 10, r.findingsText());
  const accuracyFindings = r.findings.filter((f) => !f.claim.includes("run time"));
  assert.ok(accuracyFindings.every((f) => f.holds), r.findingsText());
  assert.equal(r.table("mse").rows.length, 6);
});
