/**
 * `deno run -A scripts/chart_gallery.ts [reports/index.html] [--out DIR]`: screenshot every chart of a report with
 * headless Chromium at the report's width (one PNG per chart, `DIR/NN_section.png`, default `reports/charts/`), and
 * print each chart's SVG size, so that every chart is looked at as a reader sees it.
 *
 * @module
 */
import { renderToPng } from "./render_report.ts";

/** The report's content width in CSS pixels (`max-width` of its body). */
export const REPORT_WIDTH = 1100;

/** Each inline chart of a report page: its section id, and the SVG with its width and height. */
export function chartsOf(html: string): { section: string; svg: string; width: number; height: number }[] {
  const out: { section: string; svg: string; width: number; height: number }[] = [];
  let section = "";
  const re = /<section class="quantlab-report" id="([^"]+)">|<figure class="chart">(<svg[\s\S]*?<\/svg>)<\/figure>/g;
  for (const m of html.matchAll(re)) {
    if (m[1]) section = m[1];
    else {
      const head = m[2].slice(0, 400);
      const width = Number(/width="([\d.]+)"/.exec(head)?.[1] ?? NaN);
      const height = Number(/height="([\d.]+)"/.exec(head)?.[1] ?? NaN);
      out.push({ section, svg: m[2], width, height });
    }
  }
  return out;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--out");
  const outDir = i >= 0 ? Deno.args[i + 1] : "reports/charts";
  const html = Deno.args.find((a, k) => !a.startsWith("--") && Deno.args[k - 1] !== "--out") ?? "reports/index.html";
  await Deno.mkdir(outDir, { recursive: true });
  const charts = chartsOf(await Deno.readTextFile(html));
  for (const [k, c] of charts.entries()) {
    const page = `${outDir}/${String(k + 1).padStart(2, "0")}_${c.section}.html`;
    await Deno.writeTextFile(
      page,
      `<!doctype html><meta charset="utf-8"><body style="margin:0;padding:8px;font-family:Helvetica,Arial,sans-serif">` +
        `<div style="max-width:${REPORT_WIDTH}px">${
          c.svg.replace("<svg", '<svg style="max-width:100%;height:auto"')
        }</div>`,
    );
    const png = page.replace(/\.html$/, ".png");
    const scale = c.width > REPORT_WIDTH ? REPORT_WIDTH / c.width : 1;
    await renderToPng(page, png, { width: REPORT_WIDTH + 20, height: Math.ceil(c.height * scale) + 24 });
    console.log(`${png}: ${c.width} x ${c.height} px${c.width > REPORT_WIDTH ? " (WIDER THAN THE REPORT)" : ""}`);
  }
}
