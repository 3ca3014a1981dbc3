/**
 * Experiment 07, extreme quantization: binary (BinaryConnect sign), XNOR-Net
 * (per-channel scale), TWN and TTQ-style ternary weights on layers of several
 * shapes (linear and conv): error, sparsity, scales and bits per weight, plus
 * a sweep of the ternary threshold.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { binary } from "../extreme/binary.ts";
import { ternary } from "../extreme/ternary.ts";
import { progress } from "../notebook/progress.ts";
import { table } from "../notebook/table.ts";
import { mse, sqnr } from "../quant/metrics.ts";
import { quantizer } from "../quant/quantizer.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { lineChart } from "../viz/charts.ts";
import type { WeightExperimentOptions } from "./non_uniform.ts";
import type { Experiment } from "./registry.ts";
import { Report } from "./report.ts";
import { fixed } from "./sources.ts";
import { modelWeights, syntheticWeights, type WeightTensor } from "./weights.ts";

/** One extreme quantization of one weight. */
export interface ExtremeResult {
  /** Method name. */
  readonly method: string;
  /** Quantized values. */
  readonly values: Tensor<"float32">;
  /** Fraction of exact zeros. */
  readonly sparsity: number;
  /** Mean positive scale over slots (`alpha`, or `Wp` for TTQ; 1 for plain sign). */
  readonly scale: number;
  /** Mean negative scale over slots (`Wn`; equals `scale` for symmetric methods). */
  readonly negativeScale: number;
  /** Bits per weight including scales. */
  readonly bitsPerWeight: number;
}

/** One method of experiment 07. */
export interface ExtremeMethod {
  /** Display name. */
  readonly name: string;
  /** Quantize `w` (output channels on axis 0). */
  readonly run: (w: Tensor<"float32">) => ExtremeResult;
}

const mean = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
};

function zeros(v: Float32Array): number {
  let z = 0;
  for (let i = 0; i < v.length; i++) if (v[i] === 0) z++;
  return z / v.length;
}

/**
 * The methods compared: BinaryConnect sign (no scale), XNOR-Net (sign times
 * per-output-channel `alpha = mean|W|`), TWN (threshold `0.7 mean|W|`, one
 * scale per tensor), TTQ-style separate `Wp` / `Wn` at TWN's threshold and at
 * TTQ's `0.05 max|W|`, and a 4-bit per-channel uniform reference.
 *
 * @example
 * ```ts
 * import { extremeMethods } from "./binary_ternary.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const w = Tensor.from([1, -3, 0, -0.5], [2, 2]);
 * const xnor = extremeMethods()[1].run(w);
 * if (xnor.values.toArray().join() !== "2,-2,0.25,-0.25" || xnor.scale !== 1.125) throw new Error("bad");
 * ```
 */
export function extremeMethods(): ExtremeMethod[] {
  return [
    {
      name: "binary (sign)",
      run: (w) => {
        const { values, fitted } = binary().binaryConnect().fakeQuantize(w);
        return {
          method: "binary (sign)",
          values,
          sparsity: 0,
          scale: 1,
          negativeScale: 1,
          bitsPerWeight: fitted.accounting().bitsPerWeight,
        };
      },
    },
    {
      name: "XNOR (per-channel α)",
      run: (w) => {
        const { values, fitted } = binary().xnor(0).fakeQuantize(w);
        const a = mean(fitted.scales);
        return {
          method: "XNOR (per-channel α)",
          values,
          sparsity: 0,
          scale: a,
          negativeScale: a,
          bitsPerWeight: fitted.accounting().bitsPerWeight,
        };
      },
    },
    ternaryMethod("TWN (Δ = 0.7·mean|W|)", ternary().twn()),
    ternaryMethod("TTQ scales (Δ = 0.7·mean|W|)", ternary().ttq()),
    ternaryMethod("TTQ scales (Δ = 0.05·max|W|)", ternary().ttq().threshold(0.05, { of: "max-abs" })),
    {
      name: "uniform 4-bit (reference)",
      run: (w) => {
        const { values, params } = quantizer().int(4).symmetric().perChannel(0).fakeQuantize(w);
        const s = mean(params.scale);
        return {
          method: "uniform 4-bit (reference)",
          values,
          sparsity: zeros(values.data),
          scale: s,
          negativeScale: s,
          bitsPerWeight: 4 + (32 * params.scale.length) / w.size,
        };
      },
    },
  ];
}

function ternaryMethod(name: string, b: ReturnType<typeof ternary>): ExtremeMethod {
  return {
    name,
    run: (w) => {
      const { values, fitted } = b.fakeQuantize(w);
      const codes = fitted.codes(w);
      return {
        method: name,
        values,
        sparsity: countZeroCodes(codes.data),
        scale: mean(fitted.positiveScale),
        negativeScale: mean(fitted.negativeScale),
        bitsPerWeight: fitted.accounting().bitsPerWeight,
      };
    },
  };
}

function countZeroCodes(c: Int8Array): number {
  let z = 0;
  for (let i = 0; i < c.length; i++) if (c[i] === 0) z++;
  return z / c.length;
}

/**
 * SQNR (dB) and sparsity of TWN-style ternarization (one scale per tensor)
 * with threshold `factor * mean|W|`, for each factor.
 *
 * @example
 * ```ts
 * import { thresholdSweep } from "./binary_ternary.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const s = thresholdSweep(Tensor.from([0.1, -0.2, 1, -1]), [0.5, 2]);
 * // mean|W| = 0.575: factor 0.5 zeros 0.1 and -0.2; factor 2 zeros everything
 * if (s[0].sparsity !== 0.5 || s[1].sparsity !== 1) throw new Error(JSON.stringify(s));
 * ```
 */
export function thresholdSweep(
  w: Tensor<"float32">,
  factors: readonly number[],
): { factor: number; sqnr: number; sparsity: number }[] {
  return factors.map((f) => {
    const { values, fitted } = ternary().threshold(f).fakeQuantize(w);
    const codes = fitted.codes(w);
    return { factor: f, sqnr: sqnr(w, values), sparsity: countZeroCodes(codes.data) };
  });
}

function syntheticSet(quick: boolean, seed: number): WeightTensor[] {
  const shapes: { shape: number[]; dist: "gaussian" | "laplacian" }[] = quick
    ? [
      { shape: [16, 8, 3, 3], dist: "gaussian" },
      { shape: [32, 16, 1, 1], dist: "gaussian" },
      { shape: [32, 64], dist: "laplacian" },
    ]
    : [
      { shape: [16, 8, 3, 3], dist: "gaussian" },
      { shape: [64, 64, 3, 3], dist: "gaussian" },
      { shape: [64, 32, 1, 1], dist: "gaussian" },
      { shape: [256, 512], dist: "laplacian" },
      { shape: [10, 128], dist: "gaussian" },
    ];
  return shapes.map((s, i) =>
    syntheticWeights(s.shape, {
      seed: seed * 7919 + 17 + i,
      distribution: s.dist,
      name: `synthetic ${s.shape.length === 2 ? "linear" : `conv ${s.shape[2]}x${s.shape[3]}`} [${s.shape}]`,
    })
  );
}

/**
 * Run experiment 07. Claims checked: binary and ternary weights without
 * training lose most of the signal (the survey: they collapse without
 * training); XNOR's per-channel scale is essential; ternary beats binary at
 * the cost of one more state and makes a third or more of the weights zero;
 * TWN's threshold `0.7 mean|W|` is near the error optimum. Pass `model` to
 * use its Conv/Gemm/MatMul weights (`layers` to choose); without it, synthetic
 * layers labelled so.
 *
 * @example
 * ```ts
 * import { binaryTernaryComparison } from "./binary_ternary.ts";
 * const r = await binaryTernaryComparison({ quick: true, progress: "none" });
 * if (!(r.numbers["mean.sqnr.twn"] > r.numbers["mean.sqnr.xnor"])) throw new Error(r.findingsText());
 * ```
 */
export async function binaryTernaryComparison(options: WeightExperimentOptions = {}): Promise<Report> {
  const seed = options.seed ?? 0;
  let weights: WeightTensor[];
  if (options.model) {
    const all = modelWeights(options.model, options.modelLabel ?? "model");
    weights = options.layers
      ? options.layers.map((n) => {
        const w = all.find((x) => x.name === n);
        if (!w) {
          throw new QuantlabError(
            "INVALID_ARGUMENT",
            `layers: no weight "${n}"; the model has ${all.map((x) => x.name).join(", ")}`,
          );
        }
        return w;
      })
      : all;
  } else weights = syntheticSet(options.quick ?? false, seed);
  const methods = extremeMethods();
  const report = new Report(
    "binary_ternary",
    "07 · Binary and ternary weights: sign, XNOR, TWN, TTQ",
    "Binary (BinaryConnect, XNOR-Net scaling) and ternary (TWN threshold 0.7·mean|W|, TTQ) weights: without " +
      "training they collapse; with training and error-minimising scales they come within a few points.",
  );
  const synthetic = weights.some((w) => w.synthetic);
  report.text(
    `Weights: ${weights.length} ${
      synthetic
        ? "SYNTHETIC layers (no model was given; " + weights[0].source + ")"
        : "layers of " + weights[0].source + " (real trained weights)"
    }: ${
      weights.map((w) => `${w.name} [${w.tensor.shape.join("x")}]`).join(", ")
    }. All output channels on axis 0. Binary (sign) is BinaryConnect's sign(w) with no scale; XNOR multiplies the ` +
      "signs by α = mean|W| of each output channel (the least-squares scale for sign codes); TWN zeroes |w| ≤ " +
      "Δ = 0.7·mean|W| and scales the rest by one α per tensor (mean of |w| above Δ); TTQ scales use separate " +
      "positive and negative scales Wp, Wn (least-squares fitted here; TTQ trains them) at TWN's threshold and at " +
      "TTQ's paper threshold 0.05·max|W|. A 4-bit per-channel uniform quantizer is the reference. No training " +
      "happens here: this is the error the weights start from, which is what the survey calls collapse; recovering " +
      "accuracy needs training with the straight-through gradients in lib/extreme/ste.ts. Bits per weight: 1 " +
      "(binary) or 2 (ternary, 2-bit packing; 1.6 with base-3 packing) plus 32 bits per scale.",
  );
  const p = progress(weights.length * methods.length, { label: "07 binary/ternary", sink: options.progress });
  const rows: Record<string, number | string>[] = [];
  const byMethod: Record<string, { sqnr: number[]; sparsity: number[]; rel: number[] }> = {};
  const chartRows: { layer: number; sqnr: number; method: string }[] = [];
  for (const [li, w] of weights.entries()) {
    let ms = 0, meanAbs = 0;
    const d = w.tensor.data;
    for (let i = 0; i < d.length; i++) {
      ms += d[i] * d[i];
      meanAbs += Math.abs(d[i]);
    }
    ms /= d.length;
    meanAbs /= d.length;
    for (const m of methods) {
      const r = m.run(w.tensor);
      const s = sqnr(w.tensor, r.values), e = mse(w.tensor, r.values) / ms;
      (byMethod[m.name] ??= { sqnr: [], sparsity: [], rel: [] }).sqnr.push(s);
      byMethod[m.name].sparsity.push(r.sparsity);
      byMethod[m.name].rel.push(e);
      chartRows.push({ layer: li + 1, sqnr: s, method: m.name });
      rows.push({
        index: li + 1,
        layer: w.name,
        shape: w.tensor.shape.join("x"),
        kind: w.kind,
        method: m.name,
        sqnr: s,
        rel: e,
        sparsity: r.sparsity,
        scale: r.scale,
        wn: r.negativeScale,
        scaleRatio: r.scale / meanAbs,
        bits: r.bitsPerWeight,
      });
      await p.tick(1, `${w.name} ${m.name}`);
    }
  }
  report.table(
    "layers",
    table(rows, {
      title: "Error, sparsity and scales by layer and method (no training)",
      columns: [
        { key: "index", title: "#" },
        { key: "layer", title: "layer" },
        { key: "shape", title: "shape" },
        { key: "kind", title: "kind" },
        { key: "method", title: "method" },
        { key: "sqnr", title: "SQNR (dB)", digits: 3 },
        { key: "rel", title: "relative MSE (MSE / mean w²)", digits: 3 },
        { key: "sparsity", title: "sparsity (zeros)", format: (v) => `${(Number(v) * 100).toFixed(1)}%` },
        { key: "scale", title: "α or Wp (mean)", digits: 3 },
        { key: "wn", title: "Wn (mean)", digits: 3 },
        { key: "scaleRatio", title: "α / mean|W|", digits: 3 },
        { key: "bits", title: "bits / weight", digits: 3 },
      ],
    }),
  );
  const summary = methods.map((m) => ({
    method: m.name,
    sqnr: mean(byMethod[m.name].sqnr),
    minSqnr: Math.min(...byMethod[m.name].sqnr),
    maxSqnr: Math.max(...byMethod[m.name].sqnr),
    rel: mean(byMethod[m.name].rel),
    sparsity: mean(byMethod[m.name].sparsity),
  }));
  report.table(
    "summary",
    table(summary, {
      title: `Mean over the ${weights.length} layers`,
      columns: [
        { key: "method", title: "method" },
        { key: "sqnr", title: "mean SQNR (dB)", digits: 3 },
        { key: "minSqnr", title: "min SQNR (dB)", digits: 3 },
        { key: "maxSqnr", title: "max SQNR (dB)", digits: 3 },
        { key: "rel", title: "mean relative MSE", digits: 3 },
        { key: "sparsity", title: "mean sparsity", format: (v) => `${(Number(v) * 100).toFixed(1)}%` },
      ],
    }),
  );
  report.chart(
    "sqnr-by-layer",
    lineChart(chartRows, {
      title: "SQNR of binary and ternary weights by layer",
      subtitle: `${synthetic ? "SYNTHETIC layers" : weights[0].source}; layers in graph order (# in the table), ` +
        "no training",
      x: { field: "layer", title: "layer (graph order, #)", integer: true, format: "d" },
      y: { field: "sqnr", title: "SQNR (dB)" },
      series: { field: "method", title: "method" },
    }),
  );
  // Threshold sweep on up to three layers (the largest conv, the largest linear, the largest other).
  const factors = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5];
  const sorted = [...weights].sort((a, b) => b.tensor.size - a.tensor.size);
  const sweepLayers = [
    sorted.find((w) => w.kind === "conv" && w.tensor.shape[2] !== 1),
    sorted.find((w) => w.kind === "linear"),
    sorted.find((w) => w.kind === "conv" && w.tensor.shape[2] === 1),
  ].filter((w): w is WeightTensor => w !== undefined);
  const sweepRows: { factor: number; sqnr: number; sparsity: number; layer: string }[] = [];
  const sweepNotes: string[] = [];
  let maxLoss = 0;
  for (const w of sweepLayers) {
    const s = thresholdSweep(w.tensor, factors);
    for (const r of s) sweepRows.push({ ...r, layer: w.name });
    const best = s.reduce((a, r) => (r.sqnr > a.sqnr ? r : a));
    const at7 = s.find((r) => r.factor === 0.7)!;
    maxLoss = Math.max(maxLoss, best.sqnr - at7.sqnr);
    sweepNotes.push(
      `${w.name}: best factor ${best.factor} (${fixed(best.sqnr, 2)} dB), 0.7 gives ${fixed(at7.sqnr, 2)} dB`,
    );
  }
  report.chart(
    "threshold-sqnr",
    lineChart(sweepRows, {
      title: "Ternary error against the threshold factor (TWN scale, Δ = factor·mean|W|)",
      subtitle: "TWN's rule of thumb is 0.7",
      x: { field: "factor", title: "threshold factor Δ / mean|W| (ratio)" },
      y: { field: "sqnr", title: "SQNR (dB)" },
      series: { field: "layer", title: "layer" },
    }),
  );
  report.chart(
    "threshold-sparsity",
    lineChart(sweepRows, {
      title: "Sparsity of ternary weights against the threshold factor",
      subtitle: "fraction of weights set to zero",
      x: { field: "factor", title: "threshold factor Δ / mean|W| (ratio)" },
      y: { field: "sparsity", title: "sparsity (fraction of zeros, %)", format: ".0%", zero: true },
      series: { field: "layer", title: "layer" },
    }),
  );
  // Findings.
  const M = (i: number) => summary[i];
  const [sign, xnor, twn, ttq, ttqMax, ref] = [0, 1, 2, 3, 4, 5].map(M);
  report.record({
    "mean.sqnr.sign": sign.sqnr,
    "mean.sqnr.xnor": xnor.sqnr,
    "mean.sqnr.twn": twn.sqnr,
    "mean.sqnr.ttq": ttq.sqnr,
    "mean.sqnr.ttqMax": ttqMax.sqnr,
    "mean.sqnr.int4": ref.sqnr,
    "mean.sparsity.twn": twn.sparsity,
    "mean.sparsity.ttqMax": ttqMax.sparsity,
    "threshold.maxLoss": maxLoss,
  });
  report.finding(
    "Without training, binary and ternary weights lose most of the signal (the starting point the survey calls " +
      "collapse)",
    Math.max(xnor.sqnr, twn.sqnr, ttq.sqnr) < ref.sqnr - 8,
    `mean SQNR: XNOR ${fixed(xnor.sqnr, 1)} dB, TWN ${fixed(twn.sqnr, 1)} dB, TTQ scales ${fixed(ttq.sqnr, 1)} dB ` +
      `against ${fixed(ref.sqnr, 1)} dB for 4-bit uniform: relative errors of ${fixed(100 * xnor.rel, 0)}% and ${
        fixed(100 * twn.rel, 0)
      }% of the weights' energy. Whether training recovers accuracy needs the training engine; not measured here`,
  );
  report.finding(
    "A scale is essential: XNOR-Net's α = mean|W| per channel fixes BinaryConnect's unscaled sign",
    xnor.sqnr > sign.sqnr + 3,
    `mean SQNR sign(w) ${fixed(sign.sqnr, 1)} dB (from ${fixed(sign.minSqnr, 1)} to ${fixed(sign.maxSqnr, 1)}; ` +
      `values ±1 against a typical mean|W| of ${
        fixed(mean(rows.filter((r) => r.method === methods[1].name).map((r) => Number(r.scale))), 3)
      }) vs XNOR ${fixed(xnor.sqnr, 1)} dB. BinaryConnect relies on training (and BatchNorm) to absorb the scale`,
  );
  report.finding(
    "Ternary beats binary by spending one more code state, and zeroes a large share of the weights",
    twn.sqnr > xnor.sqnr,
    `TWN (one scale per tensor) ${fixed(twn.sqnr, 2)} dB vs XNOR (a scale per channel) ${fixed(xnor.sqnr, 2)} dB ` +
      `(+${fixed(twn.sqnr - xnor.sqnr, 2)} dB, despite fewer scales) at 2 bits (1.6 packed) vs 1 bit per weight; ` +
      `TWN sets ${fixed(100 * twn.sparsity, 0)}% of the weights to zero on average`,
  );
  report.finding(
    "TWN's threshold Δ = 0.7·mean|W| is close to the error-optimal threshold",
    maxLoss < 0.5,
    `${sweepNotes.join("; ")}; at most ${fixed(maxLoss, 2)} dB below the best factor of the sweep`,
  );
  report.finding(
    "TTQ's separate positive and negative scales help only where the weights are asymmetric",
    ttq.sqnr >= twn.sqnr - 1e-9,
    `at TWN's threshold, Wp/Wn gain ${fixed(ttq.sqnr - twn.sqnr, 3)} dB over one α on average (the weights are ` +
      `nearly symmetric); with TTQ's threshold 0.05·max|W| only ${fixed(100 * ttqMax.sparsity, 0)}% of the weights ` +
      `are zero and the SQNR is ${fixed(ttqMax.sqnr, 2)} dB: TTQ's benefit comes from training the scales, not ` +
      "from their initial fit",
  );
  await p.finish("done");
  return report;
}

/**
 * Experiment 07 for the registry (synthetic layers unless a model is given).
 *
 * @example
 * ```ts
 * import { binaryTernaryExperiment } from "./binary_ternary.ts";
 * if (binaryTernaryExperiment.id !== "binary-ternary" || typeof binaryTernaryExperiment.run !== "function") throw new Error("bad");
 * ```
 */
export const binaryTernaryExperiment: Experiment = {
  id: "binary-ternary",
  title: "Binary and ternary weights",
  section: "extreme",
  notebook: "notebooks/07_binary_ternary.ipynb",
  run: binaryTernaryComparison,
};
