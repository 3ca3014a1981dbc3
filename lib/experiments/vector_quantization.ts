/**
 * Experiment 06, vector quantization: scalar uniform (per-channel) vs scalar
 * k-means (one 1-D codebook) vs product quantization of a weight matrix, at
 * equal bits per weight, with codebooks counted in the bits.
 *
 * @module
 */
import { calibrate } from "../quant/calibrate/mod.ts";
import { progress } from "../notebook/progress.ts";
import { table } from "../notebook/table.ts";
import { mse, sqnr } from "../quant/metrics.ts";
import { quantizer } from "../quant/quantizer.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { lineChart } from "../viz/charts.ts";
import { type CompressionReport, pqCompression } from "../vq/compression.ts";
import { kmeans } from "../vq/kmeans.ts";
import { productQuantizer } from "../vq/product_quantizer.ts";
import { blocksToWeight, weightToBlocks } from "../vq/weight_layout.ts";
import type { WeightExperimentOptions } from "./non_uniform.ts";
import type { Experiment } from "./registry.ts";
import { Report } from "./report.ts";
import { fixed } from "./sources.ts";
import { asMatrixView, describeWeight, pickWeight, syntheticWeights, type WeightTensor } from "./weights.ts";

/** One compressed version of the weight. */
export interface VqPoint {
  /** Method family (one chart line). */
  readonly method: string;
  /** Setting, e.g. `"K=256"` or `"4-bit"`. */
  readonly setting: string;
  /** Index / payload bits, all weights. */
  readonly codeBits: number;
  /** Codebook or scale bits. */
  readonly sideBits: number;
  /** Total bits per weight. */
  readonly bitsPerWeight: number;
  /** Float32 bits over stored bits. */
  readonly ratio: number;
  /** Mean squared error per weight. */
  readonly mse: number;
  /** SQNR in dB. */
  readonly sqnr: number;
}

/**
 * Linear interpolation of `y` at `x` along points sorted by `x`; `undefined`
 * outside their range.
 *
 * @example
 * ```ts
 * import { interpolateAt } from "./vector_quantization.ts";
 * if (interpolateAt([{ x: 1, y: 10 }, { x: 3, y: 20 }], 2) !== 15) throw new Error("bad");
 * if (interpolateAt([{ x: 1, y: 10 }], 2) !== undefined) throw new Error("bad");
 * ```
 */
export function interpolateAt(points: readonly { x: number; y: number }[], x: number): number | undefined {
  const p = [...points].sort((a, b) => a.x - b.x);
  for (let i = 0; i + 1 < p.length; i++) {
    if (x >= p[i].x && x <= p[i + 1].x) {
      const t = p[i + 1].x === p[i].x ? 0 : (x - p[i].x) / (p[i + 1].x - p[i].x);
      return p[i].y + t * (p[i + 1].y - p[i].y);
    }
  }
  if (p.length === 1 && p[0].x === x) return p[0].y;
  return undefined;
}

function point(method: string, setting: string, w: Float32Array, v: Float32Array, c: CompressionReport): VqPoint {
  return {
    method,
    setting,
    codeBits: c.codeBits,
    sideBits: c.codebookBits,
    bitsPerWeight: c.bitsPerWeight,
    ratio: c.ratio,
    mse: mse(w, v),
    sqnr: sqnr(w, v),
  };
}

/** The largest block length in `wanted` that divides `rowLength` (else 1). */
function blockFor(rowLength: number, wanted: readonly number[]): number {
  for (const d of wanted) if (rowLength % d === 0) return d;
  return 1;
}

/** The methods and settings of experiment 06 for a row length. */
function methodsFor(rowLength: number) {
  const dA = blockFor(rowLength, [4, 2]), dB = blockFor(rowLength, [8, 4, 2]);
  const D = blockFor(rowLength, [16, 8, 4]), M = Math.max(1, D / dA);
  return {
    uniform: { name: "uniform per-channel", settings: [2, 3, 4, 5, 6] },
    kmeans: { name: "k-means scalar", settings: [2, 4, 8, 16, 32, 64] },
    pq: [
      { name: `PQ d=${dA}, shared`, dim: dA, M: 1, settings: [4, 16, 64, 256] },
      { name: `PQ d=${dB}, shared`, dim: dB, M: 1, settings: [16, 64, 256] },
      { name: `PQ M=${M}x${dA}`, dim: D, M, settings: [4, 16, 64, 256] },
    ],
  };
}

/**
 * Every method and setting of experiment 06 on one weight: uniform
 * per-channel (symmetric, MSE-optimal clipping), scalar k-means (one 1-D
 * codebook) and product quantization of blocks along the input side, with
 * bits counted by {@link pqCompression} (scales: 32 bits per channel).
 *
 * @example
 * ```ts
 * import { vqSweep } from "./vector_quantization.ts";
 * import { syntheticWeights } from "./weights.ts";
 * const pts = await vqSweep(syntheticWeights([16, 64]).tensor, { iterations: 5 });
 * const u2 = pts.find((p) => p.method === "uniform per-channel" && p.setting === "2-bit")!;
 * // 2 bits per weight plus 16 float32 scales over 1024 weights
 * if (u2.bitsPerWeight !== 2 + (16 * 32) / 1024) throw new Error(String(u2.bitsPerWeight));
 * ```
 */
export async function vqSweep(
  w: Tensor<"float32">,
  options: { iterations?: number; seed?: number; tick?: (label: string) => Promise<void> | void } = {},
): Promise<VqPoint[]> {
  const seed = options.seed ?? 0, iterations = options.iterations ?? 25;
  const mat = asMatrixView(w);
  const [rows, rowLength] = mat.shape;
  const size = w.size, data = w.data;
  const cfg = methodsFor(rowLength);
  const pts: VqPoint[] = [];
  const tick = async (label: string) => {
    await options.tick?.(label);
  };
  for (const b of cfg.uniform.settings) {
    const { values } = quantizer().int(b).symmetric().perChannel(0).calibrate(calibrate.mse()).fakeQuantize(mat);
    const codeBits = b * size, sideBits = 32 * rows;
    pts.push({
      method: cfg.uniform.name,
      setting: `${b}-bit`,
      codeBits,
      sideBits,
      bitsPerWeight: (codeBits + sideBits) / size,
      ratio: (32 * size) / (codeBits + sideBits),
      mse: mse(data, values.data),
      sqnr: sqnr(data, values.data),
    });
    await tick(`uniform ${b}-bit`);
  }
  for (const K of cfg.kmeans.settings) {
    if (K >= size) continue;
    const v = scalarKMeans(w, K, seed, 4 * iterations);
    const c = pqCompression({ vectors: size, subvectors: 1, centroids: K, dimension: 1 });
    pts.push(point(cfg.kmeans.name, `K=${K}`, data, v, c));
    await tick(`k-means K=${K}`);
  }
  for (const m of cfg.pq) {
    const blocks = weightToBlocks(w, m.dim, "flat");
    for (const K of m.settings) {
      if (K >= blocks.count) continue; // K = n stores every vector in the codebook
      const q = productQuantizer().subvectors(m.M).centroids(K).iterations(iterations).seed(seed)
        .fit(blocks.vectors, m.dim);
      const v = blocksToWeight(q.decode(q.encode(blocks.vectors, m.dim)).data, blocks).data;
      pts.push(point(m.name, `K=${K}`, data, v, q.compression(blocks.count)));
      await tick(`${m.name} K=${K}`);
    }
  }
  return pts;
}

/** A PQ setting against the scalar curves at the same bits per weight. */
export interface EqualBitsRow {
  /** PQ method. */
  readonly method: string;
  /** Its setting. */
  readonly setting: string;
  /** Its bits per weight. */
  readonly bits: number;
  /** Its SQNR (dB). */
  readonly pq: number;
  /** Uniform per-channel SQNR interpolated at `bits` (null outside its range). */
  readonly uniform: number | null;
  /** Scalar k-means SQNR interpolated at `bits` (null outside its range). */
  readonly kmeans: number | null;
  /** `pq` minus the better scalar SQNR. */
  readonly gain: number;
}

/**
 * Each PQ point of a sweep against the scalar methods at the same bits per
 * weight (linear interpolation of their SQNR; points outside both scalar
 * ranges are left out).
 *
 * @example
 * ```ts
 * import { equalBits, type VqPoint } from "./vector_quantization.ts";
 * const p = (method: string, bitsPerWeight: number, sqnr: number) =>
 *   ({ method, setting: "", codeBits: 0, sideBits: 0, bitsPerWeight, ratio: 32 / bitsPerWeight, mse: 0, sqnr }) as VqPoint;
 * const rows = equalBits([p("uniform per-channel", 2, 6), p("uniform per-channel", 3, 12), p("PQ d=4, shared", 2.5, 10)]);
 * if (rows.length !== 1 || rows[0].uniform !== 9 || rows[0].gain !== 1) throw new Error(JSON.stringify(rows));
 * ```
 */
export function equalBits(pts: readonly VqPoint[]): EqualBitsRow[] {
  const curve = (m: string) => pts.filter((q) => q.method === m).map((q) => ({ x: q.bitsPerWeight, y: q.sqnr }));
  const uni = curve("uniform per-channel"), kms = curve("k-means scalar");
  const out: EqualBitsRow[] = [];
  for (const q of pts) {
    if (!q.method.startsWith("PQ")) continue;
    const u = interpolateAt(uni, q.bitsPerWeight), k = interpolateAt(kms, q.bitsPerWeight);
    if (u === undefined && k === undefined) continue;
    out.push({
      method: q.method,
      setting: q.setting,
      bits: q.bitsPerWeight,
      pq: q.sqnr,
      uniform: u ?? null,
      kmeans: k ?? null,
      gain: q.sqnr - Math.max(u ?? -Infinity, k ?? -Infinity),
    });
  }
  return out;
}

function ratioChart(pts: readonly VqPoint[], weight: WeightTensor, id: string) {
  return lineChart(pts.map((q) => ({ method: q.method, ratio: q.ratio, sqnr: q.sqnr, setting: q.setting })), {
    title: `Reconstruction SQNR against compression ratio (${id})`,
    subtitle: `${
      weight.synthetic ? "SYNTHETIC " : ""
    }weight ${weight.name} [${weight.tensor.shape}], ${weight.tensor.size} weights; codebooks and scales counted`,
    x: { field: "ratio", title: "compression ratio vs float32 (x, log scale)", scale: "log" },
    y: { field: "sqnr", title: "SQNR (dB)" },
    series: { field: "method", title: "method" },
  });
}

function gainSummary(rows: readonly EqualBitsRow[]): { wins: number; best?: EqualBitsRow; text: string } {
  const wins = rows.filter((r) => r.gain > 0).length;
  const best = rows.reduce<EqualBitsRow | undefined>((a, r) => (a === undefined || r.gain > a.gain ? r : a), undefined);
  const text = best === undefined
    ? "no PQ setting falls inside the scalar methods' range of bits per weight"
    : `PQ beats the best scalar method at the same storage in ${wins} of ${rows.length} settings; best: ${best.method} ` +
      `${best.setting} at ${fixed(best.bits, 2)} bits/weight, ${fixed(best.pq, 2)} dB vs ${
        fixed(best.pq - best.gain, 2)
      } ` +
      `dB (${best.gain >= 0 ? "+" : ""}${fixed(best.gain, 2)} dB)`;
  return { wins, best, text };
}

/**
 * Run experiment 06. Claim checked: at equal bits per weight (codebooks
 * counted), product quantization keeps more of the weights than scalar
 * quantization on large layers. Two weights: the given model's largest (or
 * `layers[0]`; without a model, a small synthetic layer, labelled so) and a
 * large synthetic linear layer (512 x 1024; quick: 128 x 512) where the
 * codebooks are amortised.
 *
 * @example
 * ```ts
 * import { vectorQuantizationComparison } from "./vector_quantization.ts";
 * const r = await vectorQuantizationComparison({ quick: true, progress: "none" });
 * if (r.table("bits").rows.length < 10) throw new Error("bad");
 * ```
 */
export async function vectorQuantizationComparison(options: WeightExperimentOptions = {}): Promise<Report> {
  const seed = options.seed ?? 0;
  const weight: WeightTensor = options.model
    ? pickWeight(options.model, options.layers?.[0], options.modelLabel ?? "model")
    : syntheticWeights(options.quick ? [32, 256] : [128, 512], { seed: seed * 7919 + 11, name: "synthetic linear" });
  const large = syntheticWeights(options.quick ? [128, 512] : [512, 1024], {
    seed: seed * 7919 + 13,
    name: "large synthetic linear",
  });
  const iterations = options.quick ? 10 : 25;
  const report = new Report(
    "vector_quantization",
    "06 · Vector quantization: scalar vs k-means vs product quantization at equal bits per weight",
    "At equal bits per weight, product quantization of weight matrices keeps more accuracy than scalar " +
      "quantization on large layers.",
  );
  const w = weight.tensor, rows = w.shape[0], rowLength = w.size / rows;
  const cfg = methodsFor(rowLength);
  const pqM = cfg.pq[2];
  report.text(
    `Weights: (1) ${describeWeight(weight)}, seen as a ${rows} x ${rowLength} matrix (one row per output ` +
      `channel); (2) ${describeWeight(large)}, a layer large enough to amortise codebooks. ` +
      "Scalar uniform: symmetric integer grid per output channel with MSE-optimal clipping (one float32 scale per " +
      "channel). Scalar k-means: one codebook of K = 2^b float32 levels for the whole matrix (1-D k-means). " +
      'PQ: each row is cut into blocks of d consecutive weights along the input side (as in "And the Bit Goes ' +
      'Down"); "PQ d, shared" learns one codebook of K centroids for all blocks (M = 1, the paper\'s choice); ' +
      `"${pqM.name}" cuts vectors of ${pqM.dim} weights into M = ${pqM.M} sub-vectors with a codebook each ` +
      `(faiss's ProductQuantizer). ${iterations} Lloyd iterations, seed ${seed}. Bits count the codes (log2 K per ` +
      "index) and the float32 codebooks or scales (lib/vq pqCompression); the ratio is float32 bits over those. " +
      "The error is the reconstruction error of the weights (MSE and SQNR), not model accuracy.",
  );
  const total = 2 * (cfg.uniform.settings.length + cfg.kmeans.settings.length +
    cfg.pq.reduce((a, m) => a + m.settings.length, 0));
  const p = progress(total, { label: "06 vector quantization", sink: options.progress });
  const tick = (l: string) => p.tick(1, l);
  const pts = await vqSweep(w, { iterations, seed, tick: (l) => tick(`layer: ${l}`) });
  const ptsL = await vqSweep(large.tensor, { iterations, seed, tick: (l) => tick(`large: ${l}`) });
  report.chart("sqnr-vs-ratio", ratioChart(pts, weight, weight.synthetic ? "small synthetic layer" : "real layer"));
  report.chart(
    "sqnr-vs-bits",
    lineChart(pts.map((q) => ({ method: q.method, bits: q.bitsPerWeight, sqnr: q.sqnr })), {
      title: "Reconstruction SQNR against bits per weight",
      subtitle: `weight ${weight.name}; bits per weight include codes, codebooks and scales`,
      x: { field: "bits", title: "storage (bits per weight, incl. codebooks)" },
      y: { field: "sqnr", title: "SQNR (dB)" },
      series: { field: "method", title: "method" },
    }),
  );
  report.chart("sqnr-vs-ratio-large", ratioChart(ptsL, large, "large layer"));
  const bitsColumns = [
    { key: "layer", title: "layer" },
    { key: "method", title: "method" },
    { key: "setting", title: "setting" },
    { key: "codeBits", title: "code bits" },
    { key: "sideBits", title: "codebook / scale bits" },
    { key: "sideShare", title: "codebook share", format: (v: unknown) => `${(Number(v) * 100).toFixed(1)}%` },
    { key: "bitsPerWeight", title: "bits / weight", digits: 3 },
    { key: "ratio", title: "ratio (x)", digits: 3 },
    { key: "mse", title: "MSE", digits: 3 },
    { key: "sqnr", title: "SQNR (dB)", digits: 4 },
  ];
  const bitsRows = (ps: readonly VqPoint[], layer: string) =>
    ps.map((q) => ({ layer, ...q, sideShare: q.sideBits / (q.codeBits + q.sideBits) }));
  report.table(
    "bits",
    table(bitsRows(pts, weight.name), {
      title: `Bit accounting and reconstruction error: ${weight.name}`,
      columns: bitsColumns,
    }),
  );
  report.table(
    "bits-large",
    table(bitsRows(ptsL, large.name), {
      title: `Bit accounting and reconstruction error: ${large.name}`,
      columns: bitsColumns,
    }),
  );
  const eq = equalBits(pts), eqL = equalBits(ptsL);
  report.table(
    "equal-bits",
    table([...eq.map((r) => ({ layer: weight.name, ...r })), ...eqL.map((r) => ({ layer: large.name, ...r }))], {
      title: "PQ against scalar quantization at the same bits per weight (scalar SQNR interpolated)",
      columns: [
        { key: "layer", title: "layer" },
        { key: "method", title: "PQ" },
        { key: "setting", title: "setting" },
        { key: "bits", title: "bits / weight", digits: 3 },
        { key: "pq", title: "PQ SQNR (dB)" },
        { key: "uniform", title: "uniform per-channel (dB)" },
        { key: "kmeans", title: "k-means scalar (dB)" },
        { key: "gain", title: "PQ - best scalar (dB)", digits: 3 },
      ],
    }),
  );
  // Findings.
  const sL = gainSummary(eqL), s = gainSummary(eq);
  report.finding(
    `On a large layer (${large.tensor.size} weights), PQ reconstructs the weights better than scalar quantization ` +
      "at equal bits per weight (codebooks counted)",
    sL.best !== undefined && sL.wins > eqL.length / 2,
    `${sL.text} (synthetic layer). Only the reconstruction error is measured here, not accuracy`,
  );
  report.finding(
    `On the ${weight.synthetic ? "small synthetic" : "real"} layer "${weight.name}" (${w.size} weights), PQ beats ` +
      "scalar quantization at equal bits per weight",
    s.best !== undefined && s.wins > eq.length / 2,
    s.text,
  );
  const share = (ps: readonly VqPoint[]) =>
    ps.filter((q) => q.method.startsWith("PQ") && q.setting === "K=256")
      .map((q) => `${q.method} ${(100 * q.sideBits / (q.codeBits + q.sideBits)).toFixed(0)}%`).join(", ");
  const shareOf = (ps: readonly VqPoint[], m: string) => {
    const q = ps.find((x) => x.method === m && x.setting === "K=256");
    return q ? q.sideBits / (q.codeBits + q.sideBits) : 0;
  };
  report.finding(
    "The codebooks are the price: PQ pays off where the layer is large against its codebooks",
    shareOf(pts, cfg.pq[0].name) > shareOf(ptsL, cfg.pq[0].name) && sL.wins / Math.max(1, eqL.length) >= s.wins /
          Math.max(1, eq.length),
    `with K = 256 the codebooks take ${share(pts)} of the stored bits of "${weight.name}" (${w.size} weights) but ` +
      `${share(ptsL)} of "${large.name}" (${large.tensor.size} weights); a shared codebook costs K·d·32 bits per ` +
      "layer and M codebooks M times that",
  );
  const lowBits = pts.filter((q) => q.method.startsWith("PQ") && q.bitsPerWeight < 1);
  const lowest = pts.reduce((a, q) => (q.ratio > a.ratio ? q : a));
  report.finding(
    "PQ reaches compression ratios scalar codes cannot (below 1 bit per weight)",
    lowBits.length > 0,
    `${lowBits.length} PQ settings store under 1 bit per weight on "${weight.name}"; the highest ratio is ${lowest.method} ` +
      `${lowest.setting}: ${fixed(lowest.ratio, 1)}x (${fixed(lowest.bitsPerWeight, 2)} bits/weight) at ${
        fixed(lowest.sqnr, 1)
      } dB, where 1-bit scalar k-means gives ${
        fixed(pts.find((q) => q.method === "k-means scalar" && q.setting === "K=2")?.sqnr ?? NaN, 1)
      } dB at 1 bit`,
  );
  report.record({
    "pq.wins": s.wins,
    "pq.settings": eq.length,
    "pq.bestGain": s.best?.gain ?? NaN,
    "large.wins": sL.wins,
    "large.settings": eqL.length,
    "large.bestGain": sL.best?.gain ?? NaN,
    weights: w.size,
  });
  for (const q of pts) {
    report.record({ [`sqnr.${q.method}.${q.setting}`]: q.sqnr, [`bpw.${q.method}.${q.setting}`]: q.bitsPerWeight });
  }
  await p.finish("done");
  return report;
}

/**
 * The values of `x` replaced by their nearest level of a scalar (1-D)
 * k-means codebook of `K` levels (k-means++, at most 4096 training points
 * per level).
 *
 * @example
 * ```ts
 * import { scalarKMeans } from "./vector_quantization.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const v = scalarKMeans(Tensor.from([0, 0.1, 5, 5.1]), 2);
 * if (Math.abs(v[0] - 0.05) > 1e-6 || Math.abs(v[3] - 5.05) > 1e-6) throw new Error(String(v));
 * ```
 */
export function scalarKMeans(x: Tensor<"float32">, K: number, seed = 0, iterations = 100): Float32Array {
  return kmeans().centroids(K).iterations(iterations).init("kmeans++").seed(seed).maxPointsPerCentroid(4096)
    .fit(x.data, 1).fakeQuantize(x.data, 1);
}

/**
 * Experiment 06 for the registry (a synthetic linear layer unless a model is given).
 *
 * @example
 * ```ts
 * import { vectorQuantizationExperiment } from "./vector_quantization.ts";
 * if (vectorQuantizationExperiment.id !== "vector-quantization" || typeof vectorQuantizationExperiment.run !== "function") throw new Error("bad");
 * ```
 */
export const vectorQuantizationExperiment: Experiment = {
  id: "vector-quantization",
  title: "Vector quantization",
  section: "vector quantization",
  notebook: "notebooks/06_vector_quantization.ipynb",
  run: vectorQuantizationComparison,
};
