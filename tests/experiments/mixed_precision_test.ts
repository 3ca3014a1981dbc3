import assert from "node:assert/strict";
import { mixedPrecisionComparison, mixedPrecisionExperiment } from "../../lib/experiments/mixed_precision.ts";
import { mixedPrecisionQat } from "../../lib/experiments/mixed_precision_qat.ts";
import { fashionMnistAvailable } from "../onnx/_fixtures.ts";

Deno.test({
  name: "experiment 14 (quick): traces, latency table, equal-size baselines, bit map, QAT after allocation, findings",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const comparison = await mixedPrecisionComparison({
      quick: true,
      progress: "none",
      session: { backend: "node", threads: 2 },
    });
    const { report, analysis, latency } = comparison;
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

    // QAT after allocation (quick: 16 steps per allocation), both equal-size comparisons, added to the same report.
    const u3 = await mixedPrecisionQat(comparison, { progress: "none", budget: "uniform-3-bit-size" });
    const v3 = await mixedPrecisionQat(comparison, { progress: "none", budget: "hawq-v3-rule" });
    assert.equal(u3.report, report);
    assert.deepStrictEqual(u3.runs.map((r) => r.method), [
      "HAWQ (integer program)",
      "uniform 3-bit",
      "greedy by sensitivity",
    ]);
    assert.deepStrictEqual(v3.runs.map((r) => r.method), ["HAWQ (integer program)", "uniform 4-bit"]);
    const ptqRows = report.table("equal-size").rows;
    for (const r of [...u3.runs, ...v3.runs]) {
      // Starts from the comparison's own allocation and PTQ accuracy; its export reproduces the training graph.
      assert.ok(
        ptqRows.some((p) => p.method === r.method && p.bits === r.bits && p["top-1 %"] === Number(r.ptq.toFixed(2))),
      );
      assert.equal(
        r.qdqFloat,
        r.training,
        `${r.method}: QDQ (float arithmetic) ${r.qdqFloat} vs training ${r.training}`,
      );
      assert.ok(r.qat > 10 && r.qoperator !== undefined && Math.abs(r.qoperator - r.qat) <= 1, JSON.stringify(r));
    }
    assert.ok(u3.runs.every((r) => r.sizeBytes <= analysis!.usage(analysis!.uniform(3)).size + 1));
    assert.equal(report.table("qat-u3").rows.length, 3);
    assert.equal(report.table("qat-v3").rows.length, 2);
    for (const id of ["qat-u3", "qat-v3"]) {
      const spec = JSON.stringify(report.chart(id).spec);
      assert.ok(spec.includes("QAT (LSQ)") && spec.includes("PTQ"), spec.slice(0, 200));
    }
    assert.equal(report.findings.length, 8);
    for (const f of report.findings.slice(6)) {
      assert.ok(f.claim.startsWith("After QAT") && f.reference?.section.includes("§IV-B"), f.claim);
      assert.ok(f.reference!.result.includes("70.01") && f.reference!.result.includes("68.45"));
    }
    assert.ok(report.numbers.qat_u3size_hawq > 0 && report.numbers.qat_v3rule_uniform > 0);
  },
});
