/**
 * Experiment 13, trained binary and ternary weights (survey §IV-E): on the digits CNN and the Fashion-MNIST
 * ResNet-8, the weights of every layer but the first and the last (kept at int8, as the papers keep them in high
 * precision) are binarized (BinaryConnect deterministic and stochastic, XNOR-Net) or ternarized (TWN, TTQ), first
 * post-training (the quantizer fitted on the float weights, BatchNorm statistics of the float model) and then
 * trained through the straight-through estimators of lib/qat/extremes.ts (Adam, BatchNorm in training mode). Test
 * accuracy of the exported ONNX models (binary/ternary float weights, int8 first/last layers, BatchNorm in float)
 * against the float model, with bits per weight.
 *
 * Settings: digits CNN (80/20 split, seed 0) 4 epochs per method (2 in the quick preset); ResNet-8 (full runs
 * only, Fashion-MNIST needed) `steps` Adam steps of batch 64 per method (default 200, a fifth of an epoch) with a
 * cosine decay from 1e-3, evaluated on the full test set. The papers train for hundreds of epochs from scratch (TTQ
 * fine-tunes from float); this is a fine-tuning budget sized for a 2-core machine.
 *
 * @module
 */
import { type ImageDataset, trainTestSplit } from "../data/batching.ts";
import { loadDigits } from "../data/digits.ts";
import { cosineLr } from "../grad/schedule.ts";
import { evaluateModel } from "../grad/train.ts";
import { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { QuantlabError } from "../errors.ts";
import { progress } from "../notebook/progress.ts";
import { table } from "../notebook/table.ts";
import { ptq } from "../ptq/pipeline.ts";
import {
  EXTREME_METHODS,
  extremePtq,
  extremeQuantizer,
  type ExtremeTrainMethod,
  type ExtremeTrainResult,
  trainExtreme,
} from "../qat/extremes.ts";
import { dotPlotChart, lineChart } from "../viz/charts.ts";
import { loadExperimentModel, loadFashionOrNote, type OnnxExperimentOptions } from "./ptq_onnx.ts";
import type { Experiment } from "./registry.ts";
import { Report } from "./report.ts";

const TITLE = "13 · Trained binary and ternary weights";
const CLAIM = "Binary and ternary weights collapse without training and come within a few points of float with it";
const SECTION = "survey §IV-E Extreme quantization";

/** Options of {@link extremeTrainingComparison}. */
export interface ExtremeTrainingOptions extends OnnxExperimentOptions {
  /** Adam steps per method on the ResNet-8 (default 200; the quick preset skips the ResNet-8). */
  readonly steps?: number;
  /** Epochs per method on the digits CNN (default 4, quick 2). */
  readonly digitsEpochs?: number;
  /** Methods (default all five). */
  readonly methods?: readonly ExtremeTrainMethod[];
}

/** One (model, method) result. */
export interface ExtremeTrainingRow {
  /** `"digits CNN"` or `"ResNet-8"`. */
  readonly model: string;
  /** The method. */
  readonly method: ExtremeTrainMethod;
  /** Binary or ternary weights. */
  readonly weights: "binary" | "ternary";
  /** Float model test accuracy (%). */
  readonly float: number;
  /** PTQ, BatchNorm kept with the float statistics (the same export graph as training) (%). */
  readonly ptq: number;
  /** PTQ through `ptq()` with BatchNorm folded into the weights first (%). */
  readonly ptqFolded: number;
  /** Trained, exported ONNX model (%). */
  readonly trained: number;
  /** Trained, the training graph's own forward (%). */
  readonly trainedGraph: number;
  /** Storage bits per weight over all planned weights (first/last int8 included). */
  readonly bitsPerWeight: number;
  /** Bits per weight of the binary/ternary layers. */
  readonly extremeBits: number;
  /** Fraction of zero weights in the ternary layers. */
  readonly sparsity: number;
  /** Steps trained. */
  readonly steps: number;
  /** Training wall seconds. */
  readonly seconds: number;
}

/** What {@link extremeTrainingComparison} returns. */
export interface ExtremeTrainingComparison {
  /** The report. */
  readonly report: Report;
  /** Every result row. */
  readonly rows: readonly ExtremeTrainingRow[];
  /** Training loss per step (mean of 10 steps) per model and method, for learning curves. */
  readonly curves: readonly { model: string; method: ExtremeTrainMethod; step: number; loss: number }[];
}

const pct = (x: number) => Number((100 * x).toFixed(2));

async function runModel(
  name: string,
  model: OnnxModel,
  train: ImageDataset,
  test: ImageDataset,
  methods: readonly ExtremeTrainMethod[],
  budget: { epochs?: number; steps?: number },
  seed: number,
  session: SessionOptions,
  tick: () => unknown,
): Promise<{ rows: ExtremeTrainingRow[]; curves: ExtremeTrainingComparison["curves"] }> {
  const acc = async (m: OnnxModel) => (await evaluateModel(m, test, { session })).accuracy;
  const float = await acc(model);
  const rows: ExtremeTrainingRow[] = [];
  const curves: { model: string; method: ExtremeTrainMethod; step: number; loss: number }[] = [];
  for (const method of methods) {
    const p = await extremePtq(model, { method, session });
    const folded = await ptq(model).weights(extremeQuantizer(method)).activations(false).input(false).firstLast(8)
      .session(session).quantize();
    const schedule = budget.steps ? cosineLr({ lr: 1e-3, tMax: budget.steps, unit: "step" }) : undefined;
    const r: ExtremeTrainResult = await trainExtreme(model, train, {
      method,
      epochs: budget.epochs ?? 1,
      maxSteps: budget.steps,
      batchSize: 64,
      seed,
      optimizer: { kind: "adam", lr: 1e-3 },
      schedule,
      test,
      session,
    });
    const trained = await acc(r.model);
    const ternaryLayers = r.layers.filter((l) => l.sparsity > 0);
    rows.push({
      model: name,
      method,
      weights: method === "twn" || method === "ttq" ? "ternary" : "binary",
      float: pct(float),
      ptq: pct(await acc(p.model)),
      ptqFolded: pct(await acc(folded.qdq)),
      trained: pct(trained),
      trainedGraph: pct(r.history.at(-1)!.testAccuracy!),
      bitsPerWeight: Number(r.bitsPerWeight.toFixed(3)),
      extremeBits: Number(r.extremeBitsPerWeight.toFixed(3)),
      sparsity: ternaryLayers.length
        ? Number((ternaryLayers.reduce((a, l) => a + l.sparsity, 0) / r.layers.length).toFixed(3))
        : 0,
      steps: r.losses.length,
      seconds: Number(r.seconds.toFixed(1)),
    });
    const every = Math.max(1, Math.floor(r.losses.length / 60));
    for (let s = 0; s + every <= r.losses.length; s += every) {
      let sum = 0;
      for (let k = s; k < s + every; k++) sum += r.losses[k];
      curves.push({ model: name, method, step: s + every, loss: Number((sum / every).toPrecision(4)) });
    }
    await tick();
  }
  return { rows, curves };
}

/** The runs of one model (see {@link extremeTrainingRuns}). */
export interface ExtremeTrainingRuns {
  /** `"digits CNN"` or `"ResNet-8"`. */
  readonly model: string;
  /** One row per method (empty when the model did not run). */
  readonly rows: readonly ExtremeTrainingRow[];
  /** Training loss curves. */
  readonly curves: ExtremeTrainingComparison["curves"];
  /** The settings, in words (or why the model did not run). */
  readonly setting: string;
}

/**
 * Run the methods on one model: `"digits"` (the digits CNN, 80/20 split, `digitsEpochs` epochs) or `"resnet8"`
 * (the Fashion-MNIST ResNet-8, `steps` Adam steps with a cosine decay; skipped with a note in the quick preset or
 * without Fashion-MNIST). The notebook runs the ResNet-8 one method per cell and joins the runs with
 * {@link extremeTrainingReport}.
 *
 * @example
 * ```ts ignore
 * const digits = await extremeTrainingRuns("digits", { quick: true, methods: ["ttq"] });
 * ```
 */
export async function extremeTrainingRuns(
  which: "digits" | "resnet8",
  options: ExtremeTrainingOptions = {},
): Promise<ExtremeTrainingRuns> {
  const quick = options.quick ?? false, seed = options.seed ?? 0;
  const session: SessionOptions = options.session ?? {};
  const methods = options.methods ?? EXTREME_METHODS;
  const steps = options.steps ?? 200, digitsEpochs = options.digitsEpochs ?? (quick ? 2 : 4);
  const label = which === "digits" ? "digits CNN" : "ResNet-8";
  if (which === "digits") {
    const bar = progress(methods.length, { label: "13 extremes, digits CNN", sink: options.progress });
    const model = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url));
    const digits = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });
    const r = await runModel(
      label,
      model,
      digits.train,
      digits.test,
      methods,
      { epochs: digitsEpochs },
      seed,
      session,
      () => bar.tick(),
    );
    await bar.finish();
    return {
      model: label,
      ...r,
      setting: `digits CNN: ${digitsEpochs} epochs per method (80/20 split of the 1797 digits, Adam 1e-3)`,
    };
  }
  const fashion = quick
    ? { note: "quick preset: the ResNet-8 runs only in the full notebook run" }
    : await loadFashionOrNote();
  if ("note" in fashion) return { model: label, rows: [], curves: [], setting: `ResNet-8 not run (${fashion.note})` };
  const bar = progress(methods.length, { label: "13 extremes, ResNet-8", sink: options.progress });
  const loaded = await loadExperimentModel(options.model);
  const r = await runModel(
    label,
    loaded.model,
    fashion.train,
    fashion.test,
    methods,
    { steps },
    seed,
    session,
    () => bar.tick(),
  );
  await bar.finish();
  return {
    model: label,
    ...r,
    setting: `ResNet-8 (${loaded.origin}): ${steps} Adam steps of 64 images per method (cosine decay from 1e-3), ` +
      "full test set",
  };
}

/**
 * Run experiment 13 (see the module doc): the digits CNN, then (full runs) the ResNet-8, then the report. `quick`:
 * the digits CNN only, 2 epochs per method.
 *
 * @example
 * ```ts ignore
 * const { report, rows } = await extremeTrainingComparison({ quick: true });
 * ```
 */
export async function extremeTrainingComparison(
  options: ExtremeTrainingOptions = {},
): Promise<ExtremeTrainingComparison> {
  const digits = await extremeTrainingRuns("digits", options);
  const resnet = await extremeTrainingRuns("resnet8", options);
  return await extremeTrainingReport([digits, resnet]);
}

/**
 * The report of experiment 13 over runs of {@link extremeTrainingRuns} (runs of one model may come in several
 * parts, e.g. one method each).
 *
 * @example
 * ```ts ignore
 * const { report } = await extremeTrainingReport([digits, ...resnetPerMethod]);
 * ```
 */
export async function extremeTrainingReport(runs: readonly ExtremeTrainingRuns[]): Promise<ExtremeTrainingComparison> {
  const rows = runs.flatMap((r) => r.rows), curves = runs.flatMap((r) => r.curves);
  if (rows.length === 0) {
    throw new QuantlabError("INVALID_ARGUMENT", "extremeTrainingReport: no results (every run was skipped)");
  }
  const settings = [...new Set(runs.map((r) => r.setting))];
  const report = new Report("extreme-training", TITLE, CLAIM);
  report.text(
    "Every weight layer but the first and the last is binary or ternary; those two stay int8 (per-channel " +
      "symmetric), as BinaryConnect, XNOR-Net, TWN and TTQ keep them in high precision; activations stay float " +
      "(weights-only, as the papers' weight-binarization results). BatchNorm is a float op after each conv, trained " +
      "in batch-statistics mode. PTQ fits the same quantizers to the float weights without training. Settings: " +
      `${settings.join("; ")}. Every run starts from the trained float model; the papers train hundreds of epochs ` +
      "(from scratch, TTQ from float); these are fine-tuning budgets for a 2-core machine.",
  );
  report.table(
    "accuracy",
    table(
      rows.map((r) => ({
        model: r.model,
        method: r.method,
        weights: r.weights,
        "float %": r.float,
        "PTQ %": r.ptq,
        "PTQ, BN folded %": r.ptqFolded,
        "trained (ONNX export) %": r.trained,
        "bits/weight (all)": r.bitsPerWeight,
        "bits/weight (extreme layers)": r.extremeBits,
        "zeros (ternary)": r.sparsity,
        steps: r.steps,
        "seconds": r.seconds,
      })),
      { title: "Test accuracy: float, post-training binarization/ternarization, trained (exported ONNX model)" },
    ),
  );
  const dots = rows.flatMap((r) => [
    { row: `${r.model} · ${r.method}`, model: r.model, accuracy: r.ptq, kind: "PTQ (no training)" },
    { row: `${r.model} · ${r.method}`, model: r.model, accuracy: r.trained, kind: "trained" },
    { row: `${r.model} · ${r.method}`, model: r.model, accuracy: r.float, kind: "float" },
  ]);
  report.chart(
    "accuracy",
    dotPlotChart(dots, {
      title: "Binary and ternary weights: collapse without training, recovery with it",
      subtitle: "test accuracy of the exported models; first and last layers int8, activations float",
      x: { field: "accuracy", title: "test accuracy (%)" },
      y: { field: "row", title: "model · method", order: rows.map((r) => `${r.model} · ${r.method}`) },
      color: { field: "kind", title: "weights" },
    }),
  );
  for (const m of new Set(curves.map((c) => c.model))) {
    report.chart(
      `curves-${m === "ResNet-8" ? "resnet8" : "digits"}`,
      lineChart(curves.filter((c) => c.model === m), {
        title: `Training loss, ${m}`,
        subtitle: "cross-entropy, mean over blocks of steps",
        x: { field: "step", title: "step" },
        y: { field: "loss", title: "loss", scale: "log" },
        series: { field: "method", title: "method" },
        points: false,
      }),
    );
  }

  const main = rows.some((r) => r.model === "ResNet-8") ? "ResNet-8" : "digits CNN";
  const mr = rows.filter((r) => r.model === main);
  const float = mr[0].float;
  const best = (w: "binary" | "ternary") =>
    mr.filter((r) => r.weights === w).reduce<ExtremeTrainingRow | undefined>(
      (a, r) => !a || r.trained > a.trained ? r : a,
      undefined,
    );
  const bestPtq = Math.max(...mr.map((r) => r.ptq));
  report.finding(
    `Without training, binary and ternary weights collapse (${main}: every method's PTQ at least 20 points below float)`,
    bestPtq <= float - 20,
    `${main} float ${float.toFixed(2)}%; PTQ ${mr.map((r) => `${r.method} ${r.ptq.toFixed(2)}%`).join(", ")}`,
    { value: float - bestPtq, unit: "points (float minus the best PTQ)" },
  );
  report.cite(report.findings.length - 1, {
    section: SECTION,
    source: "the survey's extreme-quantization section; TWN (Li et al. 2016) and TTQ (Zhu et al. 2017) train (via " +
      "PAPERS.md)",
    setting: "binary / ternary weights with a per-layer (or per-channel) scale, no retraining",
    result: "no post-training number is published: the methods are trained because the survey states that " +
      "binarization/ternarization without training degrades accuracy significantly",
    verified: false,
  });
  const tern = best("ternary"), bin = best("binary");
  if (tern) {
    report.finding(
      `Trained ternary weights come within 2 points of float (${main}, best of TWN/TTQ)`,
      tern.trained >= float - 2,
      `${tern.method} ${tern.trained.toFixed(2)}% vs float ${float.toFixed(2)}% (PTQ ${tern.ptq.toFixed(2)}%), ` +
        `ternary layers ${tern.extremeBits} bits/weight, all weights ${tern.bitsPerWeight}`,
      { value: tern.trained - float, unit: "points (trained ternary minus float)" },
    );
    report.cite(report.findings.length - 1, {
      section: SECTION,
      source: "TTQ (Zhu et al. 2017, czhu95/ternarynet); via the project's reading notes (PAPERS.md)",
      setting: "ResNet-20 CIFAR-10, learned Wp/Wn, threshold 0.05 max|W|, first and last layers float",
      result: "error 8.23 % (float) -> 8.87 % (ternary), i.e. 0.64 points lost",
      verified: false,
    });
  }
  if (bin) {
    report.finding(
      `Trained binary weights come within 5 points of float (${main}, best of BinaryConnect/XNOR)`,
      bin.trained >= float - 5,
      `${bin.method} ${bin.trained.toFixed(2)}% vs float ${float.toFixed(2)}% (PTQ ${bin.ptq.toFixed(2)}%), ` +
        `binary layers ${bin.extremeBits} bits/weight, all weights ${bin.bitsPerWeight}`,
      { value: bin.trained - float, unit: "points (trained binary minus float)" },
    );
    report.cite(report.findings.length - 1, {
      section: SECTION,
      source: "BinaryConnect (Courbariaux et al. 2015); via the project's reading notes (PAPERS.md)",
      setting: "CIFAR-10, binary weights trained from scratch (Adam, latent weights clipped to [-1, 1])",
      result: "error 8.27 %",
      verified: false,
    });
  }
  const exportGap = Math.max(...rows.map((r) => Math.abs(r.trained - r.trainedGraph)));
  report.finding(
    "The exported ONNX models (binary/ternary float weights) reproduce the accuracy measured in training",
    exportGap <= 0.05,
    `largest |export - training graph| over all runs: ${exportGap.toFixed(2)} points`,
    { value: exportGap, unit: "points" },
  );
  report.cite(report.findings.length - 1, {
    section: SECTION,
    source: "BinaryConnect (Courbariaux et al. 2015): test-time use of the binarized weights (via PAPERS.md)",
    setting: "deterministic sign (or ternary values) at test time, latent float weights discarded",
    result: "no separate number: the paper evaluates the binarized network; ours checks the exported ONNX file " +
      "equals the training graph",
    verified: false,
  });
  const stoch = mr.find((r) => r.method === "binaryconnect-stochastic"),
    det = mr.find((r) => r.method === "binaryconnect");
  if (stoch && det) {
    report.text(
      `Stochastic vs deterministic BinaryConnect (${main}): ${stoch.trained.toFixed(2)}% vs ${
        det.trained.toFixed(2)
      }%. The paper finds the stochastic sign a regularizer that helps over hundreds of epochs from scratch; in a ` +
        "short fine-tuning the sampling noise mostly slows convergence. Stochastic runs are evaluated and exported " +
        "with the deterministic sign (the paper's first test-time option) after re-estimating BatchNorm's statistics " +
        "with it (the statistics gathered under random signs do not fit the deterministic network).",
    );
  }
  report.record(
    Object.fromEntries(rows.flatMap((r) => {
      const k = `${r.model === "ResNet-8" ? "resnet8" : "digits"}_${r.method}`;
      return [[`${k}_ptq`, r.ptq], [`${k}_trained`, r.trained], [`${k}_bits`, r.bitsPerWeight]];
    })),
  );
  await report.prerender();
  return { report, rows, curves };
}

/**
 * Experiment 13 in the registry.
 *
 * @example
 * ```ts
 * import { extremeTrainingExperiment } from "./extreme_training.ts";
 * if (extremeTrainingExperiment.id !== "extreme-training" || !extremeTrainingExperiment.notebook?.includes("13_")) {
 *   throw new Error("bad");
 * }
 * ```
 */
export const extremeTrainingExperiment: Experiment = {
  id: "extreme-training",
  title: TITLE,
  section: "extreme quantization (trained)",
  notebook: "notebooks/13_extreme_training.ipynb",
  run: async (options) => (await extremeTrainingComparison(options)).report,
};
