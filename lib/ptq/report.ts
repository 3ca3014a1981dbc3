/**
 * The PTQ evaluation report: accuracy, latency, size, output KL, per-layer SQNR and the nodes left in float.
 * Prints as a text table; in Jupyter it displays as an HTML table plus a Vega-Lite bar chart of per-layer SQNR
 * (a plain spec object, rendered by the notebook front end; nothing heavy is loaded here).
 *
 * @module
 */

/** One evaluated model variant. */
export interface ReportRow {
  /** `"float"`, `"qdq"` or `"qoperator"`. */
  readonly model: string;
  /** Top-1 accuracy in [0, 1]. */
  readonly top1: number;
  /** Top-5 accuracy in [0, 1]. */
  readonly top5: number;
  /** Median ms per batch on ORT. */
  readonly msPerBatch: number;
  /** Initializer bytes. */
  readonly bytes: number;
}

/** Everything a PTQ run measured. */
export interface PtqReportData {
  /** Dataset name and size. */
  readonly dataset: string;
  /** Images evaluated. */
  readonly count: number;
  /** Binding and threads. */
  readonly backend: string;
  /** Batch size. */
  readonly batchSize: number;
  /** Quantizer descriptions. */
  readonly weights: string;
  /** See `weights`. */
  readonly activations: string;
  /** Nominal weight bits (quantized weights). */
  readonly weightBits: number;
  /** Rows per variant. */
  readonly rows: readonly ReportRow[];
  /** Mean KL(float || qdq) of the output distribution. */
  readonly outputKl: number;
  /** Largest |qdq - qoperator| output difference in units of the output scale (LSB), if measured. */
  readonly qoperatorMaxLsb?: number;
  /** Per-layer SQNR (dB) of QDQ activations vs float. */
  readonly layerSqnr: readonly { name: string; sqnrDb: number }[];
  /** Nodes the QOperator lowering left in float. */
  readonly floatNodes: readonly { node: string; op: string; reason: string }[];
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * A PTQ report; `toString()` is a text table, Jupyter shows a table and a chart.
 *
 * @example
 * ```ts
 * import { PtqReport } from "./report.ts";
 * const r = new PtqReport({ dataset: "toy", count: 10, backend: "web", batchSize: 5, weights: "w", activations: "a",
 *   weightBits: 8, rows: [{ model: "float", top1: 0.9, top5: 1, msPerBatch: 1, bytes: 40 }], outputKl: 0,
 *   layerSqnr: [{ name: "relu", sqnrDb: 30 }], floatNodes: [] });
 * if (!r.toString().includes("90.00%")) throw new Error(r.toString());
 * if (!r.chartSvg().startsWith("<svg") || !r.chartSvg().includes("relu")) throw new Error("no svg");
 * ```
 */
export class PtqReport {
  /** Wrap measured data. */
  constructor(readonly data: PtqReportData) {}

  /** Accuracy of a variant. */
  top1(model: string): number | undefined {
    return this.data.rows.find((r) => r.model === model)?.top1;
  }

  /** Text table. */
  toString(): string {
    const d = this.data;
    const lines = [
      `PTQ on ${d.dataset} (${d.count} images, batch ${d.batchSize}, onnxruntime-${d.backend})`,
      `weights: ${d.weights}`,
      `activations: ${d.activations}`,
      "",
      "model      top-1    top-5    ms/batch  weights+consts",
    ];
    for (const r of d.rows) {
      lines.push(
        `${r.model.padEnd(10)} ${pct(r.top1).padStart(7)}  ${pct(r.top5).padStart(7)}  ${
          r.msPerBatch.toFixed(2).padStart(8)
        }  ${(r.bytes / 1024).toFixed(1)} KiB`,
      );
    }
    lines.push("", `output KL(float || qdq): ${d.outputKl.toExponential(3)} nats`);
    if (d.qoperatorMaxLsb !== undefined) lines.push(`max |qdq - qoperator| output: ${d.qoperatorMaxLsb} LSB`);
    if (d.layerSqnr.length) {
      lines.push("", "per-layer SQNR (dB):");
      for (const l of d.layerSqnr) lines.push(`  ${l.sqnrDb.toFixed(1).padStart(6)}  ${l.name}`);
    }
    lines.push(
      "",
      d.floatNodes.length ? "left in float by the QOperator lowering:" : "QOperator lowering: every node lowered",
    );
    for (const f of d.floatNodes) lines.push(`  ${f.node}: ${f.reason}`);
    return lines.join("\n");
  }

  /** A Vega-Lite v5 spec: per-layer SQNR bars. */
  chartSpec(): Record<string, unknown> {
    return {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: "Per-layer SQNR, QDQ vs float",
      data: { values: this.data.layerSqnr.map((l, i) => ({ layer: `${i}: ${l.name}`, sqnr: l.sqnrDb })) },
      mark: "bar",
      encoding: {
        y: { field: "layer", type: "nominal", sort: null, title: null },
        x: { field: "sqnr", type: "quantitative", title: "SQNR (dB)" },
      },
    };
  }

  /**
   * The per-layer SQNR bars as plain SVG, for front ends that do not render Vega-Lite (a hand-written bar chart:
   * lib/ptq sits below the vega-based lib/viz, and horizontal bars need no layout engine).
   */
  chartSvg(): string {
    const esc = (v: string) => v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const layers = this.data.layerSqnr.map((l, i) => ({ label: `${i}: ${l.name}`, v: l.sqnrDb }));
    const finite = layers.map((l) => l.v).filter(Number.isFinite);
    const max = Math.max(1, ...finite);
    const labelW = 260, barW = 360, rowH = 18, top = 30, bottom = 36;
    const width = labelW + barW + 60, height = top + rowH * layers.length + bottom;
    const rows = layers.map((l, k) => {
      const y = top + k * rowH;
      const w = Number.isFinite(l.v) ? Math.max(0, (l.v / max) * barW) : barW;
      const value = Number.isFinite(l.v) ? l.v.toFixed(1) : "exact";
      return `<text x="${labelW - 6}" y="${y + 13}" text-anchor="end" font-size="11">${
        esc(l.label.slice(0, 44))
      }</text>` +
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="#4c78a8"/>` +
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 13}" font-size="10">${value}</text>`;
    }).join("");
    const axisY = top + rowH * layers.length + 4;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const x = labelW + f * barW;
      return `<line x1="${x}" y1="${axisY}" x2="${x}" y2="${axisY + 4}" stroke="#333"/>` +
        `<text x="${x}" y="${axisY + 16}" text-anchor="middle" font-size="10">${(f * max).toFixed(0)}</text>`;
    }).join("");
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="Helvetica, Arial, sans-serif">` +
      `<text x="0" y="16" font-size="13">Per-layer SQNR, QDQ vs float</text>${rows}` +
      `<line x1="${labelW}" y1="${axisY}" x2="${labelW + barW}" y2="${axisY}" stroke="#333"/>${ticks}` +
      `<text x="${labelW + barW / 2}" y="${axisY + 30}" text-anchor="middle" font-size="11">SQNR (dB)</text></svg>`;
  }

  /** Jupyter display bundle: text, HTML table, the Vega-Lite chart and its SVG fallback. */
  [Symbol.for("Jupyter.display")](): Record<string, unknown> {
    const rows = this.data.rows.map((r) =>
      `<tr><td>${r.model}</td><td>${pct(r.top1)}</td><td>${pct(r.top5)}</td><td>${r.msPerBatch.toFixed(2)}</td><td>${
        (r.bytes / 1024).toFixed(1)
      }</td></tr>`
    ).join("");
    return {
      "text/plain": this.toString(),
      "text/html":
        `<table><tr><th>model</th><th>top-1</th><th>top-5</th><th>ms/batch</th><th>KiB</th></tr>${rows}</table>`,
      "application/vnd.vegalite.v5+json": this.chartSpec(),
      "image/svg+xml": this.chartSvg(),
    };
  }
}
