/**
 * Quantization-aware training (QAT) over the model-level core: a {@link PtqPipeline} makes the plan and its
 * starting parameters, `materializeTrainable` writes the fake-quantized training graph, lib/grad differentiates
 * it, and a short loop here (GradientSession + lib/grad's optimizers and schedules, seeded epoch orders)
 * trains it. The trained state is written back as a PTQ state whose pinned weight fits and activation parameters
 * are the trained ones, so export (QDQ, QOperator) is the core's own materialization.
 *
 * ```ts ignore
 * const run = await qat(model)
 *   .weights(quantizer().int(4).symmetric().perChannel())
 *   .activations(quantizer().uint(4).asymmetric())
 *   .firstLast(8)
 *   .calibrateOn(train, { count: 512 })
 *   .fakeQuant({ weights: "lsq", activations: "lsq" })
 *   .optimizer({ kind: "adam", lr: 1e-3 })
 *   .epochs(3)
 *   .train(train, { test });
 * await run.save("qoperator", "model.w4a4.onnx");
 * ```
 *
 * Fake quantizers (lib/ptq/materialize.ts, lib/grad/markers.ts):
 * - `ste`: `QuantizeLinear -> DequantizeLinear` at the PTQ scales, straight-through with the clip mask
 *   (PyTorch's `fake_quantize_per_{tensor,channel}_affine` rule). Weights are clamped to their grid after every
 *   step (an int8 QuantizeLinear alone saturates only at +-128 steps).
 * - `lsq` (Esser et al. 2020): learned step sizes, gradient scale `1 / sqrt(N * Qp)` with N the elements per
 *   channel for per-channel weights (per tensor: the whole weight) and the elements per sample for activations
 *   (from captured shapes); steps start at the PTQ scales (`from("ptq")`) or LSQ's `2 mean|v| / sqrt(Qp)`
 *   (`from("float")`, weights).
 * - `pact` (Choi et al. 2018): activations `clip(x, 0, alpha)` on `2^b - 1` levels with a learned alpha, an L2
 *   decay `lambda * alpha` added to its gradient, alpha starting at 8 (Distiller's `PACTQuantizer`
 *   `act_clip_init_val`, the reference implementation PAPERS.md cites) or at the calibrated maximum.
 * - `dorefa` (weights; Zhou et al. 2016): `s0 (2 quantize_k(tanh(w) / (2 max|tanh w|) + 1/2) - 1)` with a fixed
 *   per-tensor `s0` (BN is folded here, the paper's networks renormalise instead); see lib/qat/dorefa.ts.
 * Activations a learned quantizer cannot represent (signed data under PACT, a zero point inside the grid under
 * LSQ, e.g. logits) stay `ste` at their calibrated parameters.
 *
 * How torch.ao's `_LearnableFakeQuantize` (torch/ao/quantization/_learnable_fake_quantize.py) differs from the
 * LSQ here: (1) its scale starts from its observer's static estimate (min/max), not `2 mean|v| / sqrt(Qp)`;
 * (2) its zero point is learned too (affine LSQ+-like; ours is pinned at 0 / the grid's end); (3) with
 * `use_grad_scaling` its factor is `1 / sqrt(X.numel() * quant_max)` over the whole tensor: the batch is counted
 * for activations (LSQ counts the elements per sample) and the whole weight for per-channel weights (we count a
 * channel's elements); (4) it clamps the scale to float32 eps before every forward (we clamp after each step).
 * The step-size gradient itself (`round(v/s) - v/s` inside, `Qn` / `Qp` outside, times g) is the same, except that
 * torch.ao rounds before clipping, so for `v/s` in `(Qp, Qp + 0.5)` it gives `v` a gradient and `s`
 * `round(v/s) - v/s` where LSQ's code clips first. The gradient tests (tests/qat/gradients_test.ts, fixture
 * tests/fixtures/make_qat_fixtures.py) compare with LSQ's code written in PyTorch: per-channel weights from the PTQ
 * scales, and per-tensor weights from LSQ's own init (W4A8), each with per-tensor activation steps.
 *
 * BatchNorm, both ways users meet it: folded into the conv (`batchNorm("fold")`, default), with batch statistics
 * for epochs `0 .. freezeEpoch - 1` (`W gamma / sqrt(var_B + eps)` fake-quantized, bias from the batch mean, running
 * statistics updated as PyTorch's BN does; Jacob et al. 2018, lib/qat/bn_fold.ts, which also says where torch.ao's
 * `ConvBn` QAT modules differ) and with the running statistics from `freezeEpoch` on (default 0: frozen from the
 * start, training the folded weights that are deployed); or kept as an inference-mode BatchNormalization with frozen
 * running statistics and learned scale and shift (`batchNorm("keep")`; export then keeps it as a float op).
 * Evaluation and export always use the running statistics.
 *
 * Observers: activation ranges and `ste` weight scales come from the PTQ calibration; `freezeObservers(k)`
 * re-calibrates them on the current weights at the start of epochs 1..k-1 (once per epoch, not per step as
 * torch.ao's moving-average observers do) and keeps them fixed from epoch k.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { batches, type ImageDataset } from "../data/batching.ts";
import { asReader } from "../data/reader.ts";
import { type CalibrationSource, PtqPipeline } from "../ptq/pipeline.ts";
import { ptq } from "../ptq/pipeline.ts";
import type { PtqPass, PtqState } from "../ptq/pass.ts";
import type { NodeMatcher, NodeOverride, Placement } from "../ptq/policy.ts";
import { calibratePlan } from "../ptq/calibrate_pass.ts";
import { materializeTrainable, type TrainableModel } from "../ptq/materialize.ts";
import { applyParams, buildGradientGraph, type GradientGraph } from "../grad/compiler.ts";
import { distillationLoss } from "../grad/distill_loss.ts";
import { crossEntropyLoss, type LossTerm } from "../grad/losses.ts";
import { adam, adamw, type Optimizer, sgd } from "../grad/optim.ts";
import { applySchedule, type Schedule } from "../grad/schedule.ts";
import { GradientSession } from "../grad/session.ts";
import { evaluateModel } from "../grad/train.ts";
import { epochOrder, labelledBatch } from "../grad/train_data.ts";
import { saveCheckpoint } from "../grad/checkpoint.ts";
import { normalizationTables } from "../data/images.ts";
import { captureShapes } from "../onnx/capture.ts";
import { indexGraph } from "../onnx/graph.ts";
import { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import type { QuantizerBuilder } from "../quant/quantizer.ts";
import type { WeightQuantizer } from "../quant/weight_quantizer.ts";
import { Tensor } from "../tensor/tensor.ts";
import { clampToGrid } from "../zeroshot/level2.ts";
import { quantizeBiases } from "./bias_quant.ts";
import { type DorefaWeight, dorefaWeights } from "./dorefa.ts";
import { type BatchFold, foldRunning, foldWithBatchStatistics, updateRunningStatistics } from "./bn_fold.ts";
import { floatPart, QatResult } from "./result.ts";

/** Weight fake quantizers QAT trains through. */
export type QatWeights = "ste" | "lsq" | "dorefa";
/** Activation fake quantizers QAT trains through. */
export type QatActivations = "ste" | "lsq" | "pact";

/** An optimizer recipe (JSON): lib/grad's `sgd`, `adam` or `adamw` with their options. */
export type OptimizerSpec =
  | {
    readonly kind: "sgd";
    readonly lr: number;
    readonly momentum?: number;
    readonly nesterov?: boolean;
    readonly weightDecay?: number;
  }
  | { readonly kind: "adam" | "adamw"; readonly lr: number; readonly weightDecay?: number };

/** Distillation settings: a float teacher and the loss weights (see lib/grad/distill_loss.ts). */
export interface DistillSpec {
  /** The float teacher (any model with the student's input and a logits output). */
  readonly teacher: OnnxModel;
  /** Weight of the cross-entropy with the labels (default 0.5). */
  readonly alpha: number;
  /** Weight of `T^2 * KL(teacher_T || student_T)` (default 0.5). */
  readonly beta: number;
  /** Temperature (default 4). */
  readonly temperature: number;
}

/** One epoch of a QAT run. */
export interface QatEpoch {
  /** Epoch index (0-based). */
  readonly epoch: number;
  /** Mean training loss over the epoch's batches. */
  readonly loss: number;
  /** Accuracy of the training graph's forward (fake-quantized, trained parameters) on the test set, if given. */
  readonly testAccuracy?: number;
  /** Learning rate at the epoch's last step. */
  readonly lr: number;
  /** Wall time of the epoch (training and evaluation), seconds. */
  readonly seconds: number;
}

/** Everything a {@link QatPipeline} holds besides its PTQ pipeline. */
export interface QatRecipe {
  /** Weight fake quantizer. */
  readonly weights: QatWeights;
  /** Activation fake quantizer. */
  readonly activations: QatActivations;
  /** Start from the PTQ pipeline's final state (`"ptq"`) or from the float weights with calibration only. */
  readonly start: "ptq" | "float";
  /** BatchNorm handling (see the module doc). */
  readonly batchNorm: "fold" | "keep";
  /** With `batchNorm: "fold"`: first epoch with frozen (running) BN statistics; before it, batch statistics. */
  readonly bnFreeze: number;
  /** Epochs. */
  readonly epochs: number;
  /** Training batch size. */
  readonly batchSize: number;
  /** Seed of the epoch orders. */
  readonly seed: number;
  /** Optimizer. */
  readonly optimizer: OptimizerSpec;
  /** Learning-rate schedule (its `unit` says whether it advances per epoch or per step). */
  readonly schedule?: Schedule;
  /** First epoch with fixed observers (0: calibrated once, never updated). */
  readonly freezeObservers: number;
  /** PACT's initial alpha: a number or the calibrated maximum. */
  readonly pactInit: number | "calibrated";
  /** PACT's L2 decay on alpha. */
  readonly pactDecay: number;
  /** Knowledge distillation from a float teacher. */
  readonly distill?: DistillSpec;
  /** Checkpoints of the training graph every `every` epochs to `path` (epoch number substituted for `{epoch}`). */
  readonly checkpoint?: { readonly path: string; readonly every: number };
  /** Called after every epoch. */
  readonly onEpoch?: (e: QatEpoch) => void;
}

const DEFAULTS: QatRecipe = {
  weights: "ste",
  activations: "ste",
  start: "ptq",
  batchNorm: "fold",
  bnFreeze: 0,
  epochs: 1,
  batchSize: 32,
  seed: 0,
  optimizer: { kind: "adam", lr: 1e-4 },
  freezeObservers: 0,
  pactInit: 8,
  pactDecay: 2e-4,
};

function positiveInt(what: string, n: number, min = 1): void {
  if (!Number.isInteger(n) || n < min) {
    throw new QuantlabError("INVALID_ARGUMENT", `qat ${what} must be an integer >= ${min}, got ${n}`);
  }
}

function makeOptimizer(s: OptimizerSpec): Optimizer {
  if (s.kind === "sgd") {
    return sgd({ lr: s.lr, momentum: s.momentum, nesterov: s.nesterov, weightDecay: s.weightDecay });
  }
  if (s.kind === "adam") return adam({ lr: s.lr, weightDecay: s.weightDecay });
  if (s.kind === "adamw") return adamw({ lr: s.lr, weightDecay: s.weightDecay });
  throw new QuantlabError("INVALID_ARGUMENT", `qat optimizer kind must be "sgd", "adam" or "adamw"`);
}

/**
 * An immutable QAT recipe: a PTQ pipeline (policy, passes, calibration) plus the training settings. Policy
 * methods (`weights`, `activations`, `placement`, `input`, `exclude`, `override`, `firstLast`, `use`,
 * `calibrateOn`, `session`) delegate to the PTQ pipeline; `train()` runs it.
 *
 * @example
 * ```ts
 * import { qat } from "./qat.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const q = qat(new OnnxModel(emptyModel(13))).weights(quantizer().int(4).perChannel()).fakeQuant({ weights: "lsq" })
 *   .epochs(3);
 * if (!q.toString().includes("int4") || !q.toString().includes("weights=lsq")) throw new Error(q.toString());
 * ```
 */
export class QatPipeline {
  /** Use {@link qat}. */
  constructor(readonly ptq: PtqPipeline, readonly recipe: QatRecipe) {}

  #ptq(p: PtqPipeline): QatPipeline {
    return new QatPipeline(p, this.recipe);
  }

  #with(patch: Partial<QatRecipe>): QatPipeline {
    return new QatPipeline(this.ptq, { ...this.recipe, ...patch });
  }

  /** Default weight quantizer (uniform affine; `lsq` needs it symmetric). */
  weights(q: WeightQuantizer): QatPipeline {
    return this.#ptq(this.ptq.weights(q));
  }

  /** Default activation quantizer, or `false` for weights-only QAT. */
  activations(q: QuantizerBuilder | false): QatPipeline {
    return this.#ptq(this.ptq.activations(q));
  }

  /** Activation placement (see `PtqPipeline.placement`). */
  placement(p: Placement): QatPipeline {
    return this.#ptq(this.ptq.placement(p));
  }

  /** Quantize the network input (default true), keep it float, or use this quantizer. */
  input(q: boolean | QuantizerBuilder): QatPipeline {
    return this.#ptq(this.ptq.input(q));
  }

  /** Keep these nodes in float. */
  exclude(...nodes: NodeMatcher[]): QatPipeline {
    return this.#ptq(this.ptq.exclude(...nodes));
  }

  /** Per-node settings. */
  override(match: NodeMatcher, set: NodeOverride): QatPipeline {
    return this.#ptq(this.ptq.override(match, set));
  }

  /** First and last weight layers at `bits` (default 8), as the QAT papers do. */
  firstLast(bits = 8): QatPipeline {
    return this.#ptq(this.ptq.firstLast(bits));
  }

  /** PTQ passes run before training (e.g. equalize, bias correction; only with `from("ptq")`). */
  use(...passes: PtqPass[]): QatPipeline {
    return this.#ptq(this.ptq.use(...passes));
  }

  /** Calibration data for the starting activation ranges. */
  calibrateOn(data: CalibrationSource, options: { count?: number } = {}): QatPipeline {
    return this.#ptq(this.ptq.calibrateOn(data, options));
  }

  /** ORT binding and threads (training, evaluation, calibration). */
  session(options: SessionOptions): QatPipeline {
    return this.#ptq(this.ptq.session(options));
  }

  /** Fake quantizers to train through (defaults `ste` / `ste`). */
  fakeQuant(kinds: { weights?: QatWeights; activations?: QatActivations }): QatPipeline {
    const w = kinds.weights ?? this.recipe.weights, a = kinds.activations ?? this.recipe.activations;
    if (!["ste", "lsq", "dorefa"].includes(w)) {
      throw new QuantlabError("INVALID_ARGUMENT", `qat weights must be "ste", "lsq" or "dorefa", got "${w}"`);
    }
    if (!["ste", "lsq", "pact"].includes(a)) {
      throw new QuantlabError("INVALID_ARGUMENT", `qat activations must be "ste", "lsq" or "pact", got "${a}"`);
    }
    return this.#with({ weights: w, activations: a });
  }

  /** Start from the PTQ result (default) or from the float weights (calibration only, LSQ's own step init). */
  from(start: "ptq" | "float"): QatPipeline {
    if (start !== "ptq" && start !== "float") {
      throw new QuantlabError("INVALID_ARGUMENT", `qat from() takes "ptq" or "float", got "${start}"`);
    }
    return this.#with({ start });
  }

  /**
   * BatchNorm: folded into the conv (default), with batch statistics in epochs `0 .. freezeEpoch - 1` and the
   * running statistics from epoch `freezeEpoch` (default 0: frozen from the start; Jacob et al. 2018, see
   * lib/qat/bn_fold.ts), or kept in inference mode with frozen running statistics (see the module doc).
   */
  batchNorm(mode: "fold" | "keep", options: { freezeEpoch?: number } = {}): QatPipeline {
    if (mode !== "fold" && mode !== "keep") {
      throw new QuantlabError("INVALID_ARGUMENT", `qat batchNorm() takes "fold" or "keep", got "${mode}"`);
    }
    const bnFreeze = options.freezeEpoch ?? 0;
    positiveInt("batchNorm freezeEpoch", bnFreeze, 0);
    if (mode === "keep" && bnFreeze > 0) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `qat batchNorm("keep") keeps frozen statistics; freezeEpoch needs "fold"`,
      );
    }
    return new QatPipeline(this.ptq.foldBatchNorm(mode === "fold"), { ...this.recipe, batchNorm: mode, bnFreeze });
  }

  /** Number of epochs (default 1). */
  epochs(n: number): QatPipeline {
    positiveInt("epochs", n);
    return this.#with({ epochs: n });
  }

  /** Training batch size (default 32; at least 2). */
  batchSize(n: number): QatPipeline {
    positiveInt("batchSize", n, 2);
    return this.#with({ batchSize: n });
  }

  /** Seed of the epoch orders (default 0). */
  seed(n: number): QatPipeline {
    positiveInt("seed", n, 0);
    return this.#with({ seed: n });
  }

  /** Optimizer recipe (default Adam, lr 1e-4). */
  optimizer(spec: OptimizerSpec): QatPipeline {
    makeOptimizer(spec); // validates
    return this.#with({ optimizer: spec });
  }

  /** Learning-rate schedule from lib/grad (e.g. `cosineLr({ lr, tMax, unit: "step" })`). */
  schedule(s: Schedule): QatPipeline {
    if (!s || typeof s.lr !== "function") throw new QuantlabError("INVALID_ARGUMENT", "schedule() expects a Schedule");
    return this.#with({ schedule: s });
  }

  /** Re-calibrate observers at the start of epochs 1..k-1 and fix them from epoch k (default 0: never). */
  freezeObservers(k: number): QatPipeline {
    positiveInt("freezeObservers", k, 0);
    return this.#with({ freezeObservers: k });
  }

  /** PACT settings: initial alpha (default 8, or `"calibrated"`) and L2 decay on alpha (default 2e-4). */
  pact(options: { init?: number | "calibrated"; decay?: number }): QatPipeline {
    const init = options.init ?? this.recipe.pactInit, decay = options.decay ?? this.recipe.pactDecay;
    if (init !== "calibrated" && !(init > 0 && Number.isFinite(init))) {
      throw new QuantlabError("INVALID_ARGUMENT", `PACT init must be > 0 or "calibrated", got ${init}`);
    }
    if (!(decay >= 0 && Number.isFinite(decay))) {
      throw new QuantlabError("INVALID_ARGUMENT", `PACT decay must be >= 0, got ${decay}`);
    }
    return this.#with({ pactInit: init, pactDecay: decay });
  }

  /** Distil from a float teacher: `alpha * CE + beta * T^2 * KL(teacher_T || student_T)`. */
  distill(teacher: OnnxModel, options: { alpha?: number; beta?: number; temperature?: number } = {}): QatPipeline {
    if (!(teacher instanceof OnnxModel)) throw new QuantlabError("INVALID_ARGUMENT", "distill() expects an OnnxModel");
    const spec = {
      teacher,
      alpha: options.alpha ?? 0.5,
      beta: options.beta ?? 0.5,
      temperature: options.temperature ?? 4,
    };
    distillationLoss("logits", { ...spec, teacher: "t" }); // validates
    return this.#with({ distill: spec });
  }

  /** Write the training graph (fake-quantized, trained parameters) every `every` epochs to `path`. */
  checkpoint(path: string, options: { every?: number } = {}): QatPipeline {
    const every = options.every ?? 1;
    positiveInt("checkpoint every", every);
    return this.#with({ checkpoint: { path, every } });
  }

  /** Called after every epoch with its record. */
  onEpoch(fn: (e: QatEpoch) => void): QatPipeline {
    return this.#with({ onEpoch: fn });
  }

  /** Readable description of the recipe. */
  toString(): string {
    const r = this.recipe;
    const parts = [
      `weights=${r.weights}`,
      `activations=${r.activations}`,
      `from=${r.start}`,
      `bn=${r.batchNorm}${r.bnFreeze ? `(batch statistics until epoch ${r.bnFreeze})` : ""}`,
      `epochs=${r.epochs}`,
      `batch=${r.batchSize}`,
      `seed=${r.seed}`,
      `optimizer=${JSON.stringify(r.optimizer)}`,
    ];
    if (r.schedule) parts.push(`schedule=${r.schedule.name}`);
    if (r.freezeObservers) parts.push(`freezeObservers=${r.freezeObservers}`);
    if (r.activations === "pact") parts.push(`pact(init=${r.pactInit}, decay=${r.pactDecay})`);
    if (r.distill) {
      const d = r.distill;
      parts.push(`distill(${d.teacher.source}, alpha=${d.alpha}, beta=${d.beta}, T=${d.temperature})`);
    }
    return `qat ${parts.join(" ")} over ${this.ptq.toString()}`;
  }

  /** Calibrate (or take the PTQ result) and train on `trainSet`; evaluates on `options.test` after each epoch. */
  async train(trainSet: ImageDataset, options: { test?: ImageDataset } = {}): Promise<QatResult> {
    return await trainQat(this, trainSet, options.test);
  }
}

/** The PTQ pipeline QAT starts from (user passes dropped when starting from float). */
function startPipeline(q: QatPipeline): PtqPipeline {
  if (q.recipe.start === "ptq") return q.ptq;
  const c = q.ptq.config;
  return new PtqPipeline({ ...c, passes: c.passes.filter((p) => p.stage === "calibrate") });
}

interface Materialized {
  trainable: TrainableModel;
  gs: GradientSession;
  learnable: string[];
  folds: readonly BatchFold[];
  foldSpatial: readonly number[];
  dorefa: ReadonlyMap<string, DorefaWeight>;
}

async function trainQat(q: QatPipeline, trainSet: ImageDataset, testSet: ImageDataset | undefined): Promise<QatResult> {
  const t0 = performance.now();
  const r = q.recipe;
  const session = q.ptq.config.session;
  const pipeline = startPipeline(q);
  let state = await pipeline.state();
  const model = state.model;
  const inputName = [...indexGraph(model.graph).inputs][0];
  const logits = model.graph.output[0].name;
  if (trainSet.count < 2) throw new QuantlabError("EMPTY_TENSOR", "qat: the training set needs at least 2 images");
  const tables = normalizationTables(trainSet);
  const bs = Math.min(r.batchSize, trainSet.count);
  const sample = labelledBatch(trainSet, epochOrder(trainSet.count, r.seed, 0).subarray(0, Math.max(2, bs)), tables);

  // Teacher logits for the whole training set, once (the teacher is fixed and deterministic).
  let teacher: Float32Array | undefined, classes = 0;
  if (r.distill) {
    const ts = await createSession(r.distill.teacher, { ...session, cache: false });
    const tOut = ts.outputNames[0];
    const parts: Float32Array[] = [];
    try {
      for (const b of batches(trainSet, { batchSize: 256 })) {
        const o = (await ts.run({ [ts.inputNames[0]]: b.x }))[tOut];
        classes = o.shape[1];
        parts.push(o.data as Float32Array);
      }
    } finally {
      await ts.release();
    }
    teacher = new Float32Array(trainSet.count * classes);
    let off = 0;
    for (const p of parts) {
      teacher.set(p, off);
      off += p.length;
    }
  }
  const loss: LossTerm | LossTerm[] = r.distill
    ? distillationLoss(logits, { ...r.distill, teacher: "teacher_logits", labels: "labels" })
    : crossEntropyLoss(logits, "labels");
  const feedsOf = (x: Tensor<"float32">, labels: Tensor<"int32">, idx: ArrayLike<number>) => {
    const f: Record<string, Tensor> = { [inputName]: x, labels };
    if (teacher) {
      const t = new Float32Array(idx.length * classes);
      for (let k = 0; k < idx.length; k++) {
        t.set(teacher.subarray(idx[k] * classes, (idx[k] + 1) * classes), k * classes);
      }
      f.teacher_logits = new Tensor(t, [idx.length, classes]);
    }
    return f;
  };

  let params = new Map<string, Float32Array>();
  const materialize = async (
    s: PtqState,
    carry: Map<string, Float32Array>,
    batchStatistics: boolean,
    running: readonly BatchFold[] = [],
  ): Promise<Materialized> => {
    const g = await buildQatGraph(s, r, {
      loss,
      feeds: feedsOf(sample.x, sample.labels, epochOrder(trainSet.count, r.seed, 0).subarray(0, sample.x.shape[0])),
      session,
      fresh: carry.size === 0,
      batchStatistics,
    });
    const gs = await GradientSession.create(g.graph, session);
    for (const [k, v] of carry) if (g.params.has(k) && g.params.get(k)!.length === v.length) g.params.set(k, v);
    for (const f of g.folds) {
      const old = running.find((o) => o.weight === f.weight);
      if (old) f.runningMean.set(old.runningMean), f.runningVar.set(old.runningVar);
    }
    params = g.params;
    return {
      trainable: g.trainable,
      gs,
      learnable: g.learnable,
      folds: g.folds,
      foldSpatial: g.foldSpatial,
      dorefa: g.dorefa,
    };
  };
  const bnParams = batchNormParams(model, r);
  /** The parameters of the export form: batch-statistics folds folded with their running statistics. */
  const exportParams = (): Map<string, Float32Array> => {
    if (!m.folds.length) return params;
    const drop = new Set(m.folds.flatMap((f) => [f.raw, f.gamma, f.beta]));
    return new Map([...[...params].filter(([k]) => !drop.has(k)), ...foldRunning(m.folds, params)]);
  };

  let m = await materialize(state, new Map(), r.batchNorm === "fold" && r.bnFreeze > 0);
  const opt = makeOptimizer(r.optimizer);
  const pactParams = () =>
    [...m.trainable.quantizerParams.values()].filter((p) => p.kind === "pact").map((p) => p.param);
  const stepParams = () =>
    [...m.trainable.quantizerParams.values()].filter((p) => p.kind === "lsq").map((p) => p.param);
  const history: QatEpoch[] = [];
  const dorefaOut = new Map<string, Float32Array>();
  const steps = Math.ceil(trainSet.count / bs);
  let step = 0;
  const reader = r.freezeObservers > 1 && q.ptq.config.calibration
    ? asReader(q.ptq.config.calibration, model, { batchSize: q.ptq.config.batchSize })
    : undefined;
  try {
    for (let epoch = 0; epoch < r.epochs; epoch++) {
      const te = performance.now();
      const freezeBn = m.folds.length > 0 && epoch >= r.bnFreeze;
      if ((epoch > 0 && epoch < r.freezeObservers && reader) || freezeBn) {
        const folded = exportParams();
        if (epoch > 0 && epoch < r.freezeObservers && reader) {
          // Observers: re-calibrate activation ranges and refit weight scales on the current weights.
          const floatNow = applyParams(model, floatPart(folded, model));
          const activationParams = await calibratePlan(floatNow, state.plan!, reader, {
            count: q.ptq.config.calibrationCount ?? 1024,
            session,
          });
          state = { ...state, model: floatNow, activationParams, weightFits: new Map(), weightValues: new Map() };
        }
        // BN frozen from this epoch: train the running-statistics fold (the export form) from here on.
        await m.gs.release();
        m = await materialize(state, freezeBn ? folded : params, !freezeBn && m.folds.length > 0, m.folds);
      }
      if (r.schedule?.unit === "epoch") applySchedule(opt, r.schedule, epoch);
      const order = epochOrder(trainSet.count, r.seed, epoch);
      let sum = 0;
      for (let b = 0; b < steps; b++) {
        const idx = order.subarray(b * bs, Math.min(trainSet.count, (b + 1) * bs));
        if (idx.length < 2) continue;
        const batch = labelledBatch(trainSet, idx, tables);
        if (r.schedule?.unit === "step") applySchedule(opt, r.schedule, step);
        const out = await m.gs.run(feedsOf(batch.x, batch.labels, idx), params);
        for (const a of pactParams()) out.grads.get(a)![0] += r.pactDecay * params.get(a)![0];
        opt.step(params, out.grads);
        if (m.folds.length) updateRunningStatistics(m.folds, out.outputs, (i) => idx.length * m.foldSpatial[i]);
        for (const [w, g] of m.trainable.weights) {
          const v = params.get(w); // absent while a batch-statistics fold trains the unfolded weight
          if (v) clampToGrid(v, g.dims, g.axis, g.params);
        }
        for (const s of [...stepParams(), ...pactParams()]) {
          const v = params.get(s)!;
          for (let i = 0; i < v.length; i++) if (!(v[i] >= 1e-8)) v[i] = 1e-8;
        }
        sum += out.loss;
        step++;
      }
      for (const [k, v] of params) {
        if (!v.every(Number.isFinite)) throw new QuantlabError("NON_FINITE", `qat: parameter "${k}" diverged`);
      }
      const rec: QatEpoch = {
        epoch,
        loss: sum / steps,
        lr: opt.lr,
        testAccuracy: testSet
          ? (await evaluateModel(applyParams(m.trainable.model, exportParams()), testSet, {
            input: inputName,
            logits,
            session,
          })).accuracy
          : undefined,
        seconds: (performance.now() - te) / 1000,
      };
      history.push(rec);
      r.onEpoch?.(rec);
      if (r.checkpoint && ((epoch + 1) % r.checkpoint.every === 0 || epoch === r.epochs - 1)) {
        const path = r.checkpoint.path.replaceAll("{epoch}", String(epoch + 1));
        await saveCheckpoint(path, applyParams(m.trainable.model, exportParams()), {
          epoch: epoch + 1,
          recipe: q.toString(),
          testAccuracy: rec.testAccuracy ?? null,
        }, { sources: [q.ptq.config.model.origin] });
      }
    }
    if (m.dorefa.size) {
      // The exported DoReFa weights are the values the training graph computed (ONNX Runtime's tanh).
      const probe = applyParams(m.trainable.model, exportParams()).clone();
      for (const d of m.dorefa.values()) {
        probe.graph.output.push({ name: d.output, type: { tensorType: { elemType: 1 } } });
      }
      const ps = await createSession(probe, { ...session, cache: false });
      try {
        const outs = await ps.run({ [inputName]: sample.x }, [...m.dorefa.values()].map((d) => d.output));
        for (const [w, d] of m.dorefa) dorefaOut.set(w, outs[d.output].data as Float32Array);
      } finally {
        await ps.release();
      }
    }
  } finally {
    await m.gs.release();
  }
  return QatResult.create({
    pipeline: q,
    state,
    trainable: m.trainable,
    params: exportParams(),
    history,
    inputName,
    logits,
    bnParams,
    dorefa: m.dorefa,
    dorefaValues: dorefaOut,
    seconds: (performance.now() - t0) / 1000,
  });
}

function batchNormParams(model: OnnxModel, r: Pick<QatRecipe, "batchNorm">): string[] {
  return r.batchNorm === "keep"
    ? model.graph.node.filter((n) => n.opType === "BatchNormalization").flatMap((n) => [n.input[1], n.input[2]])
    : [];
}

/** The training graph of a QAT recipe over a state (see {@link buildQatGraph}). */
export interface QatGraph {
  /** The trainable fake-quantized model (biases fake-quantized to their export grid). */
  readonly trainable: TrainableModel;
  /** Its gradient graph. */
  readonly graph: GradientGraph;
  /** Every differentiated tensor (trainable.learnable plus BN scale/shift in `keep` mode). */
  readonly learnable: string[];
  /** Initial parameter values (PACT alphas set from the recipe). */
  readonly params: Map<string, Float32Array>;
  /** Conv + BN pairs trained with batch statistics (`batchStatistics`; empty otherwise). */
  readonly folds: readonly BatchFold[];
  /** Per fold, the spatial size of the conv output (batch statistics count batch size times this). */
  readonly foldSpatial: readonly number[];
  /** DoReFa weights (`weights: "dorefa"`) by name, with their export grids. */
  readonly dorefa: ReadonlyMap<string, DorefaWeight>;
}

/**
 * The training graph QAT runs for a PTQ state: `materializeTrainable` with the recipe's fake quantizers (LSQ's
 * activation gradient scale from shapes captured on `feeds`), biases fake-quantized to their int32 export grid,
 * differentiated for `loss` with BatchNorm (if kept) in inference mode. The gradient tests compare this graph's
 * gradients with PyTorch's.
 *
 * @example
 * ```ts ignore
 * const g = await buildQatGraph(state, { ...qat(model).recipe, weights: "lsq" }, { loss, feeds: { input: x, labels } });
 * const r = await (await GradientSession.create(g.graph)).run({ input: x, labels }, g.params);
 * ```
 */
export async function buildQatGraph(
  state: PtqState,
  r: Pick<QatRecipe, "weights" | "activations" | "start" | "batchNorm" | "pactInit">,
  o: {
    loss: LossTerm | LossTerm[];
    feeds: Record<string, Tensor>;
    session?: SessionOptions;
    fresh?: boolean;
    /** Train folded BatchNorms with batch statistics (lib/qat/bn_fold.ts; needs `batchNorm: "fold"`). */
    batchStatistics?: boolean;
    /** Forward values to output too (e.g. the logits). */
    keep?: readonly string[];
  },
): Promise<QatGraph> {
  const model = state.model;
  const inputName = [...indexGraph(model.graph).inputs][0];
  let activationNumel: Map<string, number> | undefined;
  const batchStats = o.batchStatistics === true && r.batchNorm === "fold";
  let probe: OnnxModel | undefined;
  if (r.activations === "lsq" || batchStats) {
    probe = model.clone();
    await captureShapes(probe, { [inputName]: o.feeds[inputName] }, o.session);
  }
  if (r.activations === "lsq") {
    // Elements per sample of each activation (LSQ's gradient scale).
    activationNumel = new Map();
    for (const e of state.plan!.activations) {
      const s = probe!.capturedShapes.get(e.tensor) ?? o.feeds[e.tensor]?.shape;
      if (s) activationNumel.set(e.tensor, s.slice(1).reduce((a, d) => a * d, 1));
    }
  }
  let materialized = materializeTrainable(state, {
    weights: r.weights === "dorefa" ? "ste" : r.weights,
    activations: r.activations,
    biases: true,
    lsqInit: r.start === "float" ? "lsq" : "ptq",
    incompatible: "ste",
    activationNumel,
  });
  let dorefa = new Map<string, DorefaWeight>();
  if (r.weights === "dorefa") ({ trainable: materialized, dorefa } = dorefaWeights(materialized));
  const trainable = quantizeBiases(materialized, state);
  const bn = batchNormParams(model, r);
  let learnable = [...trainable.learnable, ...bn.filter((b) => !trainable.learnable.includes(b))];
  let forward = trainable.model, folds: BatchFold[] = [];
  const foldSpatial: number[] = [];
  if (batchStats) {
    const f = foldWithBatchStatistics(trainable.model, model, state.source, trainable.weights);
    forward = f.model;
    folds = [...f.folds];
    learnable = [...learnable.filter((n) => !f.removed.includes(n)), ...f.added];
    for (const x of folds) {
      const s = probe!.capturedShapes.get(x.output);
      if (!s) throw new QuantlabError("MALFORMED_MODEL", `qat: no captured shape for "${x.output}"`);
      foldSpatial.push(s.slice(2).reduce((a, d) => a * d, 1));
    }
  }
  const graph = await buildGradientGraph(forward, {
    loss: o.loss,
    wrt: learnable,
    feeds: o.feeds,
    batchNorm: "eval",
    session: o.session,
    keep: [...(o.keep ?? []), ...folds.flatMap((f) => [f.batchMean, f.batchVar])],
  });
  const params = graph.initialParams();
  if (r.activations === "pact" && r.pactInit !== "calibrated" && o.fresh !== false) {
    for (const { kind, param } of trainable.quantizerParams.values()) {
      if (kind === "pact") params.get(param)!.fill(r.pactInit);
    }
  }
  return { trainable, graph, learnable, params, folds, foldSpatial, dorefa };
}

/**
 * Start a QAT recipe over a model (a fresh `ptq(model)`: int8 per-channel weights, uint8 activations, BN folded)
 * or over an existing PTQ pipeline (its policy, passes and calibration).
 *
 * @example
 * ```ts
 * import { qat } from "./qat.ts";
 * import { ptq } from "../ptq/pipeline.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const m = new OnnxModel(emptyModel(13));
 * const a = qat(m), b = qat(ptq(m).firstLast(8));
 * if (a.recipe.weights !== "ste" || !b.toString().includes("firstLast=8")) throw new Error(b.toString());
 * ```
 */
export function qat(model: OnnxModel | Uint8Array | PtqPipeline): QatPipeline {
  const p = model instanceof PtqPipeline ? model : ptq(model);
  return new QatPipeline(p, DEFAULTS);
}
