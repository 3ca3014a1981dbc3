import assert from "node:assert/strict";
import { Progress } from "../../lib/notebook/progress.ts";

Deno.test("progress lines sink: plain timestamped lines, throttled, the first and the last always shown", async () => {
  const lines: string[] = [];
  const p = new Progress(50, { sink: "lines", label: "stage", lineIntervalMs: 60_000, write: (s) => lines.push(s) });
  assert.equal(p.sink, "lines");
  for (let i = 0; i < 50; i++) await p.tick(1, `step ${i}`);
  await p.finish("done");
  assert.ok(lines.length >= 2 && lines.length <= 3, JSON.stringify(lines));
  for (const l of lines) {
    assert.match(l, /^\d\d:\d\d:\d\d stage \[[#.]+\]\s+\d+% \d+\/50 [\d.]+s/);
    assert.ok(l.endsWith("\n") && !l.includes("\r"));
  }
  assert.ok(lines.at(-1)!.includes("100% 50/50") && lines.at(-1)!.includes("done"));
});
