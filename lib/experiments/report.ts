/**
 * Reports: what an experiment returns. A report holds prose, tables, charts
 * and findings (each survey claim with whether it held here and the numbers
 * that say so). It shows in Jupyter (HTML with inline SVG charts), prints as
 * text, and renders to Markdown and to standalone HTML for `deno task reproduce`.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { escapeHtml, JUPYTER_DISPLAY, type MediaBundle } from "../notebook/display.ts";
import { type Table, table } from "../notebook/table.ts";
import type { Chart } from "../viz/chart.ts";

/** One block of a report, in reading order. */
export type ReportBlock =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "table"; readonly id: string; readonly table: Table }
  | { readonly kind: "chart"; readonly id: string; readonly chart: Chart };

/** A survey claim checked on our data. */
export interface Finding {
  /** The claim, as the survey makes it. */
  readonly claim: string;
  /** Whether it held in this run. */
  readonly holds: boolean;
  /** The numbers behind the verdict. */
  readonly evidence: string;
  /** The claim's margin in this run (e.g. ZeroQ minus noise accuracy, in points), for statistics across seeds. */
  readonly margin?: { readonly value: number; readonly unit: string };
  /** Whether the claim holds across seeds, when the experiment ran over several. */
  readonly seeds?: SeedVerdict;
  /** The survey section and the paper's setting and number, shown beside ours (see `references.ts`). */
  readonly reference?: PaperReference;
}

/** Where a claim comes from, and what the paper reports for it. */
export interface PaperReference {
  /** The survey section, e.g. `"survey §III-G3 Zero-shot quantization"`. */
  readonly section: string;
  /** The paper or code the number comes from. */
  readonly source: string;
  /** The paper's setting (model, data, bits). */
  readonly setting: string;
  /** The paper's number(s), or why there is none. */
  readonly result: string;
  /** False when the number was not re-checked at its source. */
  readonly verified: boolean;
}

/**
 * The rows of a finding's paper-vs-ours table: the paper's, then ours.
 *
 * @example
 * ```ts
 * import { referenceRows } from "./report.ts";
 * const rows = referenceRows({ claim: "c", holds: true, evidence: "W8A8 91.2 %", reference: {
 *   section: "survey §III-G3", source: "ZeroQ", setting: "ImageNet", result: "77.67 %", verified: false } });
 * if (rows.length !== 2 || !rows[0].who.includes("not re-verified") || rows[1].result !== "holds: W8A8 91.2 %") {
 *   throw new Error(JSON.stringify(rows));
 * }
 * ```
 */
export function referenceRows(f: Finding): { who: string; setting: string; result: string }[] {
  const r = f.reference;
  if (!r) return [];
  return [
    {
      who: `paper: ${r.source}${r.verified ? "" : " [number not re-verified at source]"}`,
      setting: r.setting,
      result: r.result,
    },
    {
      who: "quantlab: this run",
      setting: "this section's setup",
      result: `${f.holds ? "holds" : "does not hold"}: ${evidenceOf(f)}`,
    },
  ];
}

/** A claim checked over several seeds. */
export interface SeedVerdict {
  /** Seeds run. */
  readonly n: number;
  /** Seeds in which the claim held. */
  readonly held: number;
  /** Settings of the seed runs, e.g. `"quick sizes, seeds 0-4"`. */
  readonly settings?: string;
  /** The margin across seeds: mean, sample sd and 95 % t-interval half width. */
  readonly margin?: { readonly mean: number; readonly sd: number; readonly halfWidth: number; readonly unit: string };
}

/**
 * `"holds in 5 of 5 seeds; difference 2.10 ± 0.62 points (mean ± 95% t-interval)"`.
 *
 * @example
 * ```ts
 * import { seedVerdictText } from "./report.ts";
 * const t = seedVerdictText({ n: 5, held: 5, margin: { mean: 2.1, sd: 0.5, halfWidth: 0.62, unit: "points" } });
 * if (t !== "holds in 5 of 5 seeds; difference 2.10 ± 0.62 points (mean ± 95% t-interval, sd 0.50)") throw new Error(t);
 * ```
 */
export function seedVerdictText(v: SeedVerdict): string {
  const head = `holds in ${v.held} of ${v.n} seeds`;
  const m = v.margin;
  const margin = m
    ? Number.isFinite(m.halfWidth)
      ? `; difference ${m.mean.toFixed(2)} ± ${m.halfWidth.toFixed(2)} ${m.unit} (mean ± 95% t-interval, sd ${
        m.sd.toFixed(2)
      })`
      : `; difference ${m.mean.toFixed(2)} ${m.unit}`
    : "";
  return `${head}${margin}${v.settings ? ` [${v.settings}]` : ""}`;
}

function evidenceOf(f: Finding): string {
  return f.seeds ? `${f.evidence}. Across seeds: ${seedVerdictText(f.seeds)}` : f.evidence;
}

/**
 * An experiment's result.
 *
 * @example
 * ```ts
 * import { Report } from "./report.ts";
 * import { table } from "../notebook/table.ts";
 * const r = new Report("demo", "Demo", "More bits, less error.")
 *   .text("We quantize.")
 *   .table("t", table([{ bits: 8, sqnr: 44 }]))
 *   .finding("6 dB per bit", true, "slope 6.02 dB/bit");
 * if (!r.toString().includes("[holds] 6 dB per bit") || r.table("t").rows.length !== 1) throw new Error("bad");
 * ```
 */
export class Report {
  /** Blocks in reading order. */
  readonly blocks: ReportBlock[] = [];
  /** Claims checked. */
  readonly findings: Finding[] = [];
  /** Key numbers, by name (for tests and summaries). */
  readonly numbers: Record<string, number> = {};

  /** Experiment id (e.g. `"uniform"`). */
  readonly id: string;
  /** Heading. */
  readonly title: string;
  /** The survey's claim this report examines. */
  readonly claim: string;

  /** Start a report for experiment `id` with its heading and the survey claim it examines. */
  constructor(id: string, title: string, claim: string) {
    this.id = id;
    this.title = title;
    this.claim = claim;
  }

  /** Add a paragraph (plain text; `code` in backticks is kept as is). */
  text(text: string): this {
    this.blocks.push({ kind: "text", text });
    return this;
  }

  /** Add a table under `id`. */
  table(id: string): Table;
  /** Add a table under `id`. */
  table(id: string, table: Table): this;
  table(id: string, table?: Table): this | Table {
    if (table === undefined) return this.#find(id, "table").table;
    this.#checkId(id, "table");
    this.blocks.push({ kind: "table", id, table });
    return this;
  }

  /** The chart stored under `id`. */
  chart(id: string): Chart;
  /** Add a chart under `id`. */
  chart(id: string, chart: Chart): this;
  chart(id: string, chart?: Chart): this | Chart {
    if (chart === undefined) return this.#find(id, "chart").chart;
    this.#checkId(id, "chart");
    this.blocks.push({ kind: "chart", id, chart });
    return this;
  }

  /**
   * Record a claim, whether it held, and the evidence; `margin` (optional) is the number that decides it
   * (e.g. an accuracy difference), kept for statistics across seeds.
   */
  finding(claim: string, holds: boolean, evidence: string, margin?: { value: number; unit: string }): this {
    this.findings.push(margin ? { claim, holds, evidence, margin } : { claim, holds, evidence });
    return this;
  }

  /** Attach the across-seeds verdict of finding `index` (it then shows in every rendering). */
  seedVerdict(index: number, verdict: SeedVerdict): this {
    const f = this.findings[index];
    if (!f) throw new QuantlabError("INVALID_ARGUMENT", `report "${this.id}" has no finding ${index}`);
    this.findings[index] = { ...f, seeds: verdict };
    return this;
  }

  /** Attach the survey section and paper number of finding `index` (it then shows beside ours in every rendering). */
  cite(index: number, reference: PaperReference): this {
    const f = this.findings[index];
    if (!f) throw new QuantlabError("INVALID_ARGUMENT", `report "${this.id}" has no finding ${index}`);
    this.findings[index] = { ...f, reference };
    return this;
  }

  /** Record key numbers. */
  record(numbers: Record<string, number>): this {
    Object.assign(this.numbers, numbers);
    return this;
  }

  /** All charts in order. */
  get charts(): Chart[] {
    return this.blocks.flatMap((b) => b.kind === "chart" ? [b.chart] : []);
  }

  /** All tables in order. */
  get tables(): Table[] {
    return this.blocks.flatMap((b) => b.kind === "table" ? [b.table] : []);
  }

  #checkId(id: string, kind: "table" | "chart"): void {
    if (this.blocks.some((b) => b.kind === kind && b.id === id)) {
      throw new QuantlabError("INVALID_ARGUMENT", `report "${this.id}" already has a ${kind} with id "${id}"`);
    }
  }

  #find<K extends "table" | "chart">(id: string, kind: K): Extract<ReportBlock, { kind: K }> {
    const b = this.blocks.find((b) => b.kind === kind && b.id === id);
    if (!b) {
      const ids = this.blocks.flatMap((b) => b.kind === kind ? [b.id] : []);
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `report "${this.id}" has no ${kind} "${id}"; it has ${ids.length ? ids.join(", ") : "none"}`,
      );
    }
    return b as Extract<ReportBlock, { kind: K }>;
  }

  /** Findings as text lines `[holds] claim: evidence`. */
  findingsText(): string {
    return this.findings.map((f) =>
      `[${f.holds ? "holds" : "does not hold"}] ${f.claim}: ${evidenceOf(f)}${
        f.reference
          ? `\n    ${f.reference.section}; paper (${f.reference.source}): ${f.reference.setting}: ${f.reference.result}`
          : ""
      }`
    ).join("\n");
  }

  /** Findings as a table (claim, verdict, evidence) for notebooks. */
  findingsTable(): Table {
    return table(
      this.findings.map((f) => ({
        claim: f.claim,
        verdict: f.holds ? "holds" : "does not hold",
        evidence: evidenceOf(f),
      })),
      { title: `${this.title}: findings`, columns: ["claim", "verdict", "evidence"] },
    );
  }

  /** Plain text: title, claim, findings, prose, tables and chart titles. */
  toString(): string {
    const out = [this.title, "=".repeat(this.title.length), `Claim: ${this.claim}`, ""];
    if (this.findings.length) out.push("Findings:", this.findingsText(), "");
    for (const b of this.blocks) {
      if (b.kind === "text") out.push(b.text, "");
      else if (b.kind === "table") out.push(b.table.toString(), "");
      else out.push(`(${b.chart.toString()})`, "");
    }
    return out.join("\n").trimEnd();
  }

  /** Markdown (tables and findings; charts by title). */
  toMarkdown(level = 2): string {
    const h = "#".repeat(level);
    const out = [`${h} ${this.title}`, "", `*Claim (survey):* ${this.claim}`, ""];
    if (this.findings.length) {
      for (const f of this.findings) {
        out.push(`- **${f.holds ? "holds" : "does not hold"}**: ${f.claim}. ${evidenceOf(f)}`);
        const rows = referenceRows(f);
        if (rows.length) {
          const cell = (t: string) => t.replace(/\|/g, "\\|");
          out.push(
            "",
            `  *${f.reference!.section}*`,
            "",
            "  | | setting | result |",
            "  | --- | --- | --- |",
            ...rows.map((r) => `  | ${cell(r.who)} | ${cell(r.setting)} | ${cell(r.result)} |`),
            "",
          );
        }
      }
      out.push("");
    }
    for (const b of this.blocks) {
      if (b.kind === "text") out.push(b.text, "");
      else if (b.kind === "table") out.push(b.table.toMarkdown(), "");
      else out.push(`*Chart: ${b.chart.title}*`, "");
    }
    return out.join("\n").trimEnd() + "\n";
  }

  /** Render every chart's SVG, so that displaying the report and its charts is synchronous. */
  async prerender(): Promise<this> {
    await Promise.all(this.charts.map((c) => c.toSVG()));
    return this;
  }

  /** An HTML fragment with the charts as inline SVG (works offline). */
  async toHTML(level = 2): Promise<string> {
    await this.prerender();
    return this.#html(level);
  }

  #html(level: number): string {
    const out = [
      `<section class="quantlab-report" id="${escapeHtml(this.id)}">`,
      `<h${level}>${escapeHtml(this.title)}</h${level}>`,
      `<p class="claim"><em>Claim (survey):</em> ${escapeHtml(this.claim)}</p>`,
    ];
    if (this.findings.length) {
      out.push(
        `<ul class="findings">${
          this.findings.map((f) =>
            `<li class="${f.holds ? "holds" : "fails"}"><strong>${f.holds ? "holds" : "does not hold"}</strong>: ${
              escapeHtml(f.claim)
            }.${f.reference ? "" : ` ${escapeHtml(evidenceOf(f))}`}${referenceHtml(f)}</li>`
          ).join("")
        }</ul>`,
      );
    }
    for (const b of this.blocks) {
      if (b.kind === "text") out.push(`<p>${inlineCode(escapeHtml(b.text))}</p>`);
      else if (b.kind === "table") out.push(b.table.toHTML());
      else out.push(`<figure class="chart">${b.chart.svg ?? ""}</figure>`);
    }
    out.push("</section>");
    return out.join("\n");
  }

  /** Jupyter display: HTML with inline charts, and plain text (synchronous after {@link Report.prerender}). */
  [JUPYTER_DISPLAY](): MediaBundle | Promise<MediaBundle> {
    const bundle = (): MediaBundle => ({ "text/html": this.#html(3), "text/plain": this.toString() });
    return this.charts.every((c) => c.svg !== undefined) ? bundle() : this.prerender().then(bundle);
  }
}

function referenceHtml(f: Finding): string {
  const rows = referenceRows(f);
  if (!rows.length) return "";
  return `<table class="reference"><caption>${escapeHtml(f.reference!.section)}</caption>` +
    "<thead><tr><th></th><th>setting</th><th>result</th></tr></thead><tbody>" +
    rows.map((r) =>
      `<tr><th scope="row">${escapeHtml(r.who)}</th><td>${escapeHtml(r.setting)}</td><td>${
        escapeHtml(r.result)
      }</td></tr>`
    ).join("") + "</tbody></table>";
}

function inlineCode(html: string): string {
  return html.replace(/`([^`]+)`/g, "<code>$1</code>");
}
