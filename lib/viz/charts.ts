/**
 * vega-lite spec builders for quantization research: lines (error or
 * accuracy against bit width), histograms with the quantization grid and
 * clipping range overlaid, and size-vs-accuracy Pareto scatters.
 *
 * Every chart has a title, axis titles with units and a legend.
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import type { QuantParams } from "../quant/params.ts";
import { Chart } from "./chart.ts";
import { VEGA_LITE_SCHEMA, type VegaLiteSpec } from "./render.ts";

/** A row of chart data. */
export type Datum = { readonly [key: string]: string | number | boolean | null };

/** One positional axis of a {@link lineChart}. */
export interface AxisOptions {
  /** Field of each row. */
  readonly field: string;
  /** Axis title, with its unit, e.g. `"SQNR (dB)"`. */
  readonly title: string;
  /** Scale type (default linear). */
  readonly scale?: "linear" | "log" | "symlog";
  /** d3 number format of tick labels, e.g. `"d"` or `".0%"`. */
  readonly format?: string;
  /** Whether the scale includes zero (default false). */
  readonly zero?: boolean;
  /** Only integer ticks (e.g. bit widths). */
  readonly integer?: boolean;
  /** Fixed domain. */
  readonly domain?: readonly [number, number];
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  /** Chart title. */
  readonly title: string;
  /** A smaller line under the title. */
  readonly subtitle?: string;
  /** Horizontal axis. */
  readonly x: AxisOptions;
  /** Vertical axis. */
  readonly y: AxisOptions;
  /** The field naming each line, and the legend title. */
  readonly series: { readonly field: string; readonly title: string };
  /** Field whose value makes a line dashed (a second legend), optional. */
  readonly dash?: { readonly field: string; readonly title: string };
  /** Draw a point at each datum (default true). */
  readonly points?: boolean;
  /** Plot width in pixels (default 420). */
  readonly width?: number;
  /** Plot height in pixels (default 260). */
  readonly height?: number;
  /**
   * Error bars: the fields holding each point's lower and upper bound (e.g. a 95 % confidence interval
   * across seeds), drawn as vertical bars in the series colour.
   */
  readonly errorBars?: { readonly lo: string; readonly hi: string };
}

const BASE_CONFIG = {
  font: "Helvetica, Arial, sans-serif",
  title: { fontSize: 14, subtitleFontSize: 11, anchor: "start" },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: "right", labelLimit: 360 },
  view: { stroke: "#ddd" },
};

function titleOf(title: string, subtitle?: string): string | { text: string; subtitle: string } {
  return subtitle ? { text: title, subtitle } : title;
}

function axisEncoding(a: AxisOptions, rows?: readonly Datum[]): Record<string, unknown> {
  const scale: Record<string, unknown> = {};
  if (a.scale && a.scale !== "linear") scale.type = a.scale;
  else scale.zero = a.zero ?? false;
  if (a.domain) scale.domain = [...a.domain];
  const axis: Record<string, unknown> = { title: a.title };
  if (a.format) axis.format = a.format;
  if (a.integer) {
    axis.tickMinStep = 1;
    // Ticks exactly at the integers present (no "2 3 3 4 4" from rounded half steps).
    const values = rows ? [...new Set(rows.map((r) => r[a.field]).filter((v) => typeof v === "number"))] : [];
    if (values.length > 0 && values.length <= 24) axis.values = (values as number[]).sort((x, y) => x - y);
    axis.format ??= "d";
  }
  return { field: a.field, type: "quantitative", title: a.title, scale, axis };
}

function checkRows(rows: readonly Datum[], fields: string[], what: string): void {
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new QuantlabError("EMPTY_TENSOR", `${what}: needs at least one data row`);
  }
  for (const f of fields) {
    if (!(f in rows[0])) {
      throw new QuantlabError("INVALID_ARGUMENT", `${what}: data rows have no field "${f}"`);
    }
  }
}

/**
 * Lines of `y` against `x`, one per value of the series field, with a legend.
 *
 * @example
 * ```ts
 * import { lineChart } from "./charts.ts";
 * const c = lineChart([{ b: 2, v: 1, m: "a" }, { b: 3, v: 2, m: "a" }], {
 *   title: "T", x: { field: "b", title: "bit width (bits)" }, y: { field: "v", title: "SQNR (dB)" },
 *   series: { field: "m", title: "method" },
 * });
 * if (c.title !== "T" || !JSON.stringify(c.spec).includes("SQNR (dB)")) throw new Error("bad");
 * ```
 */
export function lineChart(rows: readonly Datum[], o: LineChartOptions): Chart {
  const fields = [o.x.field, o.y.field, o.series.field];
  if (o.dash) fields.push(o.dash.field);
  if (o.errorBars) fields.push(o.errorBars.lo, o.errorBars.hi);
  checkRows(rows, fields, `chart "${o.title}"`);
  const encoding: Record<string, unknown> = {
    x: axisEncoding(o.x, rows),
    y: axisEncoding(o.y, rows),
    color: { field: o.series.field, type: "nominal", title: o.series.title },
    tooltip: [
      { field: o.series.field, type: "nominal", title: o.series.title },
      { field: o.x.field, type: "quantitative", title: o.x.title },
      { field: o.y.field, type: "quantitative", title: o.y.title, format: o.y.format ?? ".4~g" },
    ],
  };
  if (o.dash) encoding.strokeDash = { field: o.dash.field, type: "nominal", title: o.dash.title };
  const line = { mark: { type: "line", point: o.points ?? true, strokeWidth: 2 }, encoding };
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    title: titleOf(o.title, o.subtitle),
    width: o.width ?? 420,
    height: o.height ?? 260,
    data: { values: rows.map((r) => ({ ...r })) },
    ...(o.errorBars ? { layer: [line, errorBarLayer(o.x, o.y, o.errorBars, o.series, rows)] } : line),
    config: BASE_CONFIG,
  };
  return new Chart(spec);
}

function errorBarLayer(
  x: AxisOptions,
  y: AxisOptions,
  bars: { readonly lo: string; readonly hi: string },
  series: { readonly field: string; readonly title: string },
  rows: readonly Datum[],
): Record<string, unknown> {
  return {
    mark: { type: "errorbar", ticks: true, thickness: 1.5 },
    encoding: {
      x: axisEncoding(x, rows),
      y: { ...axisEncoding({ ...y, field: bars.lo }), title: y.title },
      y2: { field: bars.hi },
      color: { field: series.field, type: "nominal", title: series.title },
    },
  };
}

/** A row of {@link intervalChart}: one quantity's mean and confidence interval. */
export interface IntervalPoint {
  /** What the row measures (one row on the chart). */
  readonly label: string;
  /** Mean (the dot). */
  readonly mean: number;
  /** Lower bound of the interval. */
  readonly lo: number;
  /** Upper bound of the interval. */
  readonly hi: number;
  /** Colour group, e.g. whether the claim holds in every seed (optional). */
  readonly group?: string;
}

/**
 * Means with error bars, one row per quantity (a dot-and-whisker "forest plot"), with a rule at
 * `reference` (default 0): e.g. each claim's margin across seeds with its 95 % confidence interval.
 *
 * @example
 * ```ts
 * import { intervalChart } from "./charts.ts";
 * const c = intervalChart([{ label: "ZeroQ - noise (points)", mean: 2.1, lo: 1.5, hi: 2.7 }], {
 *   title: "Margins across 5 seeds", xTitle: "difference (points, mean ± 95% CI)",
 * });
 * if (!JSON.stringify(c.spec).includes('"errorbar"')) throw new Error("bad");
 * ```
 */
export function intervalChart(
  rows: readonly IntervalPoint[],
  o: { title: string; subtitle?: string; xTitle: string; reference?: number; groupTitle?: string; width?: number },
): Chart {
  checkRows(rows as unknown as Datum[], ["label", "mean", "lo", "hi"], `chart "${o.title}"`);
  for (const r of rows) assertFinite([r.mean, r.lo, r.hi], `chart "${o.title}" row "${r.label}"`);
  const grouped = rows.some((r) => r.group !== undefined);
  const y = { field: "label", type: "nominal", title: null, sort: rows.map((r) => r.label), axis: { labelLimit: 420 } };
  const color = grouped ? { field: "group", type: "nominal", title: o.groupTitle ?? "group" } : { value: "#4c78a8" };
  const x = { field: "lo", type: "quantitative", title: o.xTitle, scale: { zero: false } };
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    title: titleOf(o.title, o.subtitle),
    width: o.width ?? 360,
    height: { step: 26 },
    layer: [
      {
        data: { values: [{ reference: o.reference ?? 0 }] },
        mark: { type: "rule", strokeDash: [4, 3], color: "#888" },
        encoding: { x: { field: "reference", type: "quantitative" } },
      },
      {
        data: { values: rows.map((r) => ({ ...r, group: r.group ?? "" })) },
        layer: [
          { mark: { type: "errorbar", ticks: true, thickness: 1.5 }, encoding: { y, x, x2: { field: "hi" }, color } },
          {
            mark: { type: "point", filled: true, size: 60 },
            encoding: {
              y,
              x: { field: "mean", type: "quantitative" },
              color,
              tooltip: [
                { field: "label", type: "nominal" },
                { field: "mean", type: "quantitative", format: ".3~g" },
                { field: "lo", type: "quantitative", format: ".3~g" },
                { field: "hi", type: "quantitative", format: ".3~g" },
              ],
            },
          },
        ],
      },
    ],
    config: BASE_CONFIG,
  };
  return new Chart(spec);
}

/** A row of {@link errorVsBitsChart}: the error of one method at one bit width. */
export interface ErrorPoint {
  /** Bit width. */
  readonly bits: number;
  /** Method (one line each). */
  readonly method: string;
  /** SQNR in dB, or MSE. */
  readonly value: number;
}

/**
 * Quantization error against bit width, one line per method: SQNR in dB
 * (linear axis) or MSE (log axis).
 *
 * @example
 * ```ts
 * import { errorVsBitsChart } from "./charts.ts";
 * const c = errorVsBitsChart([{ bits: 4, method: "min-max", value: 20 }, { bits: 8, method: "min-max", value: 44 }],
 *   { metric: "sqnr", title: "SQNR against bit width" });
 * if (!JSON.stringify(c.spec).includes("bit width (bits)")) throw new Error("bad");
 * ```
 */
export function errorVsBitsChart(
  rows: readonly ErrorPoint[],
  o: { metric: "sqnr" | "mse"; title: string; subtitle?: string; seriesTitle?: string; unit?: string },
): Chart {
  return lineChart(rows as unknown as Datum[], {
    title: o.title,
    subtitle: o.subtitle,
    x: { field: "bits", title: "bit width (bits)", integer: true, format: "d" },
    y: o.metric === "sqnr"
      ? { field: "value", title: "SQNR (dB)" }
      : { field: "value", title: `MSE (${o.unit ?? "squared input units"}, log scale)`, scale: "log", format: ".1e" },
    series: { field: "method", title: o.seriesTitle ?? "method" },
  });
}

/** A row of {@link accuracyVsBitsChart}. */
export interface AccuracyPoint {
  /** Bit width. */
  readonly bits: number;
  /** Method (one line each). */
  readonly method: string;
  /** Accuracy as a fraction in [0, 1]. */
  readonly accuracy: number;
}

/**
 * Accuracy (shown in percent) against bit width, one line per method.
 *
 * @example
 * ```ts
 * import { accuracyVsBitsChart } from "./charts.ts";
 * const c = accuracyVsBitsChart([{ bits: 4, method: "PTQ", accuracy: 0.8 }], { title: "Accuracy" });
 * if (!JSON.stringify(c.spec).includes("accuracy (%)")) throw new Error("bad");
 * ```
 */
export function accuracyVsBitsChart(
  rows: readonly AccuracyPoint[],
  o: { title: string; subtitle?: string; seriesTitle?: string; yTitle?: string; reference?: number },
): Chart {
  // Zoomed to the data (differences of a point matter); the float reference, when given, is drawn as a rule.
  const c = lineChart(rows as unknown as Datum[], {
    title: o.title,
    subtitle: o.subtitle,
    x: { field: "bits", title: "bit width (bits)", integer: true, format: "d" },
    y: { field: "accuracy", title: o.yTitle ?? "test accuracy (%)", format: ".1%" },
    series: { field: "method", title: o.seriesTitle ?? "method" },
  });
  if (o.reference === undefined) return c;
  const { $schema, title, width, height, data, config, ...line } = c.spec;
  return new Chart({
    $schema,
    title,
    width,
    height,
    config,
    layer: [{ data, ...line }, referenceLayer(o.reference, "y", "float", ".1%")],
  });
}

function referenceLayer(value: number, axis: "x" | "y", label: string, format?: string): Record<string, unknown> {
  const text = `${label}${format ? "" : ` ${value}`}`;
  return {
    data: { values: [{ reference: value, label: text }] },
    layer: [
      {
        mark: { type: "rule", strokeDash: [5, 3], color: "#555", strokeWidth: 1.5 },
        encoding: { [axis]: { field: "reference", type: "quantitative" } },
      },
      {
        mark: axis === "x"
          ? { type: "text", align: "left", dx: 3, dy: -4, baseline: "bottom", fontSize: 10, color: "#555" }
          : { type: "text", align: "right", dy: -4, baseline: "bottom", fontSize: 10, color: "#555", x: "width" },
        encoding: {
          [axis]: { field: "reference", type: "quantitative" },
          ...(axis === "x" ? { y: { value: 0 } } : {}),
          text: format
            ? { field: "reference", type: "quantitative", format, formatType: "number" }
            : { field: "label", type: "nominal" },
        },
      },
    ],
  };
}

/** Options of {@link dotPlotChart}. */
export interface DotPlotOptions {
  /** Chart title. */
  readonly title: string;
  /** A smaller line under the title. */
  readonly subtitle?: string;
  /** The measured value (horizontal, zoomed to the data unless `zero`). */
  readonly x: AxisOptions;
  /** The category of each row (vertical axis, in the order given by `order` or of first appearance). */
  readonly y: { readonly field: string; readonly title: string; readonly order?: readonly string[] };
  /** Colour (and legend) field, e.g. weight granularity. */
  readonly color?: { readonly field: string; readonly title: string };
  /** Small multiples: one panel per value of this field, stacked vertically, each with its own x range. */
  readonly facet?: { readonly field: string; readonly title: string; readonly order?: readonly string[] };
  /** A reference value drawn as a dashed rule in every panel, e.g. the float model's accuracy. */
  readonly reference?: { readonly value: number; readonly label: string };
  /** Panel width in pixels (default 460). */
  readonly width?: number;
}

/**
 * A dot plot: one row per category (e.g. calibrator or layer name), the value on a zoomed horizontal axis, a
 * colour per series, optional small multiples (one panel per facet value, stacked) and a reference rule (e.g.
 * float accuracy). Categorical data stays categorical; long names fit as row labels; differences of a point are
 * visible because the axis is not forced to zero.
 *
 * @example
 * ```ts
 * import { dotPlotChart } from "./charts.ts";
 * const c = dotPlotChart([
 *   { bits: "W4A8", calibrator: "min-max", weights: "per-tensor", acc: 0.81 },
 *   { bits: "W4A8", calibrator: "min-max", weights: "per-channel", acc: 0.9 },
 * ], { title: "PTQ", x: { field: "acc", title: "accuracy", format: ".1%" }, y: { field: "calibrator", title: "calibrator" },
 *   color: { field: "weights", title: "weights" }, facet: { field: "bits", title: "bits" },
 *   reference: { value: 0.92, label: "float" } });
 * if (!JSON.stringify(c.spec).includes('"row"') || !JSON.stringify(c.spec).includes("float")) throw new Error("bad");
 * ```
 */
export function dotPlotChart(rows: readonly Datum[], o: DotPlotOptions): Chart {
  const fields = [o.x.field, o.y.field];
  if (o.color) fields.push(o.color.field);
  if (o.facet) fields.push(o.facet.field);
  checkRows(rows, fields, `chart "${o.title}"`);
  for (const r of rows) assertFinite([Number(r[o.x.field])], `chart "${o.title}" value of "${r[o.y.field]}"`);
  const order = o.y.order ?? [...new Set(rows.map((r) => String(r[o.y.field])))];
  const x = axisEncoding(o.x, rows);
  const y = {
    field: o.y.field,
    type: "nominal",
    // In small multiples the facet header names the panel; the category labels name the rows.
    title: o.facet ? null : o.y.title,
    sort: order,
    axis: { labelLimit: 340, grid: true, gridDash: [2, 2] },
  };
  // At least a few labelled ticks, also on narrow zoomed ranges.
  (x.axis as Record<string, unknown>).tickCount = 6;
  const color = o.color ? { field: o.color.field, type: "nominal", title: o.color.title } : { value: "#4c78a8" };
  const tooltip = [
    ...(o.facet ? [{ field: o.facet.field, type: "nominal", title: o.facet.title }] : []),
    { field: o.y.field, type: "nominal", title: o.y.title },
    ...(o.color ? [{ field: o.color.field, type: "nominal", title: o.color.title }] : []),
    { field: o.x.field, type: "quantitative", title: o.x.title, format: o.x.format ?? ".4~g" },
  ];
  const point: Record<string, unknown> = { x, y, color, tooltip };
  if (o.color) point.shape = { field: o.color.field, type: "nominal", title: o.color.title };
  const layers: Record<string, unknown>[] = [
    { mark: { type: "point", filled: true, size: 70, opacity: 0.9 }, encoding: point },
  ];
  // Rows carry the reference as a field, so that each panel's (independent, zoomed) x scale includes it; the label
  // is drawn once per panel (on the first row of each).
  const seen = new Set<string>();
  const data = rows.map((r) => {
    const key = o.facet ? String(r[o.facet.field]) : "";
    const first = !seen.has(key);
    seen.add(key);
    return o.reference ? { ...r, __reference: o.reference.value, __first: first } : { ...r };
  });
  if (o.reference) {
    const rx = { field: "__reference", type: "quantitative" };
    layers.push({ mark: { type: "rule", strokeDash: [5, 3], color: "#555", strokeWidth: 1.5 }, encoding: { x: rx } });
    layers.push({
      transform: [{ filter: "datum.__first" }],
      mark: { type: "text", align: "left", dx: 4, dy: 2, baseline: "top", fontSize: 10, color: "#333", y: 0 },
      encoding: { x: rx, text: { value: o.reference.label } },
    });
  }
  const inner = { width: o.width ?? 460, height: { step: 22 }, layer: layers };
  const spec: VegaLiteSpec = o.facet
    ? {
      $schema: VEGA_LITE_SCHEMA,
      title: titleOf(o.title, o.subtitle),
      data: { values: data },
      facet: {
        row: {
          field: o.facet.field,
          type: "nominal",
          title: o.facet.title,
          sort: o.facet.order ?? [...new Set(rows.map((r) => String(r[o.facet!.field])))],
          header: { labelAngle: 0, labelAlign: "left", labelFontSize: 12, labelFontWeight: "bold", titleFontSize: 12 },
        },
      },
      spec: inner,
      resolve: { scale: { x: "independent" } },
      config: BASE_CONFIG,
    }
    : {
      $schema: VEGA_LITE_SCHEMA,
      title: titleOf(o.title, o.subtitle),
      data: { values: data },
      ...inner,
      config: BASE_CONFIG,
    };
  return new Chart(spec);
}

/** A point of {@link paretoChart}. */
export interface ParetoPoint {
  /** Cost, e.g. model size. */
  readonly size: number;
  /** Quality, e.g. accuracy (higher is better). */
  readonly quality: number;
  /** Text next to the point. */
  readonly label: string;
  /** Colour group (legend). */
  readonly series: string;
}

/**
 * The points not dominated by another (no other point is at most as large and
 * strictly better, or strictly smaller and at least as good), sorted by size.
 *
 * @example
 * ```ts
 * import { paretoFront } from "./charts.ts";
 * const f = paretoFront([{ size: 1, quality: 1 }, { size: 2, quality: 0.5 }, { size: 3, quality: 2 }]);
 * if (f.map((p) => p.size).join() !== "1,3") throw new Error("bad");
 * ```
 */
export function paretoFront<T extends { size: number; quality: number }>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => a.size - b.size || b.quality - a.quality);
  const front: T[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    if (p.quality > best) {
      front.push(p);
      best = p.quality;
    }
  }
  return front;
}

/**
 * Size against quality as a labelled scatter with the Pareto frontier drawn as
 * a step line.
 *
 * @example
 * ```ts
 * import { paretoChart } from "./charts.ts";
 * const c = paretoChart([{ size: 10, quality: 0.9, label: "8-bit", series: "per-tensor" }],
 *   { title: "Size vs accuracy", xTitle: "model size (KiB)", yTitle: "accuracy (%)", yFormat: ".0%" });
 * if (!JSON.stringify(c.spec).includes("Pareto frontier")) throw new Error("bad");
 * ```
 */
export function paretoChart(
  points: readonly ParetoPoint[],
  o: {
    title: string;
    subtitle?: string;
    xTitle: string;
    yTitle: string;
    seriesTitle?: string;
    xScale?: "linear" | "log";
    yFormat?: string;
  },
): Chart {
  checkRows(points as unknown as Datum[], ["size", "quality", "label", "series"], `chart "${o.title}"`);
  const front = paretoFront(points).map((p) => ({ size: p.size, quality: p.quality, series: "Pareto frontier" }));
  const x = axisEncoding({ field: "size", title: o.xTitle, scale: o.xScale });
  const y = axisEncoding({ field: "quality", title: o.yTitle, format: o.yFormat });
  const color = { field: "series", type: "nominal", title: o.seriesTitle ?? "method" };
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    title: titleOf(o.title, o.subtitle),
    width: 420,
    height: 280,
    layer: [
      {
        data: { values: front },
        mark: { type: "line", interpolate: "step-after", strokeDash: [4, 3], strokeWidth: 1.5 },
        encoding: { x, y, color },
      },
      {
        data: { values: points.map((p) => ({ ...p })) },
        mark: { type: "point", filled: true, size: 70 },
        encoding: {
          x,
          y,
          color,
          tooltip: [
            { field: "label", type: "nominal" },
            { field: "size", type: "quantitative", title: o.xTitle },
            { field: "quality", type: "quantitative", title: o.yTitle, format: ".4~g" },
          ],
        },
      },
      {
        data: { values: points.map((p) => ({ ...p })) },
        mark: { type: "text", dx: 6, dy: -6, align: "left", fontSize: 10 },
        encoding: { x, y, text: { field: "label", type: "nominal" } },
      },
    ],
    config: BASE_CONFIG,
  };
  return new Chart(spec);
}

/** Options of {@link histogramChart}. */
export interface HistogramOptions {
  /** Chart title. */
  readonly title: string;
  /** A smaller line under the title. */
  readonly subtitle?: string;
  /** Horizontal axis title with unit (default `"value"`). */
  readonly xTitle?: string;
  /** Number of bins (default 60). */
  readonly bins?: number;
  /** Quantization levels (dequantized grid values) to draw as thin rules. */
  readonly levels?: ArrayLike<number>;
  /** Clipping range to draw as thick dashed rules. */
  readonly clip?: readonly [number, number];
  /** Per-tensor parameters: sets `levels` and `clip` from the grid. */
  readonly params?: QuantParams;
  /** Log-scaled counts (for heavy tails). */
  readonly logCount?: boolean;
  /** Most level rules to draw (default 64; finer grids draw no rules and say so). */
  readonly maxLevels?: number;
}

/**
 * The grid of a per-tensor parameter set: its dequantized levels and clipping range.
 *
 * @example
 * ```ts
 * import { gridOf } from "./charts.ts";
 * import { paramsFromRange } from "../quant/params.ts";
 * const p = paramsFromRange([-1], [1], { bits: 2, signed: true, symmetric: true, range: "restricted" }, { kind: "tensor" });
 * const g = gridOf(p);
 * if (g.levels.join() !== "-1,0,1" || g.clip.join() !== "-1,1") throw new Error(g.levels.join());
 * ```
 */
export function gridOf(p: QuantParams): { levels: number[]; clip: [number, number] } {
  if (p.scale.length !== 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `gridOf needs per-tensor parameters (1 scale), got ${p.scale.length}`);
  }
  const s = p.scale[0], z = p.zeroPoint[0];
  const levels: number[] = [];
  for (let q = p.qmin; q <= p.qmax; q++) levels.push(Math.fround((q - z) * s));
  return { levels, clip: [levels[0], levels[levels.length - 1]] };
}

/**
 * Counts of `values` in equal-width bins over `[lo, hi]` (values outside are
 * counted in the end bins).
 *
 * @example
 * ```ts
 * import { binCounts } from "./charts.ts";
 * const c = binCounts([0, 0.1, 0.9, 1], 2, 0, 1);
 * if (c.join() !== "2,2") throw new Error(c.join());
 * ```
 */
export function binCounts(values: ArrayLike<number>, bins: number, lo: number, hi: number): Float64Array {
  const counts = new Float64Array(bins);
  const w = (hi - lo) / bins;
  const inv = w > 0 ? 1 / w : 0;
  for (let i = 0; i < values.length; i++) {
    let b = Math.floor((values[i] - lo) * inv);
    b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
    counts[b]++;
  }
  return counts;
}

/**
 * A histogram of `values` with the quantization levels and the clipping
 * range overlaid (legend: values, quantization level, clipping bound).
 *
 * @example
 * ```ts
 * import { histogramChart } from "./charts.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const x = Float32Array.from({ length: 200 }, (_, i) => Math.sin(i));
 * const { params } = quantizer().int(3).fakeQuantize(x);
 * const c = histogramChart(x, { title: "3-bit grid", params, xTitle: "weight value (a.u.)" });
 * if (!JSON.stringify(c.spec).includes("clipping bound")) throw new Error("bad");
 * ```
 */
export function histogramChart(values: ArrayLike<number>, o: HistogramOptions): Chart {
  if (values.length === 0) throw new QuantlabError("EMPTY_TENSOR", `histogram "${o.title}": no values`);
  const bins = o.bins ?? 60;
  if (!Number.isInteger(bins) || bins < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `histogram bins must be a positive integer, got ${bins}`);
  }
  assertFinite(values, `histogram "${o.title}" values`);
  const grid = o.params ? gridOf(o.params) : undefined;
  const levels = o.levels ? Array.from(o.levels) : grid?.levels;
  const clip = o.clip ?? grid?.clip;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new QuantlabError("NON_FINITE", `histogram "${o.title}": values must be finite`);
  }
  if (clip) {
    lo = Math.min(lo, clip[0]);
    hi = Math.max(hi, clip[1]);
  }
  if (hi === lo) hi = lo + 1;
  const counts = binCounts(values, bins, lo, hi);
  const w = (hi - lo) / bins;
  const bars = Array.from(counts, (c, i) => ({
    lo: lo + i * w,
    hi: lo + (i + 1) * w,
    count: c,
    base: 0,
    series: "values",
  }));
  const maxLevels = o.maxLevels ?? 64;
  const showLevels = levels !== undefined && levels.length <= maxLevels;
  const domain = ["values"], range = ["#4c78a8"];
  const xTitle = o.xTitle ?? "value";
  const x = { field: "lo", type: "quantitative", title: xTitle, scale: { zero: false } };
  const yScale: Record<string, unknown> = o.logCount ? { type: "symlog" } : {};
  let maxCount = 1;
  for (let i = 0; i < counts.length; i++) if (counts[i] > maxCount) maxCount = counts[i];
  const yAxis: Record<string, unknown> = {};
  if (o.logCount) {
    const ticks = [0];
    for (let t = 1; t <= maxCount; t *= 10) ticks.push(t);
    yAxis.values = ticks;
    yAxis.format = "d";
  }
  const layer: Record<string, unknown>[] = [{
    data: { values: bars },
    mark: { type: "bar", opacity: 0.85 },
    encoding: {
      x,
      x2: { field: "hi" },
      y: {
        field: "count",
        type: "quantitative",
        title: o.logCount ? "count (values per bin, log scale)" : "count (values per bin)",
        scale: yScale,
        axis: yAxis,
      },
      y2: { field: "base" },
      color: { field: "series", type: "nominal", title: "" },
      tooltip: [{ field: "lo", type: "quantitative", format: ".3~g" }, { field: "count", type: "quantitative" }],
    },
  }];
  if (showLevels) {
    domain.push("quantization level");
    range.push("#54a24b");
    layer.push({
      data: { values: levels!.map((v) => ({ lo: v, series: "quantization level" })) },
      mark: { type: "rule", strokeWidth: 1, opacity: 0.7 },
      encoding: { x, color: { field: "series", type: "nominal", title: "" } },
    });
  }
  if (clip) {
    domain.push("clipping bound");
    range.push("#e45756");
    layer.push({
      data: { values: [{ lo: clip[0], series: "clipping bound" }, { lo: clip[1], series: "clipping bound" }] },
      mark: { type: "rule", strokeWidth: 2.5, strokeDash: [6, 3] },
      encoding: { x, color: { field: "series", type: "nominal", title: "" } },
    });
  }
  (layer[0].encoding as Record<string, Record<string, unknown>>).color.scale = { domain, range };
  let subtitle = o.subtitle;
  if (levels !== undefined && !showLevels) {
    subtitle = `${subtitle ? subtitle + "; " : ""}${levels.length} levels (too many to draw)`;
  }
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    title: titleOf(o.title, subtitle),
    width: 420,
    height: 220,
    layer,
    config: BASE_CONFIG,
  };
  return new Chart(spec);
}
