import assert from "node:assert/strict";
import { findChromium, renderToPng } from "../../scripts/render_report.ts";

const root = new URL("../../", import.meta.url).pathname;
const chromium = await findChromium();

Deno.test({
  name: "reproduce: writes an offline index.html and summary.md, and the page renders in headless Chromium",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const out = await Deno.makeTempDir({ prefix: "quantlab-reports-" });
    try {
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "scripts/reproduce.ts", "--quick", "--out", out],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(o.stdout);
      assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
      assert.ok(stdout.includes(`Report: ${out}/index.html`), stdout);
      const html = await Deno.readTextFile(`${out}/index.html`);
      const md = await Deno.readTextFile(`${out}/summary.md`);
      // Offline: no external scripts, styles or images.
      assert.ok(
        !/<script[^>]+src=/i.test(html) && !/<link[^>]+href=/i.test(html) && !/<img[^>]+src="?https?:/i.test(html),
      );
      for (const id of ["uniform", "calibration", "granularity", "stochastic-rounding"]) {
        assert.ok(html.includes(`<section class="quantlab-report" id="${id}">`), id);
      }
      const svgs = html.match(/<svg/g)?.length ?? 0;
      assert.ok(svgs >= 12, `expected at least 12 inline charts, found ${svgs}`);
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
    }
  },
});
