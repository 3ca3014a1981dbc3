/**
 * A chart: a vega-lite v5 spec that displays in Jupyter as an interactive
 * chart (`application/vnd.vegalite.v5+json`) plus a static SVG (for GitHub
 * and nbviewer) and a text description.
 *
 * @module
 */
import { JUPYTER_DISPLAY, type MediaBundle } from "../notebook/display.ts";
import { renderSvg, VEGA_LITE_SCHEMA, type VegaLiteSpec } from "./render.ts";
import { QuantlabError } from "../errors.ts";

/**
 * A vega-lite chart with a title, rendered to SVG on demand (cached).
 *
 * @example
 * ```ts
 * import { Chart } from "./chart.ts";
 * import { VEGA_LITE_SCHEMA } from "./render.ts";
 * import { JUPYTER_DISPLAY } from "../notebook/display.ts";
 * const c = new Chart({ $schema: VEGA_LITE_SCHEMA, title: "Demo", data: { values: [{ x: 1, y: 2 }] }, mark: "point",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } } });
 * const b = await c[JUPYTER_DISPLAY]();
 * if (!b["image/svg+xml"]?.startsWith("<svg") || !b["application/vnd.vegalite.v5+json"]) throw new Error("bad");
 * ```
 */
export class Chart {
  /** The vega-lite spec (v5 schema). */
  readonly spec: VegaLiteSpec;
  #svg?: Promise<string>;
  #svgText?: string;

  /** Wrap a vega-lite spec; its `$schema` must be the v5 schema. */
  constructor(spec: VegaLiteSpec) {
    if (spec.$schema !== VEGA_LITE_SCHEMA) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `chart spec $schema must be ${VEGA_LITE_SCHEMA}, got ${spec.$schema}`,
      );
    }
    this.spec = spec;
  }

  /** The chart title (empty when none). */
  get title(): string {
    const t = this.spec.title;
    if (typeof t === "string") return t;
    if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") {
      return (t as { text: string }).text;
    }
    return "";
  }

  /** Static SVG (rendered once with vega, headless). */
  toSVG(): Promise<string> {
    this.#svg ??= renderSvg(this.spec).then((svg) => this.#svgText = svg, (e) => {
      this.#svg = undefined;
      throw e;
    });
    return this.#svg;
  }

  /** The SVG if it has been rendered already (see {@link Chart.render}), else `undefined`. */
  get svg(): string | undefined {
    return this.#svgText;
  }

  /**
   * Render the SVG now and return this chart, so that its Jupyter display is
   * synchronous: `await chart.render()` as the last line of a cell.
   */
  async render(): Promise<this> {
    await this.toSVG();
    return this;
  }

  /** The spec as JSON text. */
  toJSON(): VegaLiteSpec {
    return this.spec;
  }

  /** A one-line description: title, mark and axis titles. */
  toString(): string {
    const axes = describeAxes(this.spec);
    return `Chart: ${this.title || "(untitled)"}${axes ? ` [${axes}]` : ""}`;
  }

  /**
   * Jupyter display: vega-lite v5 spec, static SVG and plain text. Synchronous
   * once rendered ({@link Chart.render}); Deno's kernel can drop results that
   * resolve late, so quantlab renders charts before returning them.
   */
  [JUPYTER_DISPLAY](): MediaBundle | Promise<MediaBundle> {
    const bundle = (svg: string): MediaBundle => ({
      "application/vnd.vegalite.v5+json": this.spec,
      "image/svg+xml": svg,
      "text/plain": this.toString(),
    });
    return this.#svgText !== undefined ? bundle(this.#svgText) : this.toSVG().then(bundle);
  }
}

function describeAxes(spec: VegaLiteSpec): string {
  const layers = Array.isArray(spec.layer) ? spec.layer as VegaLiteSpec[] : [spec];
  const enc = (layers.find((l) => l.encoding) ?? spec).encoding as
    | Record<string, { title?: unknown; field?: unknown }>
    | undefined;
  if (!enc) return "";
  const parts: string[] = [];
  for (const ch of ["x", "y", "color"]) {
    const e = enc[ch];
    if (e) parts.push(`${ch}: ${String(e.title ?? e.field ?? "")}`);
  }
  return parts.join("; ");
}
