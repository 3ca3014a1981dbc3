/**
 * `deno task reproduce`: run every registered experiment on embedded data and
 * write `reports/index.html` (self-contained, works offline: charts are inline
 * SVG) and `reports/summary.md` (findings and tables).
 *
 * Usage: deno task reproduce [--quick] [--out DIR] [--only ID[,ID...]]
 *
 * @module
 */
import { getExperiment, listExperiments, type Report } from "../lib/experiments/mod.ts";
import { escapeHtml } from "../lib/notebook/display.ts";
import { VEGA_LITE_VERSION, VEGA_VERSION } from "../lib/viz/render.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const quick = Deno.args.includes("--quick");
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
    }</td><td class="${f.holds ? "holds" : "fails"}">${f.holds ? "holds" : "does not hold"}</td></tr>`
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
    report.findings.map((f) => `| ${report.title} | ${f.claim} | ${f.holds ? "holds" : "**does not hold**"} |`)
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
