/**
 * Jupyter display bundles: the protocol Deno's kernel uses to show objects.
 *
 * An object shows richly in a Deno notebook when it has a
 * `[Symbol.for("Jupyter.display")]()` method that returns (or resolves to) a
 * MIME bundle such as `{ "text/html": ..., "text/plain": ... }`. The method
 * works without `Deno.jupyter`, so the same objects print as text in scripts.
 * quantlab never puts ANSI colour codes in a bundle.
 *
 * @module
 */

/**
 * The well-known symbol Deno's Jupyter kernel looks for.
 *
 * @example
 * ```ts
 * import { JUPYTER_DISPLAY } from "./display.ts";
 * if (JUPYTER_DISPLAY !== Symbol.for("Jupyter.display")) throw new Error("bad");
 * ```
 */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display");

/** A JSON object inside a bundle (vega-lite specs, application/json). */
export type JsonObject = { readonly [key: string]: unknown };

/** A Jupyter MIME bundle: MIME type to text (or a JSON object for JSON types). */
export interface MediaBundle {
  /** Plain text, always present in quantlab bundles. */
  "text/plain"?: string;
  /** HTML (tables, reports). */
  "text/html"?: string;
  /** A static SVG picture (shown by GitHub and nbviewer). */
  "image/svg+xml"?: string;
  /** Markdown. */
  "text/markdown"?: string;
  /** A vega-lite v5 chart (interactive in JupyterLab and VS Code). */
  "application/vnd.vegalite.v5+json"?: JsonObject;
  /** Any other MIME type. */
  [mime: string]: string | JsonObject | undefined;
}

/** Anything Deno's kernel can display richly. */
export interface Displayable {
  /** Return the MIME bundle to show. */
  [JUPYTER_DISPLAY](): MediaBundle | Promise<MediaBundle>;
}

/**
 * Whether `x` implements the Jupyter display protocol.
 *
 * @example
 * ```ts
 * import { isDisplayable, JUPYTER_DISPLAY } from "./display.ts";
 * const o = { [JUPYTER_DISPLAY]: () => ({ "text/plain": "hi" }) };
 * if (!isDisplayable(o) || isDisplayable(42)) throw new Error("bad");
 * ```
 */
export function isDisplayable(x: unknown): x is Displayable {
  return typeof x === "object" && x !== null &&
    typeof (x as Record<symbol, unknown>)[JUPYTER_DISPLAY] === "function";
}

/**
 * The MIME bundle of a displayable object (awaiting async displays), or a
 * `text/plain` bundle from `String(x)` for anything else.
 *
 * @example
 * ```ts
 * import { bundleOf, JUPYTER_DISPLAY } from "./display.ts";
 * const b = await bundleOf({ [JUPYTER_DISPLAY]: async () => ({ "text/plain": "ok" }) });
 * if (b["text/plain"] !== "ok" || (await bundleOf(3))["text/plain"] !== "3") throw new Error("bad");
 * ```
 */
export async function bundleOf(x: unknown): Promise<MediaBundle> {
  if (isDisplayable(x)) return await x[JUPYTER_DISPLAY]();
  return { "text/plain": String(x) };
}

/**
 * Escape text for HTML element content and attribute values.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./display.ts";
 * if (escapeHtml(`<a href="x">&</a>`) !== "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;") throw new Error("bad");
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

/**
 * Remove ANSI escape sequences (colours, cursor moves) from text.
 *
 * @example
 * ```ts
 * import { stripAnsi } from "./display.ts";
 * if (stripAnsi("\x1b[31mred\x1b[0m") !== "red") throw new Error("bad");
 * ```
 */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/**
 * Format a number for tables: integers as is, others with `digits`
 * significant digits (fixed notation between 1e-3 and 1e6, else exponent).
 *
 * @example
 * ```ts
 * import { formatNumber } from "./display.ts";
 * if (formatNumber(42) !== "42" || formatNumber(6.0206, 3) !== "6.02" || formatNumber(1.5e-5, 2) !== "1.5e-5") {
 *   throw new Error("bad");
 * }
 * ```
 */
export function formatNumber(v: number, digits = 4): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "-∞";
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) {
    return v.toExponential(Math.max(0, digits - 1)).replace(/\.?0+e/, "e").replace("e+", "e");
  }
  const s = v.toPrecision(digits);
  return s.includes("e") ? String(Number(s)) : s;
}
