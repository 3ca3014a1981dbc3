/**
 * The bit map of mixed-precision allocations: one row per layer, one column per budget (or method), each cell
 * coloured by the layer's weight width and labelled with it.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Chart } from "./chart.ts";
import { VEGA_LITE_SCHEMA, type VegaLiteSpec } from "./render.ts";

/** One cell of a {@link bitMapChart}. */
export interface BitMapCell {
  /** Layer (row). */
  readonly layer: string;
  /** Budget or method (column). */
  readonly column: string;
  /** Weight width. */
  readonly bits: number;
}

/**
 * A heat map of per-layer widths (see the module doc); rows and columns in the order given or of first appearance.
 *
 * @example
 * ```ts
 * import { bitMapChart } from "./bit_map.ts";
 * const c = bitMapChart([{ layer: "conv1", column: "size 10 kB", bits: 4 }, { layer: "fc", column: "size 10 kB", bits: 8 }],
 *   { title: "Bits per layer" });
 * if (!JSON.stringify(c.spec).includes('"rect"') || c.title !== "Bits per layer") throw new Error("bad");
 * ```
 */
export function bitMapChart(
  cells: readonly BitMapCell[],
  o: {
    title: string;
    subtitle?: string;
    columnTitle?: string;
    layerOrder?: readonly string[];
    columnOrder?: readonly string[];
  },
): Chart {
  if (cells.length === 0) throw new QuantlabError("EMPTY_TENSOR", `chart "${o.title}": no cells`);
  for (const c of cells) {
    if (!Number.isFinite(c.bits)) {
      throw new QuantlabError("NON_FINITE", `chart "${o.title}": ${c.layer} bits ${c.bits}`);
    }
  }
  const layers = o.layerOrder ?? [...new Set(cells.map((c) => c.layer))];
  const columns = o.columnOrder ?? [...new Set(cells.map((c) => c.column))];
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    title: o.subtitle ? { text: o.title, subtitle: o.subtitle } : o.title,
    data: { values: cells.map((c) => ({ ...c, label: String(c.bits) })) },
    width: Math.max(160, 44 * columns.length),
    height: Math.max(120, 20 * layers.length),
    encoding: {
      x: {
        field: "column",
        type: "ordinal",
        sort: [...columns],
        title: o.columnTitle ?? "budget",
        axis: { labelAngle: -30 },
      },
      y: { field: "layer", type: "ordinal", sort: [...layers], title: "layer" },
    },
    layer: [
      {
        mark: { type: "rect" },
        encoding: {
          color: {
            field: "bits",
            type: "ordinal",
            title: "weight bits",
            scale: { scheme: "blues" },
          },
          tooltip: [{ field: "layer" }, { field: "column" }, { field: "bits" }],
        },
      },
      { mark: { type: "text", fontSize: 11 }, encoding: { text: { field: "label" }, color: { value: "black" } } },
    ],
  };
  return new Chart(spec);
}
