import assert from "node:assert/strict";
import { Report } from "../../lib/experiments/report.ts";
import { getExperiment, listExperiments, registerExperiment } from "../../lib/experiments/registry.ts";
import { BUILTIN_EXPERIMENTS } from "../../lib/experiments/mod.ts";
import { table } from "../../lib/notebook/table.ts";
import { lineChart } from "../../lib/viz/charts.ts";
import { JUPYTER_DISPLAY } from "../../lib/notebook/display.ts";
import { QuantlabError } from "../../lib/errors.ts";

function demo(): Report {
  const chart = lineChart([{ b: 2, v: 1, m: "x" }, { b: 3, v: 2, m: "x" }], {
    title: "Demo chart",
    x: { field: "b", title: "bit width (bits)" },
    y: { field: "v", title: "SQNR (dB)" },
    series: { field: "m", title: "method" },
  });
  return new Report("demo", "Demo <report>", "a claim")
    .text("Uses `code` & more.")
    .table("t", table([{ bits: 2, v: 1.25 }]))
    .chart("c", chart)
    .finding("claim one", true, "evidence 1")
    .finding("claim two", false, "evidence 2")
    .record({ x: 1 });
}

Deno.test("report: blocks, lookups, findings and duplicate ids", () => {
  const r = demo();
  assert.equal(r.charts.length, 1);
  assert.equal(r.tables.length, 1);
  assert.equal(r.chart("c").title, "Demo chart");
  assert.equal(r.table("t").rows[0].v, 1.25);
  assert.equal(r.numbers.x, 1);
  assert.throws(
    () => r.chart("nope"),
    (e: unknown) => e instanceof QuantlabError && /has no chart "nope"; it has c/.test(e.message),
  );
  assert.throws(() => r.table("t", table([])), /already has a table/);
  const f = r.findingsTable();
  assert.deepEqual(f.rows.map((x) => x.verdict), ["holds", "does not hold"]);
});

Deno.test("report: text, markdown and HTML renderings", async () => {
  const r = demo();
  const text = r.toString();
  assert.ok(text.includes("[holds] claim one: evidence 1") && text.includes("[does not hold] claim two"));
  assert.ok(text.includes("(Chart: Demo chart"));
  const md = r.toMarkdown();
  assert.ok(md.startsWith("## Demo <report>") && md.includes("| bits | v |") && md.includes("**does not hold**"));
  const html = await r.toHTML();
  assert.ok(html.includes("<h2>Demo &lt;report&gt;</h2>"));
  assert.ok(html.includes("<code>code</code> &amp; more."));
  assert.ok(html.includes("<svg") && html.includes(">Demo chart</text>"));
  const b = await r[JUPYTER_DISPLAY]();
  assert.ok(String(b["text/html"]).includes("<h3>") && b["text/plain"] === text);
  assert.ok(!(html + text + md).includes("\x1b["));
});

Deno.test("registry: built-ins are registered in order; ids are unique and validated", () => {
  const ids = listExperiments().map((e) => e.id);
  assert.deepEqual(ids.slice(0, 15), [
    "uniform",
    "calibration",
    "granularity",
    "stochastic-rounding",
    "non-uniform",
    "vector-quantization",
    "binary-ternary",
    "ptq-onnx",
    "integer-only",
    "zero-shot",
    "ptq-rounding",
    "qat",
    "extreme-training",
    "mixed-precision",
    "vq-models",
  ]);
  assert.deepEqual(BUILTIN_EXPERIMENTS.map((e) => e.id), ids.slice(0, BUILTIN_EXPERIMENTS.length));
  for (const e of BUILTIN_EXPERIMENTS) {
    assert.equal(getExperiment(e.id), e);
    assert.ok(e.notebook && Deno.statSync(new URL(`../../${e.notebook}`, import.meta.url)).isFile);
  }
  assert.throws(() => registerExperiment(BUILTIN_EXPERIMENTS[0]), /already registered/);
  assert.throws(() => registerExperiment({ id: "Bad Id", title: "", section: "", run: () => Promise.resolve(demo()) }));
  assert.throws(() => getExperiment("missing"), /registered: uniform, calibration/);
});
