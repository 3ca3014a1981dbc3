/**
 * Headless chart rendering: vega-lite spec -> vega spec -> static SVG, with
 * npm `vega-lite` and `vega` (`View.toSVG()`), no browser.
 *
 * Both packages are heavy, so they load on first use through `import(spec)`
 * with the specifier held in a variable (Deno does not prefetch those):
 * importing quantlab stays light.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/**
 * The pinned vega version (renders specs to SVG).
 *
 * @example
 * ```ts
 * import { VEGA_VERSION } from "./render.ts";
 * if (!/^5\.\d+\.\d+$/.test(VEGA_VERSION)) throw new Error("bad");
 * ```
 */
export const VEGA_VERSION = "5.33.0";
/**
 * The pinned vega-lite version (compiles specs; v5 schema).
 *
 * @example
 * ```ts
 * import { VEGA_LITE_VERSION } from "./render.ts";
 * if (!/^5\.\d+\.\d+$/.test(VEGA_LITE_VERSION)) throw new Error("bad");
 * ```
 */
export const VEGA_LITE_VERSION = "5.23.0";
/**
 * The `$schema` of every spec quantlab emits.
 *
 * @example
 * ```ts
 * import { VEGA_LITE_SCHEMA } from "./render.ts";
 * if (!VEGA_LITE_SCHEMA.endsWith("/vega-lite/v5.json")) throw new Error("bad");
 * ```
 */
export const VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/** A vega-lite specification (JSON). */
export interface VegaLiteSpec {
  /** Always {@link VEGA_LITE_SCHEMA}. */
  $schema: string;
  /** Everything else of the spec. */
  [key: string]: unknown;
}

interface VegaLiteModule {
  compile(spec: VegaLiteSpec): { spec: unknown };
}

interface VegaView {
  toSVG(scaleFactor?: number): Promise<string>;
  finalize(): void;
}

interface VegaModule {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: "none" }) => VegaView;
}

let engines: Promise<{ vega: VegaModule; vl: VegaLiteModule }> | undefined;

async function loadEngines(): Promise<{ vega: VegaModule; vl: VegaLiteModule }> {
  // Specifiers in variables: loaded only when a chart is rendered.
  const vegaSpec = `npm:vega@${VEGA_VERSION}`;
  const vlSpec = `npm:vega-lite@${VEGA_LITE_VERSION}`;
  // vega's Node build pulls in the deprecated `punycode` module; keep that
  // warning out of notebook outputs.
  const proc = (globalThis as { process?: { noDeprecation?: boolean } }).process ?? {};
  const before = proc.noDeprecation;
  proc.noDeprecation = true;
  try {
    const [vegaNs, vlNs] = await Promise.all([import(vegaSpec), import(vlSpec)]);
    const vega = (typeof vegaNs.parse === "function" ? vegaNs : vegaNs.default) as VegaModule;
    const vl = (typeof vlNs.compile === "function" ? vlNs : vlNs.default) as VegaLiteModule;
    return { vega, vl };
  } catch (e) {
    engines = undefined;
    throw new QuantlabError(
      "IO",
      `could not load ${vegaSpec} and ${vlSpec} to render charts (first use needs network access or a filled Deno cache): ${
        (e as Error).message
      }`,
      { cause: e },
    );
  } finally {
    proc.noDeprecation = before;
  }
}

/**
 * Compile a vega-lite spec to a vega spec.
 *
 * @example
 * ```ts
 * import { compileVegaLite, VEGA_LITE_SCHEMA } from "./render.ts";
 * const v = await compileVegaLite({ $schema: VEGA_LITE_SCHEMA, data: { values: [{ a: 1 }] }, mark: "point",
 *   encoding: { x: { field: "a", type: "quantitative" } } }) as { marks?: unknown[] };
 * if (!Array.isArray(v.marks)) throw new Error("bad");
 * ```
 */
export async function compileVegaLite(spec: VegaLiteSpec): Promise<unknown> {
  engines ??= loadEngines();
  const { vl } = await engines;
  return vl.compile(spec).spec;
}

/**
 * Render a vega-lite spec to a standalone SVG string, headlessly.
 *
 * @example
 * ```ts
 * import { renderSvg, VEGA_LITE_SCHEMA } from "./render.ts";
 * const svg = await renderSvg({ $schema: VEGA_LITE_SCHEMA, title: "T", data: { values: [{ a: 1, b: 2 }] },
 *   mark: "point", encoding: { x: { field: "a", type: "quantitative" }, y: { field: "b", type: "quantitative" } } });
 * if (!svg.startsWith("<svg") || !svg.includes(">T</text>")) throw new Error(svg.slice(0, 100));
 * ```
 */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  engines ??= loadEngines();
  const { vega, vl } = await engines;
  let compiled: unknown;
  try {
    compiled = vl.compile(spec).spec;
  } catch (e) {
    throw new QuantlabError("INVALID_ARGUMENT", `vega-lite could not compile the chart spec: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
