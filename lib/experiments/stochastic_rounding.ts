/**
 * Experiment 04, stochastic rounding: unbiasedness (mean error against sample
 * count), its variance cost, and low-precision training of a softmax
 * regression on the digits with fixed-point weights updated in place, where
 * round-to-nearest stalls and stochastic rounding keeps learning.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { loadDigits } from "../data/digits.ts";
import { type ImageDataset, trainTestSplit } from "../data/batching.ts";
import { gatherImages } from "../data/images.ts";
import { table } from "../notebook/table.ts";
import { type Progress, progress } from "../notebook/progress.ts";
import { fakeQuantizeTensor } from "../quant/affine.ts";
import { paramsFromRange, type QuantParams } from "../quant/params.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { accuracyVsBitsChart, lineChart } from "../viz/charts.ts";
import type { Experiment, ExperimentOptions } from "./registry.ts";
import { Report } from "./report.ts";
import { fixed } from "./sources.ts";

/** A unit grid (scale 1, zero point 0, codes -127..127) for measuring rounding in LSB. */
function unitGrid(): QuantParams {
  return paramsFromRange([-127], [127], { bits: 8, signed: true, symmetric: true, range: "restricted" }, {
    kind: "tensor",
  });
}

/**
 * Mean rounding error (in LSB) of `n` copies of `x` rounded on a unit grid
 * with `fakeQuantizeTensor`.
 *
 * @example
 * ```ts
 * import { meanRoundingError } from "./stochastic_rounding.ts";
 * if (Math.abs(meanRoundingError(0.3, 1000, "nearest-even", 0) + 0.3) > 1e-6) throw new Error("bad");
 * if (Math.abs(meanRoundingError(0.3, 100000, "stochastic", 1)) > 0.01) throw new Error("biased");
 * ```
 */
export function meanRoundingError(
  x: number,
  n: number,
  rounding: "nearest-even" | "stochastic",
  seed: number,
): number {
  const t = Tensor.from(new Float32Array(n).fill(x));
  const y = fakeQuantizeTensor(t, unitGrid(), { rounding, seed }).data;
  let s = 0;
  for (let i = 0; i < n; i++) s += y[i] - t.data[i];
  return s / n;
}

/** Settings of {@link trainSoftmax}. */
export interface LowPrecisionTraining {
  /** Weight bit width (fixed-point, symmetric, restricted range); `undefined` trains in float32. */
  readonly bits?: number;
  /** Rounding of every weight update. */
  readonly rounding: "nearest-even" | "stochastic";
  /** Fixed-point range: weights live on a grid over `[-range, range]` (default 2). */
  readonly range?: number;
  /** Learning rate (default 0.05). */
  readonly lr?: number;
  /** Epochs (default 30). */
  readonly epochs?: number;
  /** Mini-batch size (default 32). */
  readonly batch?: number;
  /** Seed for batch order and stochastic rounding. */
  readonly seed?: number;
}

/** Per-epoch training record. */
export interface EpochRecord {
  /** Epoch, 1-based (0 = before training). */
  readonly epoch: number;
  /** Mean cross-entropy on the training set (nats). */
  readonly loss: number;
  /** Test accuracy, fraction. */
  readonly accuracy: number;
  /** Fraction of weights that changed per step, averaged over the epoch. */
  readonly changed: number;
}

/** A dataset's images as float32 rows (its preprocessing applied: `p / 16` for the digits) and its labels. */
interface Rows {
  readonly x: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

function rows(d: ImageDataset): Rows {
  return { x: gatherImages(d).data, labels: d.labels, count: d.count };
}

function evaluate(theta: Float32Array, d: Rows): { loss: number; accuracy: number } {
  const x = d.x, n = d.count;
  const logits = new Float64Array(10);
  let loss = 0, correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 0; c < 10; c++) {
      let z = theta[c * 65 + 64];
      const row = c * 65;
      for (let j = 0; j < 64; j++) z += theta[row + j] * x[i * 64 + j];
      logits[c] = z;
      if (z > logits[best]) best = c;
    }
    let m = -Infinity;
    for (let c = 0; c < 10; c++) if (logits[c] > m) m = logits[c];
    let se = 0;
    for (let c = 0; c < 10; c++) se += Math.exp(logits[c] - m);
    loss += m + Math.log(se) - logits[d.labels[i]];
    if (best === d.labels[i]) correct++;
  }
  return { loss: loss / n, accuracy: correct / n };
}

/**
 * Train a softmax (multinomial logistic) regression, 64 pixels + bias -> 10
 * classes, with mini-batch SGD. With `bits`, the weights are stored on a
 * fixed-point grid and every update `w <- Q(w - lr * g)` is rounded in place
 * with `fakeQuantizeTensor` (nearest-even or stochastic, a fresh seed per step).
 *
 * @example
 * ```ts
 * import { trainSoftmax } from "./stochastic_rounding.ts";
 * import { loadDigits } from "../data/digits.ts";
 * import { trainTestSplit } from "../data/batching.ts";
 * const { train, test } = trainTestSplit(await loadDigits(), { seed: 0 });
 * const h = trainSoftmax(train, test, { rounding: "nearest-even", epochs: 2 });
 * if (!(h[h.length - 1].accuracy > 0.8)) throw new Error("float training failed");
 * ```
 */
export function trainSoftmax(
  trainSet: ImageDataset,
  testSet: ImageDataset,
  cfg: LowPrecisionTraining,
): EpochRecord[] {
  const lr = cfg.lr ?? 0.05, epochs = cfg.epochs ?? 30, batch = cfg.batch ?? 32, seed = cfg.seed ?? 0;
  const range = cfg.range ?? 2;
  if (trainSet.channels * trainSet.height * trainSet.width !== 64) {
    throw new QuantlabError("SHAPE_MISMATCH", "trainSoftmax expects 8x8 images (64 features)");
  }
  const params = cfg.bits === undefined ? undefined : paramsFromRange([-range], [range], {
    bits: cfg.bits,
    signed: true,
    symmetric: true,
    range: "restricted",
  }, { kind: "tensor" });
  const theta = new Float32Array(650);
  const next = Tensor.from(new Float32Array(650));
  const grad = new Float64Array(650);
  const probs = new Float64Array(10);
  const train = rows(trainSet), test = rows(testSet);
  const order = Int32Array.from({ length: train.count }, (_, i) => i);
  const rng = new Prng(seed);
  const x = train.x;
  const history: EpochRecord[] = [{
    epoch: 0,
    ...evaluate(theta, test),
    changed: 0,
    loss: evaluate(theta, train).loss,
  }];
  let step = 0;
  for (let e = 1; e <= epochs; e++) {
    rng.shuffle(order);
    let changedSum = 0, steps = 0;
    for (let b0 = 0; b0 < train.count; b0 += batch) {
      const b1 = Math.min(train.count, b0 + batch);
      grad.fill(0);
      for (let k = b0; k < b1; k++) {
        const i = order[k];
        let m = -Infinity;
        for (let c = 0; c < 10; c++) {
          let z = theta[c * 65 + 64];
          for (let j = 0; j < 64; j++) z += theta[c * 65 + j] * x[i * 64 + j];
          probs[c] = z;
          if (z > m) m = z;
        }
        let se = 0;
        for (let c = 0; c < 10; c++) se += probs[c] = Math.exp(probs[c] - m);
        for (let c = 0; c < 10; c++) {
          const g = probs[c] / se - (c === train.labels[i] ? 1 : 0);
          for (let j = 0; j < 64; j++) grad[c * 65 + j] += g * x[i * 64 + j];
          grad[c * 65 + 64] += g;
        }
      }
      const scale = lr / (b1 - b0);
      const nd = next.data;
      for (let j = 0; j < 650; j++) nd[j] = theta[j] - scale * grad[j];
      let changed = 0;
      if (params) {
        const q = fakeQuantizeTensor(next, params, { rounding: cfg.rounding, seed: seed * 1000003 + step }).data;
        for (let j = 0; j < 650; j++) {
          if (q[j] !== theta[j]) changed++;
          theta[j] = q[j];
        }
      } else {
        for (let j = 0; j < 650; j++) {
          if (nd[j] !== theta[j]) changed++;
          theta[j] = nd[j];
        }
      }
      changedSum += changed / 650;
      steps++;
      step++;
    }
    const te = evaluate(theta, test);
    history.push({ epoch: e, loss: evaluate(theta, train).loss, accuracy: te.accuracy, changed: changedSum / steps });
  }
  return history;
}

/**
 * Run experiment 04. Claims checked: stochastic rounding is unbiased (mean
 * error -> 0 as 1/sqrt(n)) at the price of variance f(1-f); with 8-bit
 * fixed-point weights updated in place, round-to-nearest stalls and stochastic
 * rounding keeps learning.
 *
 * @example
 * ```ts
 * import { stochasticRounding } from "./stochastic_rounding.ts";
 * const r = await stochasticRounding({ quick: true, progress: "none" });
 * if (!(r.numbers["train.stochastic8"] > r.numbers["train.nearest8"])) throw new Error(r.findingsText());
 * ```
 */
export async function stochasticRounding(options: ExperimentOptions = {}): Promise<Report> {
  const seed = options.seed ?? 0;
  const quick = options.quick ?? false;
  const report = new Report(
    "stochastic-rounding",
    "04 · Stochastic rounding: unbiased, noisier, and it keeps low-precision training going",
    "Stochastic rounding (floor(x) with probability ceil(x) - x, else ceil(x)) is unbiased, and lets " +
      "low-precision training make progress where round-to-nearest stalls.",
  );
  const bitsSweep = quick ? [8, 12] : [6, 7, 8, 10, 12, 14];
  const p = progress(2 + 1 + 2 * bitsSweep.length, { label: "04 stochastic rounding", sink: options.progress });

  // A. Unbiasedness: mean error of n roundings of one value, against n.
  const f0 = 0.3;
  const reps = quick ? 8 : 32;
  const ns = quick ? [1, 16, 256, 4096, 65536] : [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144];
  const rowsA: { n: number; method: string; err: number }[] = [];
  const tableA: Record<string, number>[] = [];
  for (const n of ns) {
    let sr = 0;
    for (let r = 0; r < reps; r++) sr += Math.abs(meanRoundingError(5 + f0, n, "stochastic", seed * 7777 + r * 31 + n));
    sr /= reps;
    const nr = Math.abs(meanRoundingError(5 + f0, n, "nearest-even", 0));
    const theory = Math.sqrt(f0 * (1 - f0) / n) * Math.sqrt(2 / Math.PI);
    rowsA.push(
      { n, method: "stochastic (measured)", err: sr },
      { n, method: "stochastic (theory: sqrt(2f(1-f)/(πn)))", err: theory },
      { n, method: "round to nearest", err: nr },
    );
    tableA.push({ n, nearest: nr, stochastic: sr, theory });
  }
  await p.tick(1, "bias");
  report.text(
    `Unbiasedness: x = 5.3 (f = ${f0} of an LSB above a level) is rounded n times on a unit grid ` +
      `(fakeQuantizeTensor, scale 1); the plot shows |mean(Q(x)) - x| averaged over ${reps} seeds.`,
  );
  report.chart(
    "bias-vs-samples",
    lineChart(rowsA, {
      title: "Mean rounding error against sample count",
      subtitle: "x = 5.3 LSB: nearest always gives 5 (bias 0.3 LSB); stochastic averages to x",
      x: { field: "n", title: "samples averaged, n (count, log scale)", scale: "log", format: "~s" },
      y: { field: "err", title: "|mean error| (LSB, log scale)", scale: "log", format: ".0e" },
      series: { field: "method", title: "rounding" },
    }),
  );
  report.table(
    "bias",
    table(tableA, {
      title: "|mean error| (LSB) against n",
      columns: [
        { key: "n", title: "n" },
        { key: "nearest", title: "nearest" },
        { key: "stochastic", title: "stochastic (measured)", digits: 3 },
        { key: "theory", title: "stochastic (theory)", digits: 3 },
      ],
    }),
  );
  const last = tableA[tableA.length - 1];
  const unbiased = last.stochastic < 0.05 * last.nearest && last.stochastic < 3 * last.theory;
  report.finding(
    "Stochastic rounding is unbiased: its mean error goes to 0 as n grows",
    unbiased,
    `at n = ${last.n}: stochastic ${last.stochastic.toExponential(1)} LSB (theory ${
      last.theory.toExponential(1)
    }), nearest ${fixed(last.nearest)} LSB for every n`,
    { value: last.nearest - last.stochastic, unit: "LSB (nearest minus stochastic bias)" },
  );

  // B. Variance: per-element MSE against the fractional position.
  const m = quick ? 4000 : 40000;
  const rowsB: { f: number; method: string; mse: number }[] = [];
  const tableB: Record<string, number>[] = [];
  for (let i = 0; i <= 20; i++) {
    const f = i / 20;
    const msq = (rounding: "nearest-even" | "stochastic") => {
      const t = Tensor.from(new Float32Array(m).fill(5 + f));
      const y = fakeQuantizeTensor(t, unitGrid(), { rounding, seed: seed * 131 + i }).data;
      let s = 0, b = 0;
      for (let j = 0; j < m; j++) {
        const d = y[j] - t.data[j];
        s += d * d;
        b += d;
      }
      return { mse: s / m, bias: b / m };
    };
    const sr = msq("stochastic"), nr = msq("nearest-even");
    rowsB.push(
      { f, method: "stochastic (measured)", mse: sr.mse },
      { f, method: "stochastic (theory: f(1-f))", mse: f * (1 - f) },
      { f, method: "nearest (measured)", mse: nr.mse },
    );
    if (i % 2 === 0) {
      tableB.push({ f, nearestBias: nr.bias, srBias: sr.bias, nearestMse: nr.mse, srMse: sr.mse });
    }
  }
  await p.tick(1, "variance");
  report.chart(
    "mse-vs-fraction",
    lineChart(rowsB, {
      title: "The price: stochastic rounding adds variance",
      subtitle: `${m} roundings of x = 5 + f per point`,
      x: { field: "f", title: "position f of x between two levels (LSB)" },
      y: { field: "mse", title: "mean squared error (LSB²)", zero: true },
      series: { field: "method", title: "rounding" },
    }),
  );
  report.table(
    "bias-variance",
    table(tableB, {
      title: "Bias and MSE (LSB, LSB²) against the position f",
      digits: 3,
      columns: [
        { key: "f", title: "f (LSB)" },
        { key: "nearestBias", title: "nearest bias" },
        { key: "srBias", title: "stochastic bias" },
        { key: "nearestMse", title: "nearest MSE" },
        { key: "srMse", title: "stochastic MSE" },
      ],
    }),
  );
  report.finding(
    "Unbiasedness costs variance",
    true,
    "per element, stochastic MSE is f(1-f) (0.25 LSB² at f = 0.5, twice the 1/12 average of nearest over " +
      "uniform f), against min(f, 1-f)² for nearest",
  );

  // C. Low-precision training on the digits.
  const { train, test } = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed });
  const epochs = quick ? 12 : 30;
  const base = { epochs, lr: 0.05, batch: 32, range: 2, seed } as const;
  const floatRun = trainSoftmax(train, test, { ...base, rounding: "nearest-even" });
  await p.tick(1, "float32");
  const runs: Record<string, EpochRecord[]> = {};
  const finalAcc: { bits: number; method: string; accuracy: number }[] = [];
  for (const b of bitsSweep) {
    for (const rounding of ["nearest-even", "stochastic"] as const) {
      const h = trainSoftmax(train, test, { ...base, bits: b, rounding });
      runs[`${rounding}${b}`] = h;
      finalAcc.push({
        bits: b,
        method: rounding === "stochastic" ? "stochastic" : "round to nearest",
        accuracy: h[h.length - 1].accuracy,
      });
      await tickRun(p, `${b}-bit ${rounding}`);
    }
  }
  for (const b of bitsSweep) {
    finalAcc.push({ bits: b, method: "float32 weights", accuracy: floatRun[floatRun.length - 1].accuracy });
  }
  const n8 = runs["nearest-even8"] ?? runs[`nearest-even${bitsSweep[0]}`];
  const s8 = runs["stochastic8"] ?? runs[`stochastic${bitsSweep[0]}`];
  const curves: { epoch: number; method: string; accuracy: number }[] = [];
  for (
    const [name, h] of [["float32 weights", floatRun], ["8-bit, round to nearest", n8], [
      "8-bit, stochastic",
      s8,
    ]] as const
  ) {
    for (const r of h) curves.push({ epoch: r.epoch, method: name, accuracy: r.accuracy });
  }
  const S = 2 / 127;
  report.text(
    `Training: softmax regression (64 pixels + bias -> 10 digits) on ${train.count} training images, ` +
      `mini-batch SGD (batch 32, learning rate 0.05, ${epochs} epochs), weights start at 0. In the 8-bit runs ` +
      `every weight lives on the grid S · {-127..127} with S = 2/127 = ${fixed(S, 4)} and each step writes ` +
      "Q(w - lr · g) back in place; an update smaller than S/2 is lost under round-to-nearest. " +
      `Test accuracy on ${test.count} held-out images.`,
  );
  report.chart(
    "training",
    lineChart(curves, {
      title: "8-bit fixed-point training: nearest stalls, stochastic keeps learning",
      subtitle: "softmax regression on the 8x8 digits; weights updated in place on the 8-bit grid",
      x: { field: "epoch", title: "epoch (passes over the training set)", integer: true, format: "d" },
      y: { field: "accuracy", title: "test accuracy (%)", format: ".0%", domain: [0, 1], zero: true },
      series: { field: "method", title: "weights" },
    }),
  );
  report.chart(
    "accuracy-vs-bits",
    accuracyVsBitsChart(finalAcc, {
      title: `Final test accuracy against weight bit width (${epochs} epochs)`,
      subtitle: "fixed-point grid over [-2, 2]; float32 drawn flat for reference",
      seriesTitle: "weight updates",
    }),
  );
  const tableC = bitsSweep.map((b) => {
    const n = runs[`nearest-even${b}`], s = runs[`stochastic${b}`];
    return {
      bits: b,
      nearest: n[n.length - 1].accuracy * 100,
      stochastic: s[s.length - 1].accuracy * 100,
      nearestChanged: n[n.length - 1].changed * 100,
      srChanged: s[s.length - 1].changed * 100,
    };
  });
  report.table(
    "training",
    table(tableC, {
      title: `Test accuracy (%) after ${epochs} epochs (float32: ${
        fixed(floatRun[floatRun.length - 1].accuracy * 100, 1)
      }%)`,
      digits: 3,
      columns: [
        { key: "bits", title: "weight bits" },
        { key: "nearest", title: "nearest: accuracy (%)" },
        { key: "stochastic", title: "stochastic: accuracy (%)" },
        { key: "nearestChanged", title: "nearest: weights changed per step, last epoch (%)" },
        { key: "srChanged", title: "stochastic: weights changed per step, last epoch (%)" },
      ],
    }),
  );
  const accN = n8[n8.length - 1].accuracy, accS = s8[s8.length - 1].accuracy;
  const accF = floatRun[floatRun.length - 1].accuracy;
  const stallEpoch = n8.findIndex((r, i) => i > 0 && r.changed < 0.01);
  report.finding(
    "With 8-bit weights, round-to-nearest stalls and stochastic rounding keeps learning",
    accS - accN > 0.05 && n8[n8.length - 1].changed < 0.05,
    `test accuracy after ${epochs} epochs: nearest ${fixed(accN * 100, 1)}%, stochastic ${
      fixed(accS * 100, 1)
    }%, float32 ${fixed(accF * 100, 1)}%; under nearest only ${
      fixed(n8[n8.length - 1].changed * 100, 2)
    }% of weights change per step in the last epoch${
      stallEpoch > 0 ? ` (below 1% from epoch ${stallEpoch})` : ""
    }, against ${fixed(s8[s8.length - 1].changed * 100, 1)}% with stochastic rounding`,
    { value: (accS - accN) * 100, unit: "points (stochastic minus nearest accuracy)" },
  );
  report.record({ "train.nearest8": accN, "train.stochastic8": accS, "train.float": accF });
  report.record({ "bias.stochastic": last.stochastic, "bias.nearest": last.nearest });
  await report.prerender();
  await p.finish("done"); // 100 % when the charts are rendered too
  return report;
}

async function tickRun(p: Progress, note: string): Promise<void> {
  await p.tick(1, note);
}

/**
 * Experiment 04 for the registry.
 *
 * @example
 * ```ts
 * import { stochasticRoundingExperiment } from "./stochastic_rounding.ts";
 * if (stochasticRoundingExperiment.id !== "stochastic-rounding" || typeof stochasticRoundingExperiment.run !== "function") throw new Error("bad");
 * ```
 */
export const stochasticRoundingExperiment: Experiment = {
  id: "stochastic-rounding",
  title: "Stochastic rounding",
  section: "stochastic rounding",
  notebook: "notebooks/04_stochastic_rounding.ipynb",
  run: stochasticRounding,
};
