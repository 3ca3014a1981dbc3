import assert from "node:assert/strict";
import { mixedPrecisionComparison, mixedPrecisionExperiment } from "../../lib/experiments/mixed_precision.ts";
import { fashionMnistAvailable } from "../onnx/_fixtures.ts";

Deno.test({
  name: "experiment 14 (quick): traces, latency table, equal-size baselines, bit map, findings with HAWQ-v3 beside",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const { report, analysis, latency } = await mixedPrecisionComparison({
      quick: true,
      progress: "none",
      session: { backend: "node", threads: 2 },
    });
    assert.equal(mixedPrecisionExperiment.id, "mixed-precision");
    assert.equal(report.table("traces").rows.length, 10);
    assert.equal(analysis!.layers.length, 10);
    const lat = latency!.node;
    assert.equal(lat.layers.length, 10);
    assert.ok(lat.layers.every((l) => l.kernels.float32!.median > 0 && l.kernels.int8!.median > 0));
    assert.equal(lat.layers.at(-1)!.kernels.int4?.op, "MatMulNBits");
    const methods = new Set(report.table("equal-size").rows.map((r) => String(r.method).replace(/\(\d+\)/, "")));
    for (const m of ["HAWQ (integer program)", "uniform 3-bit", "greedy by sensitivity", "random : median / best"]) {
      assert.ok(methods.has(m), `${m} in ${[...methods]}`);
    }
    assert.ok([...methods].some((m) => m.startsWith("INC hawq_v2")));
    // Every allocation at a budget stays within it.
    for (const r of report.table("equal-size").rows) {
      if (r.budget === "size of uniform 3-bit" && typeof r["size (B)"] === "number") {
        assert.ok(r["size (B)"] <= analysis!.usage(analysis!.uniform(3)).size + 1);
      }
    }
    for (const id of ["traces", "bit-map", "accuracy-size", "accuracy-latency"]) assert.ok(report.chart(id).title);
    assert.equal(report.findings.length, 6);
    assert.equal(report.table("joint").rows.length, 4);
    assert.ok(report.table("activations").rows.length >= 6);
    assert.ok(report.findings.every((f) => f.reference?.section.includes("§IV-")));
    assert.ok(report.findings[0].reference!.result.includes("71.56"));
    assert.ok(report.table("hawq-v3").rows.some((r) => r["top-1 %"] === 70.22));
    assert.ok(report.numbers.e2e_w8a8_ms > 0 && report.numbers.float > 80);
  },
});
