/**
 * Tables that show as HTML in Jupyter, as aligned text in a terminal and as
 * Markdown in reports.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { escapeHtml, formatNumber, JUPYTER_DISPLAY, type MediaBundle } from "./display.ts";

/** A table cell value. */
export type Cell = string | number | boolean | null | undefined;

/** A table row: column key to value. */
export type Row = { readonly [key: string]: Cell };

/** How one column shows. */
export interface Column {
  /** Key in each row. */
  readonly key: string;
  /** Header text (default: the key). Put units in it, e.g. `"SQNR (dB)"`. */
  readonly title?: string;
  /** Significant digits for numbers (default: the table's `digits`). */
  readonly digits?: number;
  /** Custom formatting of a cell. */
  readonly format?: (value: Cell, row: Row) => string;
}

/** Options of {@link table}. */
export interface TableOptions {
  /** Columns in order (default: the keys of the first row). */
  readonly columns?: readonly (Column | string)[];
  /** A caption shown above the table. */
  readonly title?: string;
  /** Significant digits for numbers (default 4). */
  readonly digits?: number;
}

/**
 * A small table of rows. Displays as `text/html` + `text/plain` in Jupyter.
 *
 * @example
 * ```ts
 * import { table } from "./table.ts";
 * const t = table([{ bits: 4, sqnr: 20.123 }, { bits: 8, sqnr: 44.2 }], {
 *   columns: [{ key: "bits", title: "bits" }, { key: "sqnr", title: "SQNR (dB)", digits: 3 }],
 * });
 * if (!t.toString().includes("20.1") || !t.toHTML().includes("<th>SQNR (dB)</th>")) throw new Error("bad");
 * ```
 */
export class Table {
  /** The rows (not copied). */
  readonly rows: readonly Row[];
  /** Resolved columns. */
  readonly columns: readonly Column[];
  /** Caption. */
  readonly title?: string;
  readonly #digits: number;

  /** Use {@link table} to build one. */
  constructor(rows: readonly Row[], options: TableOptions = {}) {
    if (!Array.isArray(rows)) throw new QuantlabError("INVALID_ARGUMENT", "table rows must be an array of objects");
    const cols = options.columns ?? (rows.length ? Object.keys(rows[0]) : []);
    this.columns = cols.map((c) => typeof c === "string" ? { key: c } : c);
    this.rows = rows;
    this.title = options.title;
    this.#digits = options.digits ?? 4;
  }

  /** Header text of a column. */
  header(c: Column): string {
    return c.title ?? c.key;
  }

  /** Formatted text of one cell. */
  cell(c: Column, row: Row): string {
    const v = row[c.key];
    if (c.format) return c.format(v, row);
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return formatNumber(v, c.digits ?? this.#digits);
    return String(v);
  }

  /** Aligned plain text (numbers right-aligned). */
  toString(): string {
    const head = this.columns.map((c) => this.header(c));
    const body = this.rows.map((r) => this.columns.map((c) => this.cell(c, r)));
    const widths = head.map((h, j) => Math.max(h.length, ...body.map((b) => b[j].length)));
    const numeric = this.columns.map((c) =>
      this.rows.length > 0 && this.rows.every((r) => typeof r[c.key] === "number")
    );
    const line = (cells: string[]) =>
      cells.map((s, j) => numeric[j] ? s.padStart(widths[j]) : s.padEnd(widths[j])).join("  ").trimEnd();
    const out = [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)];
    if (this.title) out.unshift(this.title);
    return out.join("\n");
  }

  /** A GitHub-flavoured Markdown table. */
  toMarkdown(): string {
    const esc = (s: string) => s.replace(/\|/g, "\\|");
    const numeric = this.columns.map((c) =>
      this.rows.length > 0 && this.rows.every((r) => typeof r[c.key] === "number")
    );
    const out = [
      `| ${this.columns.map((c) => esc(this.header(c))).join(" | ")} |`,
      `| ${numeric.map((n) => n ? "---:" : "---").join(" | ")} |`,
      ...this.rows.map((r) => `| ${this.columns.map((c) => esc(this.cell(c, r))).join(" | ")} |`),
    ];
    if (this.title) out.unshift(`**${esc(this.title)}**`, "");
    return out.join("\n");
  }

  /** An HTML `<table>` (no styles that depend on scripts). */
  toHTML(): string {
    const numeric = this.columns.map((c) =>
      this.rows.length > 0 && this.rows.every((r) => typeof r[c.key] === "number")
    );
    const cap = this.title ? `<caption>${escapeHtml(this.title)}</caption>` : "";
    const head = this.columns.map((c) => `<th>${escapeHtml(this.header(c))}</th>`).join("");
    const body = this.rows.map((r) =>
      `<tr>${
        this.columns.map((c, j) =>
          `<td${numeric[j] ? ' style="text-align:right"' : ""}>${escapeHtml(this.cell(c, r))}</td>`
        ).join("")
      }</tr>`
    ).join("\n");
    return `<table class="quantlab-table">${cap}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
  }

  /** Jupyter display: HTML and plain text. */
  [JUPYTER_DISPLAY](): MediaBundle {
    return { "text/html": this.toHTML(), "text/plain": this.toString() };
  }
}

/**
 * Build a {@link Table} from rows.
 *
 * @example
 * ```ts
 * import { table } from "./table.ts";
 * const md = table([{ method: "min-max", "mse": 0.5 }]).toMarkdown();
 * if (!md.startsWith("| method | mse |")) throw new Error(md);
 * ```
 */
export function table(rows: readonly Row[], options: TableOptions = {}): Table {
  return new Table(rows, options);
}
