/**
 * Rich views of tensors and quantization parameters for notebooks:
 * a statistics table plus a histogram (with the grid overlaid when
 * parameters are given).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { escapeHtml, JUPYTER_DISPLAY, type MediaBundle } from "../notebook/display.ts";
import { table } from "../notebook/table.ts";
import { describeGranularity, type QuantParams } from "../quant/params.ts";
import { asFloatTensor, type FloatInput, type Tensor } from "../tensor/tensor.ts";
import type { Chart } from "./chart.ts";
import { histogramChart } from "./charts.ts";

/** Summary statistics of a tensor (float64 accumulation). */
export interface TensorStats {
  /** Elements. */
  readonly size: number;
  /** Smallest value. */
  readonly min: number;
  /** Largest value. */
  readonly max: number;
  /** Mean. */
  readonly mean: number;
  /** Standard deviation (population). */
  readonly std: number;
  /** Fraction of exact zeros. */
  readonly zeros: number;
}

/**
 * Summary statistics of `x`.
 *
 * @example
 * ```ts
 * import { tensorStats } from "./inspect.ts";
 * const s = tensorStats([0, 2, 4]);
 * if (s.mean !== 2 || s.min !== 0 || s.max !== 4 || Math.abs(s.zeros - 1 / 3) > 1e-12) throw new Error("bad");
 * ```
 */
export function tensorStats(x: FloatInput): TensorStats {
  const d = asFloatTensor(x, "tensor").data;
  if (d.length === 0) throw new QuantlabError("EMPTY_TENSOR", "tensorStats needs a non-empty tensor");
  let min = Infinity, max = -Infinity, s = 0, s2 = 0, z = 0;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v < min) min = v;
    if (v > max) max = v;
    s += v;
    s2 += v * v;
    if (v === 0) z++;
  }
  const mean = s / d.length;
  return {
    size: d.length,
    min,
    max,
    mean,
    std: Math.sqrt(Math.max(0, s2 / d.length - mean * mean)),
    zeros: z / d.length,
  };
}

/**
 * A displayable view of a tensor: shape, statistics and a histogram, with
 * the quantization grid of per-tensor `params` overlaid.
 *
 * @example
 * ```ts
 * import { TensorView } from "./inspect.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const v = new TensorView(Tensor.from([1, -2, 3, 0.5], [2, 2]), { name: "w" });
 * if (!v.toString().includes("w: Tensor<float32>[2, 2]")) throw new Error(v.toString());
 * ```
 */
export class TensorView {
  /** The tensor shown. */
  readonly tensor: Tensor<"float32">;
  /** Its statistics. */
  readonly stats: TensorStats;
  readonly #name: string;
  readonly #params?: QuantParams;
  #chart?: Chart;

  /** Prefer {@link inspectTensor}. */
  constructor(x: FloatInput, options: { name?: string; params?: QuantParams } = {}) {
    this.tensor = asFloatTensor(x, options.name ?? "tensor");
    this.stats = tensorStats(this.tensor);
    this.#name = options.name ?? "tensor";
    this.#params = options.params;
  }

  /** The histogram chart (grid overlaid for per-tensor parameters). */
  chart(): Chart {
    const p = this.#params && this.#params.scale.length === 1 ? this.#params : undefined;
    return this.#chart ??= histogramChart(this.tensor.data, {
      title: `${this.#name}: value histogram`,
      subtitle: this.#params ? describeParams(this.#params) : undefined,
      xTitle: "value",
      params: p,
      bins: 60,
    });
  }

  /** Statistics as text. */
  toString(): string {
    const s = this.stats;
    const f = (v: number) => Number(v.toPrecision(4));
    const params = this.#params ? `\n${describeParams(this.#params)}` : "";
    return `${this.#name}: ${this.tensor.toString()} min=${f(s.min)} max=${f(s.max)} mean=${f(s.mean)} std=${
      f(s.std)
    } zeros=${(s.zeros * 100).toFixed(1)}%${params}`;
  }

  /** Render the histogram now so the display is synchronous: `await inspectTensor(x).render()`. */
  async render(): Promise<this> {
    await this.chart().toSVG();
    return this;
  }

  /** Jupyter display: a statistics table and the histogram (vega-lite + SVG). */
  [JUPYTER_DISPLAY](): MediaBundle | Promise<MediaBundle> {
    const c = this.chart();
    return c.svg !== undefined ? this.#bundle(c.svg) : c.toSVG().then((svg) => this.#bundle(svg));
  }

  #bundle(svg: string): MediaBundle {
    const s = this.stats;
    const t = table([{ shape: `[${this.tensor.shape.join(", ")}]`, ...s }], { digits: 4 });
    const c = this.chart();
    return {
      "text/html": `<div><strong>${escapeHtml(this.#name)}</strong> ${
        escapeHtml(this.tensor.toString())
      }${t.toHTML()}${svg}</div>`,
      "application/vnd.vegalite.v5+json": c.spec,
      "image/svg+xml": svg,
      "text/plain": this.toString(),
    };
  }
}

/**
 * Show a tensor in a notebook: `inspectTensor(w, { params })` as the last
 * expression of a cell.
 *
 * @example
 * ```ts
 * import { inspectTensor } from "./inspect.ts";
 * const v = inspectTensor([0, 1, 2, 3]);
 * if (v.stats.max !== 3) throw new Error("bad");
 * ```
 */
export function inspectTensor(x: FloatInput, options: { name?: string; params?: QuantParams } = {}): TensorView {
  return new TensorView(x, options);
}

/**
 * One line describing quantization parameters.
 *
 * @example
 * ```ts
 * import { describeParams } from "./inspect.ts";
 * import { paramsFromRange } from "../quant/params.ts";
 * const p = paramsFromRange([-1], [1], { bits: 8, signed: true, symmetric: true, range: "restricted" }, { kind: "tensor" });
 * if (!describeParams(p).startsWith("int8 symmetric(restricted) per-tensor")) throw new Error(describeParams(p));
 * ```
 */
export function describeParams(p: QuantParams): string {
  const kind = `${p.signed ? "int" : "uint"}${p.bits} ${p.symmetric ? `symmetric(${p.range})` : "asymmetric"}`;
  const n = p.scale.length;
  const sc = Array.from(p.scale.subarray(0, 3), (v) => v.toPrecision(4)).join(", ");
  const zp = Array.from(p.zeroPoint.subarray(0, 3)).join(", ");
  const more = n > 3 ? `, … (${n})` : "";
  return `${kind} ${
    describeGranularity(p.granularity)
  } codes [${p.qmin}, ${p.qmax}] scale=[${sc}${more}] zeroPoint=[${zp}${more}]`;
}
