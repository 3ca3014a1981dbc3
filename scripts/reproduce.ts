/**
 * `deno task reproduce`: run every registered experiment on embedded data and
 * write `reports/index.html` (self-contained, works offline: charts are inline
 * SVG) and `reports/summary.md` (findings and tables).
 *
 * Usage: deno task reproduce [--quick] [--full] [--seeds N] [--workers N] [--out DIR] [--only ID[,ID...]]
 *
 * The claims of the range-calibration, stochastic-rounding and zero-shot
 * experiments are also run over `--seeds` seeds (default 5, or 0 with
 * `--quick`; 0 or 1 turns it off) through the sweep engine (a local pool of `--workers` processes, results
 * cached in `OUT/sweeps/`): at quick sizes by default, at full sizes with
 * `--full`. Each of their findings then says in how many seeds it holds and
 * gives its margin as mean ± 95 % t-interval.
 *
 * @module
 */
import { getExperiment, listExperiments, type Report } from "../lib/experiments/mod.ts";
import { escapeHtml } from "../lib/notebook/display.ts";
import { VEGA_LITE_VERSION, VEGA_VERSION } from "../lib/viz/render.ts";
import type { ReportTrial } from "../lib/experiments/registry.ts";
import { annotateSeeds } from "../lib/experiments/seed_stats.ts";
import { runSweep } from "../lib/sweep/backend.ts";
import { expandGrid } from "../lib/sweep/grid.ts";
import { LocalPool } from "../lib/sweep/local.ts";
import { ResultStore } from "../lib/sweep/store.ts";

/** Experiments whose claims also run across seeds. */
const SEED_EXPERIMENTS = ["calibration", "stochastic-rounding", "zero-shot"];

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const quick = Deno.args.includes("--quick");
const full = Deno.args.includes("--full");
// --quick is the smoke-test mode (tests and CI): no seed runs unless --seeds asks for them.
const seedCount = Number(flag("--seeds") ?? (quick ? 0 : 5));
const outDir = new URL(`${flag("--out") ?? "reports"}/`, `file://${Deno.cwd()}/`);
const only = flag("--only")?.split(",");
const experiments = only ? only.map(getExperiment) : listExperiments();

const started = performance.now();
const reports: { report: Report; seconds: number }[] = [];
for (const [i, e] of experiments.entries()) {
  const t0 = performance.now();
  console.log(`[${i + 1}/${experiments.length}] ${e.id}: ${e.title}`);
  const report = await e.run({ quick, seed: 0 });
  const seconds = (performance.now() - t0) / 1000;
  reports.push({ report, seconds });
  for (const f of report.findings) console.log(`    ${f.holds ? "holds        " : "does not hold"}  ${f.claim}`);
  console.log(`    (${seconds.toFixed(1)} s)`);
}

// The seed claims: a sweep over seeds 0..n-1 on a local pool, cached in OUT/sweeps.
const seeded = reports.filter(({ report }) => SEED_EXPERIMENTS.includes(report.id) && report.findings.length > 0);
if (seedCount > 1 && seeded.length > 0) {
  const t0 = performance.now();
  const sweeps = seeded.map(({ report }) => ({ experiment: report.id, config: { quick: !full }, seeds: seedCount }));
  const items = await expandGrid({ sweeps });
  const store = await ResultStore.open(new URL("sweeps/", outDir).pathname);
  const workers = flag("--workers") ? Number(flag("--workers")) : undefined;
  console.log(`seeds: ${items.length} trials (${seedCount} seeds, ${full ? "full" : "quick"} sizes) -> ${store.path}`);
  const s = await runSweep(items, { backend: new LocalPool({ workers }), store, label: "seeds" });
  for (const [hash, error] of Object.entries(s.failed)) {
    console.log(`    seed trial ${hash.slice(0, 12)} failed: ${error}`);
  }
  for (const { report } of seeded) {
    const trials = items.filter((i) => i.experiment === report.id).flatMap((i) => {
      const r = store.get(i.hash)?.result as ReportTrial | undefined;
      return r && Array.isArray(r.findings) && r.findings.length > 0 ? [r] : [];
    });
    if (trials.length > 1) {
      annotateSeeds(report, trials, `${full ? "full" : "quick"} sizes, seeds 0-${seedCount - 1}`);
      for (const f of report.findings) {
        if (f.seeds) console.log(`    ${report.id}: ${f.claim}: holds in ${f.seeds.held} of ${f.seeds.n} seeds`);
      }
    }
  }
  console.log(`    (seeds: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

const version = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).version ?? "?";
const when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
const env =
  `quantlab ${version}, Deno ${Deno.version.deno}, vega ${VEGA_VERSION}, vega-lite ${VEGA_LITE_VERSION}, ${navigator.hardwareConcurrency} logical CPUs${
    quick ? ", --quick sizes" : ""
  }`;

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
figure.chart svg { max-width: 100%; height: auto; }
code { background: #f3f3f3; padding: 0 3px; }
</style>
</head>
<body>
<h1>quantlab: quantization survey claims, reproduced</h1>
<p class="meta">Generated ${escapeHtml(when)} by <code>deno task reproduce</code> (${escapeHtml(env)}).
Claims from Gholami et al., "A Survey of Quantization Methods for Efficient Neural Network Inference" (2021),
checked on embedded data with fixed seeds. Total run time ${((performance.now() - started) / 1000).toFixed(1)} s.</p>
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
console.log(`\n${held} of ${total} claims hold on this data.`);
console.log(`Report: ${htmlPath.pathname}`);
console.log(`Summary: ${mdPath.pathname}`);
console.log(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
