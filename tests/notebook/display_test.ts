import assert from "node:assert/strict";
import {
  bundleOf,
  escapeHtml,
  formatNumber,
  isDisplayable,
  JUPYTER_DISPLAY,
  type MediaBundle,
  stripAnsi,
} from "../../lib/notebook/display.ts";
import { table } from "../../lib/notebook/table.ts";
import { Progress, progressBar } from "../../lib/notebook/progress.ts";
import { QuantlabError } from "../../lib/errors.ts";

Deno.test("display: the protocol symbol is Deno's Symbol.for('Jupyter.display')", async () => {
  assert.equal(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
  const o = { [Symbol.for("Jupyter.display")]: () => ({ "text/plain": "x" }) };
  assert.ok(isDisplayable(o));
  assert.equal((await bundleOf(o))["text/plain"], "x");
  assert.ok(!isDisplayable(null) && !isDisplayable("s"));
  assert.deepEqual(await bundleOf({ toString: () => "plain" }), { "text/plain": "plain" });
});

Deno.test("display: escaping, ANSI stripping and number formatting", () => {
  assert.equal(escapeHtml("<b a='1'>&</b>"), "&lt;b a=&#39;1&#39;&gt;&amp;&lt;/b&gt;");
  assert.equal(stripAnsi("\x1b[1m\x1b[32mok\x1b[0m \x1b[2K"), "ok ");
  assert.equal(formatNumber(0.1 + 0.2, 3), "0.300");
  assert.equal(formatNumber(-12.3456, 3), "-12.3");
  assert.equal(formatNumber(1234567.8, 3), "1.23e6");
  assert.equal(formatNumber(Infinity), "∞");
  assert.equal(formatNumber(NaN), "NaN");
});

Deno.test("table: text aligns numbers right, markdown and HTML escape", () => {
  const t = table([{ name: "a|b", v: 1.5 }, { name: "<c>", v: 22 }], {
    title: "T",
    columns: [{ key: "name", title: "name" }, { key: "v", title: "value (dB)", digits: 3 }],
  });
  const lines = t.toString().split("\n");
  assert.equal(lines[0], "T");
  assert.equal(lines[1], "name  value (dB)");
  assert.equal(lines[3], "a|b " + "  " + "      1.50");
  assert.equal(lines[4], "<c> " + "  " + "        22");
  const md = t.toMarkdown();
  assert.ok(md.includes("| a\\|b | 1.50 |"));
  assert.ok(md.includes("| --- | ---: |"));
  const html = t.toHTML();
  assert.ok(html.includes("<caption>T</caption>") && html.includes("&lt;c&gt;") && !html.includes("<c>"));
  const b = t[JUPYTER_DISPLAY]() as MediaBundle;
  assert.deepEqual(Object.keys(b).sort(), ["text/html", "text/plain"]);
  assert.throws(() => table("x" as never), (e: unknown) => e instanceof QuantlabError);
});

Deno.test("progress: terminal bar uses \\r, no colours, ends with a newline", async () => {
  const out: string[] = [];
  const p = new Progress(3, { label: "job", sink: "terminal", intervalMs: 0, width: 6, write: (s) => out.push(s) });
  await p.tick();
  await p.tick(1, "half");
  await p.finish("done");
  await p.finish();
  assert.equal(out.length, 3);
  assert.ok(out.every((s) => s.startsWith("\r") && !s.includes("\x1b")));
  assert.ok(out[0].includes("job [##....]  33% 1/3"));
  assert.ok(out[2].includes("[######] 100% 3/3") && out[2].endsWith("done\n"));
  assert.equal(progressBar(0, 0, 4), "[####] 100% 0/0");
  assert.throws(() => new Progress(-1), (e: unknown) => e instanceof QuantlabError);
});

Deno.test("progress: Jupyter sink shows once, then updates the same display id", async () => {
  const calls: { bundle: MediaBundle; update: boolean; id: string }[] = [];
  const p = new Progress(4, {
    label: "nb",
    sink: "jupyter",
    intervalMs: 0,
    display: (bundle, update, id) => {
      calls.push({ bundle, update, id });
    },
  });
  for (let i = 0; i < 4; i++) await p.tick();
  await p.finish();
  assert.equal(calls.length, 5);
  assert.equal(calls[0].update, false);
  assert.ok(calls.slice(1).every((c) => c.update && c.id === calls[0].id));
  assert.ok(String(calls[4].bundle["text/html"]).includes('<progress value="1.0000"'));
  assert.ok(calls.every((c) => !String(c.bundle["text/plain"]).includes("\x1b")));
});

Deno.test("progress: throttles intermediate updates but always shows the last", async () => {
  const out: string[] = [];
  const p = new Progress(1000, { sink: "terminal", intervalMs: 60_000, write: (s) => out.push(s) });
  for (let i = 0; i < 1000; i++) await p.tick();
  assert.equal(out.length, 2); // the first update and the final one
  assert.ok(out[1].includes("1000/1000"));
  const silent = new Progress(2, { sink: "none" });
  await silent.tick();
  assert.equal(silent.done, 1);
});
