/**
 * The trainer: supervised classification with softmax cross-entropy over a forward ONNX model (input
 * `"input"`, output `"logits"` by default), run by quantlab's gradient compiler on onnxruntime-node or -web.
 *
 * Per step: gather a batch in the seeded epoch order, run forward + backward with BatchNormalization in
 * training mode (batch statistics), update the BN running statistics with PyTorch's convention
 * (`running = (1 - m) * running + m * batch`, `m = 1 - ONNX momentum`, running variance from the unbiased batch
 * variance `var * n / (n - 1)`), then the optimizer step with the schedule's rate. Per epoch: evaluate on the
 * test set with the inference model (BN from running statistics), step a plateau scheduler, write the
 * checkpoint atomically, report progress (terminal bar or updating notebook display).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { applyParams, buildGradientGraph, type GradientGraph } from "./compiler.ts";
import { crossEntropyLoss } from "./losses.ts";
import { GradientSession } from "./session.ts";
import type { Optimizer } from "./optim.ts";
import { applySchedule, type ReduceLROnPlateau, type Schedule } from "./schedule.ts";
import { initializerValues, saveCheckpoint } from "./checkpoint.ts";
import { epochOrder, type LabelledBatch, labelledBatch } from "./train_data.ts";
import { batches, type ImageDataset } from "../data/batching.ts";
import { normalizationTables } from "../data/images.ts";

/** Options of {@link Trainer.create}. */
export interface TrainerOptions {
  /** Forward model (BatchNormalization in inference form; running statistics as initializers). */
  model: OnnxModel;
  /** The optimizer (its `lr` is overwritten by a schedule when one is given). */
  optimizer: Optimizer;
  /** A sample batch (size >= 2) used to capture shapes; any batch size works afterwards. */
  sample: LabelledBatch;
  /** Image input name (default `"input"`). */
  input?: string;
  /** Logits output name (default `"logits"`). */
  logits?: string;
  /** Names to train (default: every weight/bias of Conv, Gemm, MatMul and BN scale/bias). */
  wrt?: readonly string[];
  /** ONNX Runtime binding and threads. */
  session?: SessionOptions;
}

/** One training step's outcome. */
export interface StepResult {
  /** Mean cross-entropy of the batch. */
  readonly loss: number;
  /** Correct predictions in the batch. */
  readonly correct: number;
  /** Batch size. */
  readonly size: number;
}

/** Loss and accuracy on a set. */
export interface Evaluation {
  /** Mean cross-entropy (float64 log-sum-exp over float32 logits). */
  readonly loss: number;
  /** Fraction correct (argmax, first maximum on ties). */
  readonly accuracy: number;
  /** Examples evaluated. */
  readonly count: number;
}

/** What one epoch did. */
export interface TrainingEpoch {
  /** Epoch number, from 1. */
  readonly epoch: number;
  /** Mean training loss over the epoch's batches (training-mode BN, weights as they were at each step). */
  readonly trainLoss: number;
  /** Training accuracy over the epoch (same caveat). */
  readonly trainAccuracy: number;
  /** Test loss, when a test set was given. */
  readonly testLoss?: number;
  /** Test accuracy, when a test set was given. */
  readonly testAccuracy?: number;
  /** Learning rate at the epoch's last step. */
  readonly lr: number;
  /** Wall seconds of the epoch's training steps. */
  readonly trainSeconds: number;
  /** Wall seconds of the epoch including evaluation and checkpoint. */
  readonly seconds: number;
}

/**
 * Cumulative wall milliseconds a {@link Trainer} spent per phase (see {@link Trainer.timings}): what
 * `benchmarks/train_profile.ts` prints. `run` is the ONNX Runtime call with its feeds and result conversion.
 */
export interface TrainerTimings {
  /** Gathering and normalising batches in {@link Trainer.fit}. */
  gather: number;
  /** ONNX Runtime forward + backward (feeds, run, outputs). */
  run: number;
  /** BatchNorm running-statistics updates. */
  bnStats: number;
  /** Optimizer updates. */
  optimizer: number;
  /** Loss checks and accuracy counting of each step. */
  metrics: number;
  /** Schedules and progress display in {@link Trainer.fit}. */
  progress: number;
  /** Per-epoch evaluation (building the inference model, its session and the test-set runs). */
  evaluate: number;
  /** Per-epoch checkpoint writing and `onEpoch` callbacks. */
  checkpoint: number;
  /** Steps timed. */
  steps: number;
}

/** Options of {@link Trainer.fit} and {@link train}. */
export interface FitOptions {
  /** Training set (images preprocessed as it declares). */
  train: ImageDataset;
  /** Test set evaluated after every epoch (optional). */
  test?: ImageDataset;
  /** Number of epochs. */
  epochs: number;
  /** Batch size (default 64). */
  batchSize?: number;
  /** Shuffling seed (epoch orders derive from it). */
  seed: number;
  /** Learning-rate schedule, stepped per epoch or per batch as its `unit` says. */
  schedule?: Schedule;
  /** A plateau scheduler stepped after each epoch with the test loss (the training loss without a test set). */
  plateau?: ReduceLROnPlateau;
  /** Drop the last batch when smaller than `batchSize` (default false; a last batch of 1 is always dropped). */
  dropLast?: boolean;
  /** Evaluation batch size (default 500). */
  evalBatchSize?: number;
  /** Write the inference model here after every epoch (atomically), with `metadata` and the epoch's record. */
  checkpoint?: string;
  /** Extra metadata for checkpoints (training configuration, seed, ...). */
  metadata?: Record<string, unknown>;
  /**
   * Where to report progress: a factory making a reporter for `total` steps (e.g. lib/notebook's
   * `(total, label) => progress(total, { label })` for a terminal bar or an updating notebook display), or
   * `"none"` (default). The trainer never imports presentation code.
   */
  progress?: "none" | ProgressFactory;
  /** Label of the progress bar. */
  label?: string;
  /** Called after every epoch with its record and the current inference model. */
  onEpoch?: (record: TrainingEpoch, model: OnnxModel) => void | Promise<void>;
}

/** What the trainer reports progress to (lib/notebook's `Progress` is one). */
export interface ProgressReporter {
  /** Steps done so far. */
  readonly done: number;
  /** Advance by `n` steps with a note. */
  tick(n?: number, note?: string): unknown;
  /** Set the count of steps done with a note. */
  set(done: number, note?: string): unknown;
  /** The work is over. */
  finish(): unknown;
}

/** Makes a {@link ProgressReporter} for `total` steps. */
export type ProgressFactory = (total: number, label: string) => ProgressReporter;

const SILENT: ProgressFactory = () => {
  let done = 0;
  return {
    get done() {
      return done;
    },
    tick: (n = 1) => done += n,
    set: (d: number) => done = d,
    finish: () => undefined,
  };
};

/** The outcome of {@link Trainer.fit}. */
export interface TrainResult {
  /** The trained inference model (BN with running statistics). */
  readonly model: OnnxModel;
  /** Per-epoch records. */
  readonly history: readonly TrainingEpoch[];
  /** Wall seconds in all. */
  readonly seconds: number;
  /** The ONNX Runtime binding used. */
  readonly backend: "node" | "web";
}

/** Throw `DATASET` unless `labels` holds `n` integers in `[0, classes)` (the model's logits width). */
function checkLabels(labels: ArrayLike<number>, n: number, classes: number, what: string): void {
  if (labels.length !== n) {
    throw new QuantlabError("SHAPE_MISMATCH", `${what}: ${labels.length} labels for a batch of ${n} images`);
  }
  let bad = 0, first = -1;
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (!(Number.isInteger(l) && l >= 0 && l < classes)) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (bad > 0) {
    throw new QuantlabError(
      "DATASET",
      `${what}: label ${labels[first]} at batch position ${first} is outside [0, ${classes}) (the model's ${classes} ` +
        `classes; ${bad} of ${n} labels out of range)`,
    );
  }
}

function argmaxCorrect(logits: Float32Array, classes: number, labels: ArrayLike<number>): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const o = i * classes;
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[o + c] > logits[o + best]) best = c;
    if (best === labels[i]) correct++;
  }
  return correct;
}

function crossEntropySum(logits: Float32Array, classes: number, labels: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const o = i * classes;
    let mx = -Infinity;
    for (let c = 0; c < classes; c++) if (logits[o + c] > mx) mx = logits[o + c];
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(logits[o + c] - mx);
    sum += mx + Math.log(s) - logits[o + labels[i]];
  }
  return sum;
}

/**
 * A model being trained: its gradient graph and session, parameters, BN running statistics and optimizer.
 *
 * @example
 * ```ts
 * import { Trainer } from "./train.ts";
 * import { sgd } from "./optim.ts";
 * import { labelledBatch } from "./train_data.ts";
 * import { imageDataset } from "../data/images.ts";
 * import { NetBuilder } from "../models/layers.ts";
 * const set = imageDataset({ name: "toy", pixels: Uint8Array.from({ length: 32 }, (_, i) => i % 3),
 *   labels: Uint8Array.from({ length: 8 }, (_, i) => i % 2), channels: 2, height: 2, width: 1, pixelMax: 2 });
 * const net = new NetBuilder({ channels: 2, height: 2, width: 1, seed: 0 });
 * const model = net.finish(net.linear("fc", net.flatten(net.batchNorm("bn", net.input, 2)), 4, 2), "toy");
 * const t = await Trainer.create({ model, optimizer: sgd({ lr: 0.1 }), sample: labelledBatch(set, [0, 1]),
 *   session: { backend: "web", threads: 1 } });
 * const r = await t.step(labelledBatch(set, [0, 1, 2, 3]));
 * if (r.size !== 4 || !(r.loss > 0) || t.runningStats.get("bn.running_var")![0] === 1) throw new Error("bad");
 * await t.release();
 * ```
 */
export class Trainer {
  /** The forward model trained (its initializers hold the initial values). */
  readonly forward: OnnxModel;
  /** The gradient graph. */
  readonly graph: GradientGraph;
  /** The session running it. */
  readonly session: GradientSession;
  /** Current parameters, updated in place by every step. */
  readonly params: Map<string, Float32Array>;
  /** BatchNorm running statistics (running mean / variance initializer name -> values), updated by steps. */
  readonly runningStats: Map<string, Float32Array>;
  /** The optimizer. */
  readonly optimizer: Optimizer;
  /** Image input name. */
  readonly input: string;
  /** Logits output name. */
  readonly logits: string;
  /** Optimizer steps taken. */
  steps = 0;
  /**
   * Where this trainer's time went so far (cumulative ms per phase); reset it by assigning zeros. Timing costs
   * two `performance.now()` calls per phase.
   */
  readonly timings: TrainerTimings = {
    gather: 0,
    run: 0,
    bnStats: 0,
    optimizer: 0,
    metrics: 0,
    progress: 0,
    evaluate: 0,
    checkpoint: 0,
    steps: 0,
  };
  readonly #sessionOptions: SessionOptions;

  private constructor(o: TrainerOptions, graph: GradientGraph, session: GradientSession) {
    this.forward = o.model;
    this.graph = graph;
    this.session = session;
    this.params = graph.initialParams();
    this.optimizer = o.optimizer;
    this.input = o.input ?? "input";
    this.logits = o.logits ?? "logits";
    this.#sessionOptions = o.session ?? {};
    const inits = initializerValues(o.model);
    this.runningStats = new Map();
    for (const s of graph.batchNorm) {
      for (const name of [s.runningMean, s.runningVar]) {
        const v = inits.get(name);
        if (!v) {
          throw new QuantlabError(
            "MALFORMED_MODEL",
            `${o.model.source}: BatchNorm "${s.node}" running statistic "${name}" is not a float initializer`,
          );
        }
        this.runningStats.set(name, v.slice());
      }
    }
  }

  /** Build the gradient graph (BN in training mode, cross-entropy on `labels`) and its session. */
  static async create(o: TrainerOptions): Promise<Trainer> {
    const input = o.input ?? "input", logits = o.logits ?? "logits";
    if (o.sample.x.shape[0] < 2) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `Trainer: the sample batch needs at least 2 examples, got ${o.sample.x.shape[0]}`,
      );
    }
    const graph = await buildGradientGraph(o.model, {
      loss: crossEntropyLoss(logits, "labels", { labelType: "int32" }),
      wrt: o.wrt ?? "parameters",
      batchNorm: "train",
      feeds: { [input]: o.sample.x, labels: o.sample.labels },
      keep: [logits],
      session: o.session,
    });
    return new Trainer(o, graph, await GradientSession.create(graph, o.session ?? {}));
  }

  /** The ONNX Runtime binding in use. */
  get backend(): "node" | "web" {
    return this.session.backend;
  }

  /** One step: forward + backward on `batch`, BN running-statistics update, optimizer update. */
  async step(batch: LabelledBatch): Promise<StepResult> {
    const n = batch.x.shape[0];
    if (n < 2) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `Trainer.step: training-mode BatchNorm needs a batch of >= 2, got ${n}`,
      );
    }
    // Labels outside the logits would wrap (-1), fail inside ONNX Runtime or make the loss NaN: check them before the
    // run against the captured logits width, and after it (before anything is updated) against the actual one.
    const what = `Trainer.step ${this.steps}`;
    const known = this.graph.model.shape(this.logits)?.[1] ?? this.forward.shape(this.logits)?.[1] ?? -1;
    if (known > 0) checkLabels(batch.labels.data, n, known, what);
    const tm = this.timings;
    const t0 = performance.now();
    const r = await this.session.run({ [this.input]: batch.x, labels: batch.labels }, this.params);
    const t1 = performance.now();
    tm.run += t1 - t0;
    checkLabels(batch.labels.data, n, r.outputs[this.logits].shape[1], what);
    if (!Number.isFinite(r.loss)) {
      throw new QuantlabError(
        "NON_FINITE",
        `Trainer.step ${this.steps}: the loss is ${r.loss} (learning rate ${this.optimizer.lr} too high?)`,
      );
    }
    for (const s of r.batchNorm) {
      const m = 1 - s.momentum;
      const rm = this.runningStats.get(s.runningMean)!, rv = this.runningStats.get(s.runningVar)!;
      const unbias = s.count > 1 ? s.count / (s.count - 1) : 1;
      for (let c = 0; c < rm.length; c++) {
        rm[c] = (1 - m) * rm[c] + m * s.mean[c];
        rv[c] = (1 - m) * rv[c] + m * s.var[c] * unbias;
      }
    }
    const t2 = performance.now();
    tm.bnStats += t2 - t1;
    this.optimizer.step(this.params, r.grads);
    this.steps++;
    const t3 = performance.now();
    tm.optimizer += t3 - t2;
    const logits = r.outputs[this.logits];
    const classes = logits.shape[1];
    const correct = argmaxCorrect(logits.data as Float32Array, classes, batch.labels.data);
    tm.metrics += performance.now() - t3;
    tm.steps++;
    return { loss: r.loss, correct, size: n };
  }

  /** The inference model with the current parameters and running statistics. */
  inferenceModel(): OnnxModel {
    return applyParams(this.forward, new Map([...this.params, ...this.runningStats]));
  }

  /** Loss and accuracy of the current inference model on `set`. */
  async evaluate(set: ImageDataset, batchSize = 500): Promise<Evaluation> {
    return await evaluateModel(this.inferenceModel(), set, {
      batchSize,
      input: this.input,
      logits: this.logits,
      session: this.#sessionOptions,
    });
  }

  /** Train for `epochs` (see {@link FitOptions}); returns the trained inference model and the history. */
  async fit(o: FitOptions): Promise<TrainResult> {
    const bs = o.batchSize ?? 64;
    if (!Number.isInteger(o.epochs) || o.epochs < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `fit: epochs must be a positive integer, got ${o.epochs}`);
    }
    if (!Number.isInteger(bs) || bs < 2) {
      throw new QuantlabError("INVALID_ARGUMENT", `fit: batchSize must be an integer >= 2, got ${bs}`);
    }
    const n = o.train.count;
    const full = Math.floor(n / bs), rest = n - full * bs;
    const stepsPerEpoch = full + (rest >= 2 && !o.dropLast ? 1 : 0);
    if (stepsPerEpoch === 0) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `fit: ${o.train.name} has too few examples (${n}) for batches of ${bs}`,
      );
    }
    const tables = normalizationTables(o.train);
    const makeBar = o.progress === undefined || o.progress === "none" ? SILENT : o.progress;
    const bar = makeBar(o.epochs * stepsPerEpoch, o.label ?? "training");
    const history: TrainingEpoch[] = [];
    const tm = this.timings;
    const t0 = performance.now();
    let model = this.forward;
    for (let e = 0; e < o.epochs; e++) {
      const te = performance.now();
      if (o.schedule?.unit === "epoch") applySchedule(this.optimizer, o.schedule, e);
      const order = epochOrder(n, o.seed, e);
      const gather = (s: number): LabelledBatch => {
        const tg = performance.now();
        const b = labelledBatch(o.train, order.subarray(s * bs, Math.min(n, (s + 1) * bs)), tables);
        tm.gather += performance.now() - tg;
        return b;
      };
      let lossSum = 0, correct = 0, seen = 0;
      let next = gather(0);
      for (let s = 0; s < stepsPerEpoch; s++) {
        const tp = performance.now();
        if (o.schedule?.unit === "step") applySchedule(this.optimizer, o.schedule, e * stepsPerEpoch + s);
        tm.progress += performance.now() - tp;
        const pending = this.step(next);
        // The next batch is gathered while ONNX Runtime runs this one (its run is asynchronous on both bindings).
        if (s + 1 < stepsPerEpoch) next = gather(s + 1);
        const r = await pending;
        lossSum += r.loss * r.size;
        correct += r.correct;
        seen += r.size;
        const tb = performance.now();
        await bar.tick(
          1,
          `epoch ${e + 1}/${o.epochs} loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen).toFixed(4)}`,
        );
        tm.progress += performance.now() - tb;
      }
      const trainSeconds = (performance.now() - te) / 1000;
      const tev = performance.now();
      model = this.inferenceModel();
      const ev = o.test
        ? await evaluateModel(model, o.test, {
          batchSize: o.evalBatchSize,
          input: this.input,
          logits: this.logits,
          session: this.#sessionOptions,
        })
        : undefined;
      tm.evaluate += performance.now() - tev;
      const lr = this.optimizer.lr;
      o.plateau?.step(ev ? ev.loss : lossSum / seen);
      const record: TrainingEpoch = {
        epoch: e + 1,
        trainLoss: lossSum / seen,
        trainAccuracy: correct / seen,
        ...(ev ? { testLoss: ev.loss, testAccuracy: ev.accuracy } : {}),
        lr,
        trainSeconds,
        seconds: (performance.now() - te) / 1000,
      };
      history.push(record);
      const tc = performance.now();
      if (o.checkpoint) {
        await saveCheckpoint(o.checkpoint, model, {
          ...o.metadata,
          epoch: record.epoch,
          record,
          backend: this.backend,
        });
      }
      await o.onEpoch?.(record, model);
      tm.checkpoint += performance.now() - tc;
      const acc = ev ? ` test acc ${ev.accuracy.toFixed(4)}` : "";
      await bar.set(bar.done, `epoch ${e + 1}/${o.epochs} loss ${record.trainLoss.toFixed(4)}${acc}`);
    }
    await bar.finish();
    return { model, history, seconds: (performance.now() - t0) / 1000, backend: this.backend };
  }

  /** Release the training session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Loss and accuracy of an inference model on a labelled set (a fresh, uncached session released afterwards).
 *
 * @example
 * ```ts
 * import { evaluateModel } from "./train.ts";
 * import { imageDataset } from "../data/images.ts";
 * import { NetBuilder } from "../models/layers.ts";
 * const net = new NetBuilder({ channels: 1, height: 1, width: 1, seed: 0 });
 * const model = net.finish(net.linear("fc", net.flatten(net.input), 1, 2), "toy");
 * const set = imageDataset({ name: "toy", pixels: new Uint8Array([255, 0, 128]), labels: new Uint8Array([0, 1, 0]),
 *   height: 1, width: 1, normalization: { mean: 0.5, std: 0.5 } });
 * const ev = await evaluateModel(model, set, { session: { backend: "web", threads: 1 } });
 * if (ev.count !== 3 || !(ev.accuracy >= 0 && ev.accuracy <= 1) || !(ev.loss > 0)) throw new Error("bad");
 * ```
 */
export async function evaluateModel(
  model: OnnxModel,
  set: ImageDataset,
  o: { batchSize?: number; input?: string; logits?: string; session?: SessionOptions } = {},
): Promise<Evaluation> {
  const bs = o.batchSize ?? 500, input = o.input ?? "input", out = o.logits ?? "logits";
  const s = await createSession(model, { ...o.session, cache: false });
  let loss = 0, correct = 0;
  try {
    for (const batch of batches(set, { batchSize: bs })) {
      const r = await s.run({ [input]: batch.x }, [out]);
      const logits = r[out] as Tensor<"float32">;
      const classes = logits.shape[1];
      checkLabels(batch.labels, batch.labels.length, classes, `evaluate on ${set.name}`);
      loss += crossEntropySum(logits.data, classes, batch.labels);
      correct += argmaxCorrect(logits.data, classes, batch.labels);
    }
  } finally {
    await s.release();
  }
  return { loss: loss / set.count, accuracy: correct / set.count, count: set.count };
}

/**
 * Create a {@link Trainer} for `model` and fit it: the one-call form.
 *
 * @example
 * ```ts
 * import { train } from "./train.ts";
 * import { sgd } from "./optim.ts";
 * import { imageDataset } from "../data/images.ts";
 * import { NetBuilder } from "../models/layers.ts";
 * import { Prng } from "../tensor/prng.ts";
 * // Two separable classes of 2x2 images: bright top row or bright bottom row (pixels 0..255, noisy).
 * const rng = new Prng(1), n = 64, x = new Uint8Array(n * 4), y = new Uint8Array(n);
 * for (let i = 0; i < n; i++) {
 *   y[i] = i % 2;
 *   for (let j = 0; j < 4; j++) {
 *     const v = ((j < 2) === (y[i] === 0) ? 1 : 0) + 0.3 * rng.nextNormal();
 *     x[i * 4 + j] = Math.max(0, Math.min(255, Math.round(127 + 100 * v)));
 *   }
 * }
 * const set = imageDataset({ name: "rows", pixels: x, labels: y, height: 2, width: 2,
 *   normalization: { mean: 0.7, std: 0.25 } });
 * const net = new NetBuilder({ channels: 1, height: 2, width: 2, seed: 0 });
 * const h = net.relu(net.batchNorm("bn", net.conv("conv", net.input, 1, 4, { kernel: 1, pad: 0 })));
 * const model = net.finish(net.linear("fc", net.flatten(h), 16, 2), "toy");
 * const r = await train(model, { train: set, test: set, epochs: 3, batchSize: 16, seed: 0, progress: "none" },
 *   { optimizer: sgd({ lr: 0.1, momentum: 0.9 }), session: { backend: "web", threads: 1 } });
 * if (r.history[2].testAccuracy! < 0.9) throw new Error(JSON.stringify(r.history));
 * ```
 */
export async function train(
  model: OnnxModel,
  fit: FitOptions,
  options: Omit<TrainerOptions, "model" | "sample">,
): Promise<TrainResult> {
  const first = epochOrder(fit.train.count, fit.seed, 0).subarray(0, Math.min(fit.batchSize ?? 64, fit.train.count));
  const trainer = await Trainer.create({ ...options, model, sample: labelledBatch(fit.train, first) });
  try {
    return await trainer.fit(fit);
  } finally {
    await trainer.release();
  }
}
