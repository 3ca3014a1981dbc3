/**
 * The chart of a sensitivity analysis (lib/ptq/sensitivity.ts): per group, the metric with only that group
 * quantized and with all but that group quantized, groups ranked most sensitive first, the float model drawn as
 * the reference line. A chart a person reads faster than the table.
 *
 * @module
 */
import type { SensitivityResult } from "../ptq/sensitivity.ts";
import type { Chart } from "./chart.ts";
import { dotPlotChart } from "./charts.ts";

/**
 * A dot plot of a {@link SensitivityResult}: one row per group (plan label and op), "only this" and "all but this"
 * as two series, the float metric as the reference (accuracy) or none (output SQNR, where float is infinite).
 *
 * @example
 * ```ts
 * import { sensitivityChart } from "./sensitivity.ts";
 * import { SensitivityResult } from "../ptq/sensitivity.ts";
 * const r = new SensitivityResult("top-1 accuracy", 0.92, 0.8, 0.81, 0.9, [
 *   { group: "conv1", opType: "Conv", tensors: ["w1"], onlyThis: 0.84, allButThis: 0.88, drop: 0.08, recovery: 0.08 },
 *   { group: "fc", opType: "Gemm", tensors: ["w2"], onlyThis: 0.91, allButThis: 0.8, drop: 0.01, recovery: 0 },
 * ], []);
 * const spec = JSON.stringify(sensitivityChart(r).spec);
 * if (!spec.includes("conv1 (Conv)") || !spec.includes("all but this")) throw new Error(spec);
 * ```
 */
export function sensitivityChart(result: SensitivityResult): Chart {
  const accuracy = result.metric === "top-1 accuracy";
  const label = (r: { group: string; opType: string }) => `${r.group} (${r.opType})`;
  const rows = result.rows.flatMap((r) => [
    { group: label(r), series: "only this group quantized", value: r.onlyThis },
    { group: label(r), series: "all but this group quantized", value: r.allButThis },
  ]).filter((r) => Number.isFinite(r.value));
  return dotPlotChart(rows, {
    title: `Sensitivity: ${result.metric} with one group quantized, or all but one`,
    x: { field: "value", title: result.metric, format: accuracy ? ".1%" : ".1f" },
    y: { field: "group", title: "group (most sensitive first)", order: result.rows.map(label) },
    color: { field: "series", title: "quantized" },
    ...(accuracy && Number.isFinite(result.float) ? { reference: { value: result.float, label: "float" } } : {}),
  });
}
