/**
 * `deno task reproduce` end to end (smoke preset): without the Fashion-MNIST package (the embedded subset only),
 * timestamps on every output line with no silent stretch longer than the README's limit, an offline report whose
 * every claim cites its survey section, every chart fits the report width with labelled axes, and the page renders in
 * headless Chromium. With `QUANTLAB_FRESH_DENO_DIR=1` it also runs in an empty Deno cache (downloads; slow).
 */
import assert from "node:assert/strict";
import { findChromium, renderToPng } from "../../scripts/render_report.ts";
import { chartsOf } from "../../scripts/chart_gallery.ts";
import { svgProblems } from "../viz/_svg_checks.ts";

const root = new URL("../../", import.meta.url).pathname;
const chromium = await findChromium();
/** The README's promise: no stretch longer than this without an output line. */
const SILENCE_LIMIT_S = 10;

async function linesWithArrival(stream: ReadableStream<Uint8Array>): Promise<{ line: string; at: number }[]> {
  const out: { line: string; at: number }[] = [];
  let buf = "";
  const dec = new TextDecoder();
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      out.push({ line: buf.slice(0, i), at: performance.now() });
      buf = buf.slice(i + 1);
    }
  }
  if (buf) out.push({ line: buf, at: performance.now() });
  return out;
}

Deno.test({
  name: "reproduce: embedded data only, steady progress, cited claims, legible charts, renders in Chromium",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const out = await Deno.makeTempDir({ prefix: "quantlab-reports-" });
    const fresh = Deno.env.get("QUANTLAB_FRESH_DENO_DIR") === "1"
      ? await Deno.makeTempDir({ prefix: "deno-dir-" })
      : "";
    try {
      const started = performance.now();
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-lock", "scripts/reproduce.ts", "--quick", "--out", out],
        cwd: root,
        env: { FASHION_MNIST_SOURCE: "embedded", NO_COLOR: "1", ...(fresh ? { DENO_DIR: fresh } : {}) },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const [lines, stderr, status] = await Promise.all([
        linesWithArrival(child.stdout),
        new Response(child.stderr).text(),
        child.status,
      ]);
      const stdout = lines.map((l) => l.line).join("\n");
      assert.equal(status.code, 0, stderr);
      assert.ok(stdout.includes(`Report: ${out}/index.html`), stdout);
      // Every reproduce line carries its elapsed time; progress lines their clock time.
      assert.ok(lines.every((l) => /^\[\s*\d+\.\d s\] |^\d\d:\d\d:\d\d /.test(l.line)), stdout);
      let gap = 0, at = started;
      for (const l of lines) {
        gap = Math.max(gap, l.at - at);
        at = l.at;
      }
      assert.ok(gap <= SILENCE_LIMIT_S * 1000, `silent for ${(gap / 1000).toFixed(1)} s:\n${stdout}`);
      assert.ok(!/skipped:/.test(stdout), `an experiment was skipped:\n${stdout}`);
      assert.ok(/Fashion-MNIST train: embedded subset \(2,000 images of 60,000\)/.test(stdout), stdout);
      assert.ok(/ONNX Runtime 1\.\d+\.\d+: onnxruntime-(node|web)/.test(stdout), stdout);

      const html = await Deno.readTextFile(`${out}/index.html`);
      const md = await Deno.readTextFile(`${out}/summary.md`);
      // Offline: no external scripts, styles or images.
      assert.ok(
        !/<script[^>]+src=/i.test(html) && !/<link[^>]+href=/i.test(html) && !/<img[^>]+src="?https?:/i.test(html),
      );
      for (const id of ["uniform", "calibration", "granularity", "stochastic-rounding", "ptq-onnx", "zero-shot"]) {
        assert.ok(html.includes(`<section class="quantlab-report" id="${id}">`), id);
      }
      assert.ok(html.includes("embedded subset"), "the header names the data source");
      // Every claim cites its survey section, with the paper's setting and number beside ours.
      const findings = html.match(/<li class="(holds|fails)">/g)?.length ?? 0;
      const cited = html.match(/<table class="reference"><caption>survey §/g)?.length ?? 0;
      assert.ok(findings >= 30 && cited === findings, `${cited} of ${findings} findings cite the survey`);
      assert.ok(md.includes("| quantlab: this run |"));
      const charts = chartsOf(html);
      assert.ok(charts.length >= 30, `expected at least 30 inline charts, found ${charts.length}`);
      const problems = charts.flatMap((c, i) => svgProblems(c.svg, `chart ${i + 1} (${c.section})`));
      assert.deepEqual(problems, []);
      assert.ok(!html.includes("\x1b[") && !md.includes("\x1b["));
      assert.ok(md.startsWith("# quantlab") && md.includes("| experiment | claim | verdict here |"));
      await t.step({
        name: "render with headless Chromium",
        ignore: chromium === undefined,
        fn: async () => {
          const size = await renderToPng(`${out}/index.html`, `${out}/index.png`, { height: 2000 });
          const head = (await Deno.readFile(`${out}/index.png`)).subarray(0, 8);
          assert.deepEqual(Array.from(head), [137, 80, 78, 71, 13, 10, 26, 10]);
          assert.ok(size > 50_000, `suspiciously small screenshot: ${size} bytes`);
        },
      });
    } finally {
      await Deno.remove(out, { recursive: true });
      if (fresh) await Deno.remove(fresh, { recursive: true }).catch(() => {});
    }
  },
});
