import assert from "node:assert/strict";
import { intervalChart, lineChart } from "../../lib/viz/charts.ts";

Deno.test("lineChart draws error bars from lo/hi fields and renders", async () => {
  const rows = [4, 6, 8].flatMap((b) =>
    ["nearest", "stochastic"].map((m) => ({ bits: b, method: m, acc: b * 10, lo: b * 10 - 2, hi: b * 10 + 2 }))
  );
  const c = lineChart(rows, {
    title: "Accuracy across seeds",
    x: { field: "bits", title: "bit width (bits)" },
    y: { field: "acc", title: "accuracy (%)" },
    series: { field: "method", title: "rounding" },
    errorBars: { lo: "lo", hi: "hi" },
  });
  const layers = (c.spec as unknown as { layer: { mark: { type: string } }[] }).layer;
  assert.deepEqual(layers.map((l) => l.mark.type), ["line", "errorbar"]);
  const svg = await c.toSVG();
  assert.ok(svg.startsWith("<svg") && svg.includes("accuracy (%)"));
  assert.throws(
    () =>
      lineChart(rows, {
        title: "x",
        x: { field: "bits", title: "b" },
        y: { field: "acc", title: "a" },
        series: { field: "method", title: "m" },
        errorBars: { lo: "nope", hi: "hi" },
      }),
    /nope/,
  );
});

Deno.test("intervalChart: dots with 95% CI whiskers and a zero rule; renders", async () => {
  const c = intervalChart([
    { label: "ZeroQ - noise at W4A4 (points)", mean: 2.1, lo: 1.5, hi: 2.7, group: "holds in every seed" },
    { label: "clipping gain at 4 bits (dB)", mean: 8, lo: 7.5, hi: 8.5, group: "holds in every seed" },
  ], { title: "Margins", xTitle: "margin" });
  const svg = await c.toSVG();
  assert.ok(svg.includes("ZeroQ - noise") && svg.includes("Margins"));
  assert.throws(
    () => intervalChart([{ label: "x", mean: NaN, lo: 0, hi: 1 }], { title: "t", xTitle: "x" }),
    /finite|NaN/i,
  );
});
