import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { BUILTIN_EXPERIMENTS } from "../../lib/experiments/catalog.ts";
import {
  ptqRoundingComparison,
  ptqRoundingExperiment,
  type PtqRoundingMethod,
  ptqRoundingRuns,
} from "../../lib/experiments/ptq_rounding.ts";
import { fashionMnistAvailable } from "../onnx/_fixtures.ts";

const ALL: PtqRoundingMethod[] = ["nearest", "stochastic", "adaround", "adaquant", "brecq", "ocs", "bias-correction"];

Deno.test("ptq-rounding quick preset on the digits CNN: every method at W4A8 and W2A8, report, charts, paper numbers", async () => {
  const { report, rows, layers, curves, ocs, float } = await ptqRoundingComparison({
    quick: true,
    models: ["digits"],
    progress: "none",
  });
  assert.ok(float.digits! > 95, `digits float ${float.digits}`);
  for (const setting of ["W4A8", "W2A8"]) {
    for (const m of ALL) {
      const r = rows.find((x) => x.model === "digits" && x.setting === setting && x.method === m);
      assert.ok(r, `${setting} ${m} missing`);
      assert.ok(r.accuracy >= 0 && r.accuracy <= 100 && r.seconds >= 0, JSON.stringify(r));
    }
  }
  const st = rows.find((x) => x.method === "stochastic" && x.setting === "W4A8")!;
  assert.equal(st.draws?.n, 3);
  assert.ok(st.draws!.best >= st.accuracy && st.draws!.worst <= st.accuracy);
  // At 2 bits learned rounding and block reconstruction clearly beat nearest (21 % -> 40+ % in this preset).
  const at = (m: PtqRoundingMethod) => rows.find((x) => x.setting === "W2A8" && x.method === m)!.accuracy;
  assert.ok(at("adaround") > at("nearest") + 10, `AdaRound ${at("adaround")} vs nearest ${at("nearest")}`);
  assert.ok(at("brecq") > at("nearest") + 10, `BRECQ ${at("brecq")} vs nearest ${at("nearest")}`);
  // Per-layer errors for the three learned methods, AdaRound curves, the OCS splits.
  for (const m of ["adaround", "adaquant", "brecq"] as const) assert.ok(layers.some((l) => l.method === m), m);
  assert.ok(layers.every((l) => Number.isFinite(l.before) && Number.isFinite(l.after)));
  assert.ok(new Set(curves.map((c) => c.layer)).size >= 4, "one AdaRound curve per layer");
  assert.ok((ocs.digits ?? []).length >= 3);
  for (const id of ["accuracy-digits", "layers", "curves"]) assert.ok(report.chart(id).spec, id);
  for (const id of ["accuracy-digits", "time", "layers", "ocs"]) assert.ok(report.table(id).rows.length > 0, id);
  // Findings carry the paper's number beside ours.
  const ada = report.findings.find((f) => f.claim.startsWith("AdaRound beats"))!;
  assert.ok(ada.reference?.result.includes("68.71"), JSON.stringify(ada.reference));
  const sto = report.findings.find((f) => f.claim.startsWith("Stochastic rounding"))!;
  assert.ok(sto.reference?.result.includes("52.06"), JSON.stringify(sto.reference));
  assert.ok(report.findings.every((f) => f.reference !== undefined));
  assert.equal(report.numbers["digits_W2A8_adaround"], at("adaround"));
});

Deno.test({
  name: "ptq-rounding quick preset on the ResNet-8: the methods that learn nothing at W3A8; runs merge into one report",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const runs = await ptqRoundingRuns({ quick: true, models: ["resnet8"], progress: "none" });
    assert.equal(runs.length, 1);
    assert.equal(runs[0].setting, "W3A8");
    assert.deepEqual(runs[0].rows.map((r) => r.method), ["nearest", "stochastic", "ocs", "bias-correction"]);
    assert.equal(runs[0].testImages, 500);
    const { report, rows } = await ptqRoundingComparison({ runs });
    assert.equal(rows.length, 4);
    assert.ok(report.chart("accuracy-resnet8").spec);
    // The preset's order (ResNet-8 first, learned methods on the digits CNN only): per-layer charts show the digits.
    const digits = await ptqRoundingRuns({
      quick: true,
      models: ["digits"],
      bits: [2],
      methods: ["nearest", "adaround"],
      progress: "none",
    });
    const both = (await ptqRoundingComparison({ runs: [...runs, ...digits] })).report;
    assert.ok(both.chart("layers").title.includes("digits"), both.chart("layers").title);
    assert.ok(both.chart("curves").title.includes("digits"), both.chart("curves").title);
  },
});

Deno.test("ptq-rounding: bad options are QuantlabErrors; registered for reproduce", async () => {
  await assert.rejects(() => ptqRoundingRuns({ bits: [1] }), QuantlabError);
  await assert.rejects(() => ptqRoundingRuns({ draws: 0 }), QuantlabError);
  await assert.rejects(() => ptqRoundingRuns({ methods: ["magic" as PtqRoundingMethod] }), QuantlabError);
  await assert.rejects(() => ptqRoundingRuns({ models: ["alexnet" as "digits"] }), QuantlabError);
  assert.ok(BUILTIN_EXPERIMENTS.includes(ptqRoundingExperiment));
  assert.equal(ptqRoundingExperiment.notebook, "notebooks/11_ptq_rounding.ipynb");
});
