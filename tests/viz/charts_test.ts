import assert from "node:assert/strict";
import {
  accuracyVsBitsChart,
  binCounts,
  errorVsBitsChart,
  gridOf,
  histogramChart,
  lineChart,
  paretoChart,
  paretoFront,
} from "../../lib/viz/charts.ts";
import { Chart } from "../../lib/viz/chart.ts";
import { describeParams, inspectTensor, tensorStats } from "../../lib/viz/inspect.ts";
import { VEGA_LITE_SCHEMA } from "../../lib/viz/render.ts";
import { paramsFromRange } from "../../lib/quant/params.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { JUPYTER_DISPLAY } from "../../lib/notebook/display.ts";

type Spec = Record<string, unknown>;
const layers = (c: Chart) => c.spec.layer as Spec[];

Deno.test("charts: line charts carry the v5 schema, a title, axis titles with units and a legend", () => {
  const c = errorVsBitsChart([{ bits: 2, method: "a", value: 1 }, { bits: 3, method: "b", value: 7 }], {
    metric: "sqnr",
    title: "T",
  });
  assert.equal(c.spec.$schema, VEGA_LITE_SCHEMA);
  assert.equal(c.title, "T");
  const enc = c.spec.encoding as Record<string, Spec>;
  assert.equal(enc.x.title, "bit width (bits)");
  assert.equal(enc.y.title, "SQNR (dB)");
  assert.equal((enc.color as Spec).field, "method");
  const m = errorVsBitsChart([{ bits: 2, method: "a", value: 1 }], { metric: "mse", title: "M" });
  assert.equal(((m.spec.encoding as Record<string, Spec>).y.scale as Spec).type, "log");
  const a = accuracyVsBitsChart([{ bits: 4, method: "x", accuracy: 0.5 }], { title: "A" });
  assert.equal(((a.spec.encoding as Record<string, Spec>).y.axis as Spec).format, ".1%"); // zoomed: one decimal
  assert.throws(
    () =>
      lineChart([], {
        title: "E",
        x: { field: "a", title: "a" },
        y: { field: "b", title: "b" },
        series: { field: "s", title: "s" },
      }),
    (e: unknown) => e instanceof QuantlabError && e.code === "EMPTY_TENSOR",
  );
  assert.throws(
    () =>
      lineChart([{ a: 1 }], {
        title: "E",
        x: { field: "a", title: "a" },
        y: { field: "b", title: "b" },
        series: { field: "s", title: "s" },
      }),
    /no field "b"/,
  );
  assert.throws(() => new Chart({ $schema: "https://vega.github.io/schema/vega-lite/v4.json" }), /v5/);
});

Deno.test("charts: histogram counts every value once and overlays the grid levels and clip range", () => {
  const rng = new Prng(3);
  const x = rng.fillNormal(new Float32Array(5000)) as Float32Array;
  const { params } = quantizer().int(3).symmetric().fakeQuantize(x);
  const c = histogramChart(x, { title: "H", params, bins: 40 });
  const [bars, levels, clip] = layers(c);
  const counts = ((bars.data as Spec).values as { count: number }[]).map((b) => b.count);
  assert.equal(counts.length, 40);
  assert.equal(counts.reduce((a, b) => a + b, 0), 5000);
  const lv = ((levels.data as Spec).values as { lo: number }[]).map((l) => l.lo);
  assert.equal(lv.length, 7); // int3 restricted: codes -3..3
  const s = params.scale[0];
  assert.deepEqual(lv, [-3, -2, -1, 0, 1, 2, 3].map((q) => Math.fround(q * s)));
  assert.deepEqual(((clip.data as Spec).values as { lo: number }[]).map((l) => l.lo), [lv[0], lv[6]]);
  const scale = ((bars.encoding as Record<string, Spec>).color.scale as Spec).domain;
  assert.deepEqual(scale, ["values", "quantization level", "clipping bound"]);
  // 8-bit grids have too many levels to draw: no level layer, and the subtitle says so.
  const fine = histogramChart(x, { title: "F", params: quantizer().int(8).fit(x).params });
  assert.equal(layers(fine).length, 2);
  assert.ok(JSON.stringify(fine.spec.title).includes("255 levels"));
  assert.throws(() => histogramChart([], { title: "E" }), (e: unknown) => e instanceof QuantlabError);
  assert.throws(() => histogramChart([NaN, 1], { title: "E" }), (e: unknown) => e instanceof QuantlabError);
});

Deno.test("charts: binCounts and gridOf match closed forms", () => {
  assert.deepEqual(Array.from(binCounts([0, 0.24, 0.25, 0.5, 0.99, 1, 5, -3], 4, 0, 1)), [3, 1, 1, 3]);
  const p = paramsFromRange([0], [3], { bits: 2, signed: false, symmetric: false, range: "full" }, { kind: "tensor" });
  assert.deepEqual(gridOf(p).levels, [0, 1, 2, 3]);
  const pc = paramsFromRange([-1, -2], [1, 2], { bits: 4, signed: true, symmetric: true, range: "full" }, {
    kind: "channel",
    axis: 0,
  });
  assert.throws(() => gridOf(pc), /per-tensor/);
});

Deno.test("charts: paretoFront keeps exactly the non-dominated points (property)", () => {
  const rng = new Prng(11);
  for (let trial = 0; trial < 50; trial++) {
    const pts = Array.from({ length: 20 }, () => ({ size: rng.nextInt(10), quality: rng.nextInt(10) }));
    const front = paretoFront(pts);
    const dominated = (p: { size: number; quality: number }) =>
      pts.some((q) => q.size <= p.size && q.quality >= p.quality && (q.size < p.size || q.quality > p.quality));
    for (const p of front) assert.ok(!dominated(p));
    for (const p of pts) {
      if (!dominated(p)) assert.ok(front.some((f) => f.size === p.size && f.quality === p.quality));
    }
    for (let i = 1; i < front.length; i++) assert.ok(front[i].size > front[i - 1].size);
  }
  const c = paretoChart([{ size: 1, quality: 2, label: "x", series: "s" }], {
    title: "P",
    xTitle: "size (KiB)",
    yTitle: "accuracy (%)",
  });
  assert.equal(layers(c).length, 3);
});

Deno.test("charts: headless SVG has the title, axis titles and legend entries", async () => {
  const c = errorVsBitsChart([
    { bits: 2, method: "min-max", value: 1 },
    { bits: 8, method: "min-max", value: 37 },
    { bits: 2, method: "entropy", value: 4 },
    { bits: 8, method: "entropy", value: 38 },
  ], { metric: "sqnr", title: "SQNR by calibrator", seriesTitle: "calibrator" });
  const svg = await c.toSVG();
  assert.ok(svg.startsWith("<svg"));
  for (const text of ["SQNR by calibrator", "bit width (bits)", "SQNR (dB)", "calibrator", "min-max", "entropy"]) {
    assert.ok(svg.includes(`>${text}</text>`), `SVG lacks text "${text}"`);
  }
  assert.equal(await c.toSVG(), svg); // cached
  const b = await c[JUPYTER_DISPLAY]();
  assert.deepEqual(Object.keys(b).sort(), ["application/vnd.vegalite.v5+json", "image/svg+xml", "text/plain"]);
  assert.ok(!JSON.stringify(b).includes("\\u001b"));
});

Deno.test("inspect: tensor statistics, parameter description and display bundle", async () => {
  const s = tensorStats([1, -1, 0, 2]);
  assert.deepEqual(s, { size: 4, min: -1, max: 2, mean: 0.5, std: Math.sqrt(1.5 - 0.25), zeros: 0.25 });
  const x = new Prng(1).fillNormal(new Float32Array(300)) as Float32Array;
  const { params } = quantizer().uint(4).asymmetric().fakeQuantize(x);
  assert.ok(describeParams(params).startsWith("uint4 asymmetric per-tensor codes [0, 15]"));
  const v = inspectTensor(x, { name: "x", params });
  const bundle = await v[JUPYTER_DISPLAY]();
  assert.ok(String(bundle["text/html"]).includes("<svg"));
  assert.ok("application/vnd.vegalite.v5+json" in bundle && "image/svg+xml" in bundle);
  assert.throws(() => tensorStats([]), (e: unknown) => e instanceof QuantlabError && e.code === "EMPTY_TENSOR");
});

Deno.test("charts: rendered charts fit the report width, label every axis and never repeat a tick", async () => {
  const { dotPlotChart } = await import("../../lib/viz/charts.ts");
  const { svgProblems } = await import("./_svg_checks.ts");
  // PTQ-like grid: 3 bit settings x 4 calibrators x 2 granularities, as small multiples with the float reference.
  const rows = ["W8A8", "W6A6", "W4A8"].flatMap((config, k) =>
    ["min-max", "percentile 99.99", "entropy (KL)", "MSE-optimal"].flatMap((calibrator, c) =>
      ["per-tensor", "per-channel"].map((granularity, g) => ({
        config,
        calibrator,
        granularity,
        top1: 0.93 - 0.02 * k - 0.01 * c + 0.005 * g,
      }))
    )
  );
  const dot = dotPlotChart(rows, {
    title: "PTQ accuracy",
    x: { field: "top1", title: "test accuracy", format: ".1%" },
    y: { field: "calibrator", title: "activation calibrator" },
    color: { field: "granularity", title: "weights" },
    facet: { field: "config", title: "bits" },
    reference: { value: 0.935, label: "float 93.50%" },
  });
  const svg = await dot.toSVG();
  assert.deepEqual(svgProblems(svg, "dot plot"), []);
  for (const t of ["W8A8", "W4A8", "MSE-optimal", "float 93.50%", "test accuracy"]) {
    assert.ok(svg.includes(`>${t}</text>`), `dot plot lacks "${t}"`);
  }
  // Panels zoom to their own data: the W8A8 axis does not reach down to the W4A8 values.
  assert.ok(!/X-axis titled 'test accuracy' for a linear scale with values from 0\.0%/.test(svg));
  // Per-layer axis: the layer names, not indices.
  const layers = dotPlotChart(["conv1", "relu1", "conv2"].map((name, i) => ({ name, sqnr: 30 - i, config: "W8A8" })), {
    title: "SQNR per layer",
    x: { field: "sqnr", title: "SQNR (dB)" },
    y: { field: "name", title: "layer (graph order)" },
    color: { field: "config", title: "bits" },
  });
  const lsvg = await layers.toSVG();
  assert.deepEqual(svgProblems(lsvg, "layers"), []);
  assert.ok(lsvg.includes(">relu1</text>"));
  // Integer axes over a short range: ticks only at the integers present (no "2 3 3 4 4").
  const bits = errorVsBitsChart([2, 3, 4].map((b) => ({ bits: b, method: "m", value: 6 * b })), {
    metric: "sqnr",
    title: "bits",
  });
  const bsvg = await bits.toSVG();
  assert.deepEqual(svgProblems(bsvg, "bits"), []);
  // Accuracy against bits: zoomed, with the float reference drawn.
  const acc = accuracyVsBitsChart([{ bits: 4, method: "PTQ", accuracy: 0.901 }, {
    bits: 8,
    method: "PTQ",
    accuracy: 0.926,
  }], {
    title: "acc",
    reference: 0.93,
  });
  const asvg = await acc.toSVG();
  assert.deepEqual(svgProblems(asvg, "accuracy"), []);
  assert.ok(asvg.includes(">93.0%</text>"), "float reference label");
  assert.ok(!asvg.includes(">0.0%</text>"), "accuracy axis zoomed, not from 0 %");
});
