/**
 * Experiment 10, zero-shot quantization (ZeroQ): calibrate the Fashion-MNIST ResNet-8 on 32 real training
 * images, on 32 ZeroQ-distilled images (BatchNorm statistics, no data) and on 32 Gaussian-noise images, quantize
 * as ZeroQ's code does (per-channel symmetric weights, per-tensor min-max activations after every ReLU, the raw
 * input image in float) at W8A8, W6A6, W4A8 and W4A4, and compare test accuracy; then quantize the input too,
 * and fine-tune the W4A4 model on distilled data with distillation from the float model (level 2).
 *
 * @module
 */
import type { ImageDataset } from "../data/batching.ts";
import { batches, subset } from "../data/batching.ts";
import { exposeValues } from "../onnx/capture.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { progress } from "../notebook/progress.ts";
import { table } from "../notebook/table.ts";
import { evaluateAccuracy } from "../ptq/evaluate.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { dotPlotChart, lineChart } from "../viz/charts.ts";
import { findBatchNormTaps } from "../zeroshot/bn_taps.ts";
import { zeroShot, type ZeroShotData } from "../zeroshot/distill.ts";
import { type ImageGrid, imageGrid } from "../viz/image_grid.ts";
import { quantizeZeroShot } from "../zeroshot/level1.ts";
import { fineTuneZeroShot } from "../zeroshot/level2.ts";
import { channelStatistics, zeroqTerms } from "../zeroshot/loss.ts";
import { loadExperimentModel, loadFashionOrNote, type OnnxExperimentOptions, skippedReport } from "./ptq_onnx.ts";
import type { Experiment } from "./registry.ts";
import { Report } from "./report.ts";

const TITLE = "10 · Zero-shot quantization (ZeroQ)";
const CLAIM = "BN-statistics (ZeroQ distilled) data calibrates nearly as well as real data and far better than " +
  "Gaussian noise; level 2 fine-tuning on synthetic data recovers more";

/** Everything the notebook shows besides the report. */
export interface ZeroShotComparison {
  /** The report (tables, charts, findings). */
  readonly report: Report;
  /** Distilled batches (the first calibrates; all fine-tune). */
  readonly zeroq?: ZeroShotData;
  /** Gaussian-noise batch. */
  readonly noise?: ZeroShotData;
  /** Real images next to distilled and noise ones. */
  readonly grid?: ImageGrid;
}

function firstBatch(ds: ImageDataset, n: number): Tensor<"float32"> {
  // Normalised exactly as the PTQ pipeline batches a dataset.
  return batches(ds, { batchSize: n, count: n }).next().value!.x;
}

/** Per-layer ZeroQ loss terms (mean + std) of a batch, and per-channel batch means vs BN means. */
async function layerStatistics(model: OnnxModel, x: Tensor<"float32">, session: SessionOptions) {
  const taps = findBatchNormTaps(model);
  const s = await createSession(exposeValues(model, taps.map((t) => t.value), { replace: true }), session);
  const input = model.graph.input[0].name;
  const out = await s.run({ [input]: x });
  return taps.map((tap) => {
    const v = out[tap.value];
    const st = channelStatistics(v.data as Float32Array, v.shape);
    const [lm, ls] = zeroqTerms(st, tap.mean, tap.std);
    const means = new Float64Array(st.c);
    for (let n = 0; n < st.n; n++) for (let c = 0; c < st.c; c++) means[c] += st.mean[n * st.c + c] / st.n;
    return { layer: tap.value, loss: lm + ls, bnMean: tap.mean, dataMean: means };
  });
}

/**
 * Run the comparison (see the module doc). `quick` shrinks everything for tests (8 images, 60 iterations, 500
 * test images, W8A8 and W4A4 only, a short fine-tuning).
 *
 * @example
 * ```ts ignore
 * const { report, grid } = await zeroShotComparison();
 * ```
 */
export async function zeroShotComparison(options: OnnxExperimentOptions = {}): Promise<ZeroShotComparison> {
  const quick = options.quick ?? false, seed = options.seed ?? 0;
  const session: SessionOptions = options.session ?? {};
  const { model, origin } = await loadExperimentModel(options.model);
  const data = await loadFashionOrNote();
  if ("note" in data) return { report: skippedReport("zero-shot", TITLE, CLAIM, data.note) };
  const n = quick ? 8 : 32, iterations = quick ? 60 : 500, limit = quick ? 500 : data.test.count;
  const settings: [number, number][] = quick ? [[8, 8], [4, 4]] : [[8, 8], [6, 6], [4, 8], [4, 4]];
  const bar = progress(2 + settings.length + 2, { label: "10 zero-shot", sink: options.progress });
  const z = zeroShot(model).batch(n).iterations(iterations).seed(seed).session(session);
  const zeroq = await z.batches(quick ? 1 : 4).generate();
  await bar.tick();
  const noise = z.batches(1).noise();
  const real = subset(data.train, 0, n);
  const realX = firstBatch(real, n);
  const calib = [zeroq.tensors[0]];
  const test = data.test;
  const acc = async (m: OnnxModel) =>
    100 * (await evaluateAccuracy(m, test, { ...session, limit, batchSize: 500 })).top1;
  const floatAcc = await acc(model);
  await bar.tick();
  const rows: { setting: string; real: number; zeroq: number; noise: number }[] = [];
  for (const [wb, ab] of settings) {
    const row = { setting: `W${wb}A${ab}`, real: 0, zeroq: 0, noise: 0 };
    for (const [k, d] of [["real", real], ["zeroq", calib], ["noise", noise]] as const) {
      const q = await quantizeZeroShot(model, d, { weightBits: wb, activationBits: ab, session });
      row[k] = await acc(q.model);
    }
    rows.push(row);
    await bar.tick();
  }
  // The input quantized too, at the most aggressive setting.
  const [wl, al] = settings[settings.length - 1];
  const inQ = { setting: `W${wl}A${al} + input quantized`, real: 0, zeroq: 0, noise: 0 };
  for (const [k, d] of [["real", real], ["zeroq", calib], ["noise", noise]] as const) {
    const q = await quantizeZeroShot(model, d, { weightBits: wl, activationBits: al, session, quantizeInput: true });
    inQ[k] = await acc(q.model);
  }
  await bar.tick();
  // Level 2: fine-tune the ZeroQ-calibrated lowest setting on all distilled batches, KD from the float model.
  const q2 = await quantizeZeroShot(model, calib, { weightBits: wl, activationBits: al, session });
  const tuned = await fineTuneZeroShot(q2, model, zeroq, {
    epochs: quick ? 1 : 4,
    lr: 1e-4,
    temperature: 4,
    seed,
    session,
  });
  const level2 = await acc(tuned.model);
  await bar.tick();

  const fmt = (v: number) => Number(v.toFixed(2));
  const report = new Report("zero-shot", TITLE, CLAIM);
  report.text(
    `Model: ${origin}, float accuracy ${floatAcc.toFixed(2)}% on ${limit} Fashion-MNIST test images. Calibration: ` +
      `${n} real training images, ${n} ZeroQ-distilled images (${iterations} Adam iterations, lr 0.5, plateau ` +
      `schedule, seed ${seed}; ${zeroq.seconds.toFixed(1)} s for ${zeroq.tensors.length} batch(es) on ` +
      `${zeroq.backend}) or ${n} N(0, 1) noise images. Quantization as ZeroQ's code: per-channel symmetric ` +
      "weights, per-tensor asymmetric min-max activations after every ReLU, the network input in float.",
  );
  const all = [...rows, inQ];
  report.table(
    "accuracy",
    table(all.map((r) => ({ setting: r.setting, real: fmt(r.real), zeroq: fmt(r.zeroq), noise: fmt(r.noise) })), {
      title: "Top-1 accuracy (%) by calibration data",
      columns: ["setting", "real", "zeroq", "noise"],
    }),
  );
  const bars = all.flatMap((r) =>
    (["real", "zeroq", "noise"] as const).map((k) => ({ setting: r.setting, calibration: k, accuracy: fmt(r[k]) }))
  );
  report.chart(
    "accuracy",
    dotPlotChart(bars, {
      title: "Accuracy by calibration data",
      subtitle: `${limit} Fashion-MNIST test images; each panel has its own zoomed axis; dashed: float`,
      x: { field: "accuracy", title: "top-1 accuracy (%)" },
      y: { field: "calibration", title: "calibration data", order: ["real", "zeroq", "noise"] },
      color: { field: "calibration", title: "calibration data" },
      facet: { field: "setting", title: "setting", order: all.map((r) => r.setting) },
      reference: { value: Number(floatAcc.toFixed(2)), label: `float ${floatAcc.toFixed(2)}%` },
    }),
  );

  report.table(
    "level2",
    table([
      { model: `level 1: ZeroQ-calibrated W${wl}A${al}`, accuracy: fmt(rows[rows.length - 1].zeroq) },
      {
        model: `level 2: + ${tuned.losses.length} KD steps on ${zeroq.count} distilled images`,
        accuracy: fmt(level2),
      },
      { model: "float", accuracy: fmt(floatAcc) },
    ], { title: "Level 2: fine-tuning on synthetic data (KL, T = 4, Adam lr 1e-4, STE)" }),
  );
  const curve = zeroq.losses.flatMap((l, b) =>
    Array.from(l).flatMap((v, i) => (i % 5 === 0 ? [{ iteration: i, loss: v, batch: `batch ${b}` }] : []))
  );
  report.chart(
    "loss",
    lineChart(curve, {
      title: "ZeroQ distillation loss",
      subtitle: "BN-statistics loss (sum over layers and the input term) before each Adam step",
      x: { field: "iteration", title: "iteration" },
      y: { field: "loss", title: "loss", scale: "log" },
      series: { field: "batch", title: "batch" },
      points: false,
    }),
  );
  const stats = {
    real: await layerStatistics(model, realX, session),
    zeroq: await layerStatistics(model, calib[0], session),
    noise: await layerStatistics(model, noise.tensors[0], session),
  };
  report.table(
    "statistics",
    table(
      stats.real.map((r, i) => ({
        layer: r.layer,
        real: Number(r.loss.toPrecision(3)),
        zeroq: Number(stats.zeroq[i].loss.toPrecision(3)),
        noise: Number(stats.noise[i].loss.toPrecision(3)),
      })),
      { title: "ZeroQ loss per BatchNorm layer (mean + std terms): how far each batch's statistics are from BN's" },
    ),
  );
  const perLayer = (["real", "zeroq", "noise"] as const).flatMap((k) =>
    stats[k].map((r, i) => ({ layer: i + 1, loss: Number(r.loss.toPrecision(4)), source: k, name: r.layer }))
  );
  report.chart(
    "statistics",
    dotPlotChart(perLayer, {
      title: "How far each batch's statistics are from the BatchNorm statistics",
      subtitle: "ZeroQ loss (mean + std terms) per BN layer, in graph order (top first); lower is closer",
      x: { field: "loss", title: "ZeroQ loss of the layer (log scale)", scale: "log" },
      y: { field: "name", title: "BatchNorm layer", order: stats.real.map((r) => r.layer) },
      color: { field: "source", title: "calibration data" },
    }),
  );

  const w8 = rows[0], low = rows[rows.length - 1];
  const lossSum = (k: "real" | "zeroq" | "noise") => stats[k].reduce((a, r) => a + r.loss, 0);
  report.finding(
    "ZeroQ-calibrated W8A8 is within 1 point of real-data calibration",
    w8.zeroq >= w8.real - 1,
    `W8A8: real ${w8.real.toFixed(2)}%, ZeroQ ${w8.zeroq.toFixed(2)}%, noise ${w8.noise.toFixed(2)}%; at 8 bits ` +
      "all three tie: min-max ranges at 256 levels are forgiving",
    { value: w8.zeroq - w8.real, unit: "points (ZeroQ minus real, W8A8)" },
  );
  report.finding(
    `At ${low.setting} ZeroQ calibrates at least 2 points better than Gaussian noise`,
    low.zeroq >= low.noise + 2,
    `${low.setting}: real ${low.real.toFixed(2)}%, ZeroQ ${low.zeroq.toFixed(2)}%, noise ${
      low.noise.toFixed(2)
    }% (ZeroQ - noise = ${(low.zeroq - low.noise).toFixed(2)} points)`,
    { value: low.zeroq - low.noise, unit: `points (ZeroQ minus noise, ${low.setting})` },
  );
  report.finding(
    "Quantizing the input image too hurts ZeroQ badly (distilled inputs do not know the real pixel range)",
    inQ.zeroq < low.zeroq - 2,
    `${inQ.setting}: real ${inQ.real.toFixed(2)}%, ZeroQ ${inQ.zeroq.toFixed(2)}%, noise ${inQ.noise.toFixed(2)}%`,
    { value: low.zeroq - inQ.zeroq, unit: "points (ZeroQ accuracy lost by quantizing the input)" },
  );
  report.finding(
    "Level 2 (fine-tuning on synthetic data with KD) improves on level 1",
    level2 > low.zeroq,
    `${low.setting}: level 1 ${low.zeroq.toFixed(2)}% -> level 2 ${level2.toFixed(2)}% (float ${floatAcc.toFixed(2)}%)`,
    { value: level2 - low.zeroq, unit: "points (level 2 minus level 1)" },
  );
  report.text(
    "Why the claim holds only at aggressive activation bits here: with 8 (or 6) activation bits, min-max ranges " +
      "from any batch that roughly reaches each ReLU's typical maximum leave the rounding error far below what this " +
      "small network notices, so real, distilled and even noise data tie. With 4-bit activations the step is 1/15 " +
      `of the range and the range matters: noise drives the layers to statistics unlike real data (summed over the ` +
      `BN layers, its BN-statistics loss is ${lossSum("noise").toPrecision(3)} against ${
        lossSum("real").toPrecision(3)
      } for real images and ${lossSum("zeroq").toPrecision(3)} for distilled ones), so its ranges are off, ` +
      "while distilled data reproduces each layer's per-channel mean and spread and so its ranges. The raw input is " +
      "different: ZeroQ only pulls the input to mean 0 / std 1, so distilled pixels spread over a symmetric range " +
      "while real normalised pixels lie in [-0.81, 2.02] with most at the background value; quantizing the input " +
      "with the distilled range wastes levels and clips the bright pixels, which is why ZeroQ keeps the input in " +
      "float. The survey's ImageNet pattern (ResNet50 W8A8 77.67 vs 77.72 float) is the 8-bit tie seen here.",
  );
  report.record({
    float: floatAcc,
    ...Object.fromEntries(rows.flatMap((r) => [
      [`${r.setting}_real`, r.real],
      [`${r.setting}_zeroq`, r.zeroq],
      [`${r.setting}_noise`, r.noise],
    ])),
    input_quantized_zeroq: inQ.zeroq,
    level2,
    distill_seconds: zeroq.seconds,
  });
  const grid = await imageGrid([realX, calib[0], noise.tensors[0]], {
    cols: 8,
    scale: 3,
    title: "rows: real, ZeroQ-distilled, Gaussian noise",
  });
  await report.prerender();
  await bar.finish(); // 100 % when the statistics, grid and charts are done too
  return { report, zeroq, noise, grid };
}

/**
 * Experiment 10 in the registry.
 *
 * @example
 * ```ts
 * import { zeroShotExperiment } from "./zero_shot.ts";
 * if (zeroShotExperiment.id !== "zero-shot" || !zeroShotExperiment.notebook?.includes("10_")) throw new Error("bad");
 * ```
 */
export const zeroShotExperiment: Experiment = {
  id: "zero-shot",
  title: TITLE,
  section: "zero-shot (ZSQ)",
  notebook: "notebooks/10_zero_shot.ipynb",
  run: async (options) => (await zeroShotComparison(options)).report,
};
