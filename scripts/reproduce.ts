/**
 * `deno task reproduce`: run every registered experiment and write `reports/index.html` (self-contained, works
 * offline: charts are inline SVG) and `reports/summary.md` (findings, paper-vs-ours tables, tables).
 *
 * Usage: deno task reproduce [--full] [--quick] [--seeds N] [--workers N] [--out DIR] [--only ID[,ID...]]
 *
 * - default: the quick preset, about 2 minutes on 2 cores with a warm cache (see README for a cold one): every
 *   experiment at its quick sizes (same code paths, fewer images and iterations), and the claims of the
 *   range-calibration, stochastic-rounding and zero-shot experiments also over `--seeds` seeds (default 5) through
 *   the sweep engine (a local pool of `--workers` processes, results cached in `OUT/sweeps/`);
 * - `--full`: the notebook-scale settings (what the notebooks run; about 10 minutes), seeds at full sizes;
 * - `--quick`: the smoke test (tests and CI): quick sizes and no seed runs unless `--seeds` asks for them.
 *
 * Needs nothing but Deno: Fashion-MNIST falls back to the subset embedded in `datasets/` when no folder holds it
 * (the report header says which was used), and only the ONNX Runtime binding in use is downloaded.
 *
 * Output: every line is prefixed with the elapsed time; with stdout not a terminal (CI logs) each stage also
 * prints plain progress lines (at most every 2 s), and a line appears whenever 5 s pass without one.
 *
 * @module
 */
import { getExperiment, listExperiments, type Report } from "../lib/experiments/mod.ts";
import { citeFindings } from "../lib/experiments/references.ts";
import { escapeHtml } from "../lib/notebook/display.ts";
import type { ProgressSink } from "../lib/notebook/progress.ts";
import { VEGA_LITE_VERSION, VEGA_VERSION } from "../lib/viz/render.ts";
import type { ReportTrial } from "../lib/experiments/registry.ts";
import { annotateSeeds } from "../lib/experiments/seed_stats.ts";
import { describeFashionMnistSources } from "../lib/data/fashion_mnist.ts";
import { backendChoice, loadBackend, ORT_VERSION } from "../lib/onnx/session.ts";
import { runSweep } from "../lib/sweep/backend.ts";
import { expandGrid } from "../lib/sweep/grid.ts";
import { LocalPool } from "../lib/sweep/local.ts";
import { ResultStore } from "../lib/sweep/store.ts";

/** Experiments whose claims also run across seeds. */
const SEED_EXPERIMENTS = ["calibration", "stochastic-rounding", "zero-shot"];
/** Experiments that run models on ONNX Runtime. */
const ORT_EXPERIMENTS = ["ptq-onnx", "integer-only", "zero-shot"];
/** Longest stretch without an output line before a "still working" line. */
const SILENCE_S = 5;

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const quick = Deno.args.includes("--quick");
const full = Deno.args.includes("--full");
const seedCount = Number(flag("--seeds") ?? (quick ? 0 : 5));
const outDir = new URL(`${flag("--out") ?? "reports"}/`, `file://${Deno.cwd()}/`);
const only = flag("--only")?.split(",");
const experiments = only ? only.map(getExperiment) : listExperiments();
const preset = full
  ? "full (notebook-scale settings)"
  : quick
  ? "quick (smoke test, no seed runs)"
  : "default (quick sizes)";

const tty = (() => {
  try {
    return Deno.stdout.isTerminal();
  } catch {
    return false;
  }
})();
const sink: ProgressSink = tty ? "terminal" : "lines";
const started = performance.now();
let lastLine = performance.now();
let stage = "starting";
const elapsed = () => ((performance.now() - started) / 1000).toFixed(1).padStart(6);
function log(line: string): void {
  lastLine = performance.now();
  console.log(`[${elapsed()} s] ${line}`);
}
// Heartbeat: runs whenever the event loop is free (downloads, ONNX Runtime, worker processes).
const heartbeat = setInterval(() => {
  if (performance.now() - lastLine > SILENCE_S * 1000) log(`    ... still working: ${stage}`);
}, 1000);
// Progress lines of the "lines" sink go to stdout too: count them as output.
if (!tty) {
  const write = Deno.stdout.writeSync.bind(Deno.stdout);
  Deno.stdout.writeSync = (p: Uint8Array) => {
    lastLine = performance.now();
    return write(p);
  };
}

log(
  `quantlab reproduce: ${experiments.length} experiments, preset ${preset}${
    seedCount > 1 ? `, ${seedCount} seeds for the seed claims` : ""
  }`,
);
const reports: { report: Report; seconds: number }[] = [];
for (const [i, e] of experiments.entries()) {
  const t0 = performance.now();
  stage = `${e.id} (${i + 1}/${experiments.length})`;
  log(`[${i + 1}/${experiments.length}] ${e.id}: ${e.title}`);
  const report = await e.run({ quick: !full, seed: 0, progress: sink });
  const seconds = (performance.now() - t0) / 1000;
  citeFindings(report);
  reports.push({ report, seconds });
  if (report.findings.length === 0) {
    const why = report.blocks.find((b) => b.kind === "text")?.text ?? "the experiment returned no findings";
    log(`    skipped: ${why.replace(/^Skipped:\s*/, "")}`);
  }
  for (const f of report.findings) log(`    ${f.holds ? "holds        " : "does not hold"}  ${f.claim}`);
  log(`    (${seconds.toFixed(1)} s)`);
}

// The seed claims: a sweep over seeds 0..n-1 on a local pool, cached in OUT/sweeps.
const seeded = reports.filter(({ report }) => SEED_EXPERIMENTS.includes(report.id) && report.findings.length > 0);
if (seedCount > 1 && seeded.length > 0) {
  const t0 = performance.now();
  stage = `seed runs`;
  const sweeps = seeded.map(({ report }) => ({ experiment: report.id, config: { quick: !full }, seeds: seedCount }));
  const items = await expandGrid({ sweeps });
  const store = await ResultStore.open(new URL("sweeps/", outDir).pathname);
  const workers = flag("--workers") ? Number(flag("--workers")) : undefined;
  log(`seeds: ${items.length} trials (${seedCount} seeds, ${full ? "full" : "quick"} sizes) -> ${store.path}`);
  const s = await runSweep(items, { // --no-lock: with a lockfile, Deno 2.9 caches every npm package it lists (both ONNX Runtime bindings, 490 MB)
    // on first use; without, only what the trials import (the task runs this script the same way).
    backend: new LocalPool({ workers, denoFlags: ["-A", "--no-lock"] }),
    store,
    label: "seeds",
    progress: sink,
  });
  for (const [hash, error] of Object.entries(s.failed)) {
    log(`    seed trial ${hash.slice(0, 12)} failed: ${error}`);
  }
  for (const { report } of seeded) {
    const trials = items.filter((i) => i.experiment === report.id).flatMap((i) => {
      const r = store.get(i.hash)?.result as ReportTrial | undefined;
      return r && Array.isArray(r.findings) && r.findings.length > 0 ? [r] : [];
    });
    if (trials.length > 1) {
      annotateSeeds(report, trials, `${full ? "full" : "quick"} sizes, seeds 0-${seedCount - 1}`);
      for (const f of report.findings) {
        if (f.seeds) log(`    ${report.id}: ${f.claim}: holds in ${f.seeds.held} of ${f.seeds.n} seeds`);
      }
    }
  }
  log(`    (seeds: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
stage = "writing the report";

/** The ONNX Runtime binding the ONNX experiments used, and why (reported once, and in the header). */
async function bindingLine(): Promise<string> {
  if (!reports.some(({ report }) => ORT_EXPERIMENTS.includes(report.id))) return "";
  const { backend } = await loadBackend("auto"); // cached: the binding the experiments loaded
  const why = backendChoice()?.reason ?? "";
  return `ONNX Runtime ${ORT_VERSION}: onnxruntime-${backend} (${backend === "node" ? "native" : "WASM"}${
    why ? `; ${why}` : ""
  })`;
}
const binding = await bindingLine();
if (binding) log(binding);
const dataLine = describeFashionMnistSources();
if (dataLine) log(dataLine);

const version = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).version ?? "?";
const when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
const env =
  `quantlab ${version}, Deno ${Deno.version.deno}, vega ${VEGA_VERSION}, vega-lite ${VEGA_LITE_VERSION}, ${navigator.hardwareConcurrency} logical CPUs, preset ${preset}`;
const sources = [dataLine, binding].filter(Boolean);

const rows = reports.flatMap(({ report }) =>
  report.findings.map((f) =>
    `<tr><td><a href="#${escapeHtml(report.id)}">${escapeHtml(report.title)}</a></td><td>${
      escapeHtml(f.claim)
    }</td><td class="${f.holds ? "holds" : "fails"}">${f.holds ? "holds" : "does not hold"}${
      f.seeds ? ` (${f.seeds.held} of ${f.seeds.n} seeds)` : ""
    }</td></tr>`
  )
).join("\n");
const sections: string[] = [];
for (const { report } of reports) sections.push(await report.toHTML(2));

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>quantlab: survey claims reproduced</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; max-width: 1100px; margin: 24px auto; padding: 0 16px; color: #222;
  line-height: 1.45; }
h1 { font-size: 26px; margin-bottom: 4px; }
h2 { font-size: 21px; border-top: 2px solid #ddd; padding-top: 18px; margin-top: 36px; }
.meta { color: #666; font-size: 13px; }
table { border-collapse: collapse; margin: 12px 0 18px; font-size: 13px; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; vertical-align: top; }
th { background: #f3f3f3; }
td.holds, li.holds strong { color: #1a7f37; }
td.fails, li.fails strong { color: #b42318; }
figure.chart { margin: 12px 0 20px; }
table.reference { margin: 4px 0 10px; font-size: 12px; }
table.reference caption { font-weight: normal; font-style: italic; color: #555; }
table.reference th[scope="row"] { text-align: left; font-weight: normal; background: #fafafa; max-width: 320px; }
ul.findings li { margin-bottom: 6px; }
figure.chart svg { max-width: 100%; height: auto; }
code { background: #f3f3f3; padding: 0 3px; }
</style>
</head>
<body>
<h1>quantlab: quantization survey claims, reproduced</h1>
<p class="meta">Generated ${escapeHtml(when)} by <code>deno task reproduce</code> (${escapeHtml(env)}).
Claims from Gholami et al., "A Survey of Quantization Methods for Efficient Neural Network Inference" (2021),
checked on small models and data with fixed seeds. Each claim cites its survey section and puts the paper's
setting and number beside ours. Total run time ${((performance.now() - started) / 1000).toFixed(1)} s.</p>
${sources.map((l) => `<p class="meta">${escapeHtml(l)}.</p>`).join("\n")}
<h2 id="summary">Summary</h2>
<table><thead><tr><th>experiment</th><th>claim</th><th>verdict here</th></tr></thead>
<tbody>
${rows}
</tbody></table>
${sections.join("\n")}
</body>
</html>
`;

const md = [
  "# quantlab: survey claims, reproduced",
  "",
  `Generated ${when} by \`deno task reproduce\` (${env}).`,
  "",
  ...sources.flatMap((l) => [`${l}.`, ""]),
  "| experiment | claim | verdict here |",
  "| --- | --- | --- |",
  ...reports.flatMap(({ report }) =>
    report.findings.map((f) =>
      `| ${report.title} | ${f.claim} | ${f.holds ? "holds" : "**does not hold**"}${
        f.seeds ? ` (${f.seeds.held} of ${f.seeds.n} seeds)` : ""
      } |`
    )
  ),
  "",
  ...reports.map(({ report }) => report.toMarkdown(2)),
].join("\n");

await Deno.mkdir(outDir, { recursive: true });
const htmlPath = new URL("index.html", outDir);
const mdPath = new URL("summary.md", outDir);
await Deno.writeTextFile(htmlPath, html);
await Deno.writeTextFile(mdPath, md);
const held = reports.reduce((n, r) => n + r.report.findings.filter((f) => f.holds).length, 0);
const total = reports.reduce((n, r) => n + r.report.findings.length, 0);
const skipped = reports.filter((r) => r.report.findings.length === 0).map((r) => r.report.id);
clearInterval(heartbeat);
log(`${held} of ${total} claims hold on this data${skipped.length ? ` (skipped: ${skipped.join(", ")})` : ""}.`);
log(`Report: ${htmlPath.pathname}`);
log(`Summary: ${mdPath.pathname}`);
log(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
