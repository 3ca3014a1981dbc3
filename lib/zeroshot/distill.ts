/**
 * The fluent ZeroQ builder: `zeroShot(model)` distils batches of synthetic inputs whose per-layer statistics
 * match the BatchNorm statistics stored in the model (Cai et al., "ZeroQ", CVPR 2020; reference code
 * `classification/distill_data.py` in github.com/amirgholami/ZeroQ), following the reference:
 *
 * - targets: the input of every BatchNormalization (the Conv output before it), per-sample per-channel mean
 *   and `sqrt(unbiased var + 1e-6)`, against `running_mean` and `sqrt(running_var + 1e-6)`; plus the input
 *   image's channel mean against 0 and std against 1 (see loss.ts). The model runs in inference mode.
 * - start: ZeroQ's quirky uniform init (see init.ts), seeded.
 * - optimiser: Adam (lr 0.5, betas 0.9/0.999) on the images; `ReduceLROnPlateau(min_lr=1e-4, patience=100)`
 *   stepped with the loss after every iteration; 500 iterations; batch 32; a fresh optimiser and schedule per
 *   batch; every setting configurable.
 *
 * Variants: `.labels(...)` adds cross-entropy toward target classes (the label-conditioned generators of later
 * zero-shot work, e.g. GDFQ / Qimera), `.noise()` returns Gaussian-noise batches of the same shape (baseline).
 * The gradient with respect to the images comes from quantlab's backward-graph compiler (lib/grad), run on ONNX
 * Runtime (native or WASM). Input shape comes from the model's declared input (`[N, C, H, W]`).
 *
 * Bounds: `batches x batch` images of the input shape must fit one tensor (at most 2^32 elements); a larger declared
 * input (say 1e6 x 1e6) is a typed `INVALID_ARGUMENT` "too large" error with the element count from `noise()` and
 * `generate()` before anything is allocated. Seeds are finite safe integers, hashed in full (see `Prng`).
 *
 * ```ts ignore
 * const data = await zeroShot(model).batch(32).iterations(500).seed(0).generate();
 * const q = await ptq(model).calibrateOn(data).quantize();
 * ```
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { buildGradientGraph, type GradientGraph } from "../grad/compiler.ts";
import { crossEntropyLoss, type LossTerm, weightedLoss } from "../grad/losses.ts";
import { adam } from "../grad/optim.ts";
import { ReduceLROnPlateau } from "../grad/schedule.ts";
import { GradientSession } from "../grad/session.ts";
import { captureShapes } from "../onnx/capture.ts";
import { indexGraph } from "../onnx/graph.ts";
import { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { checkSeed, deriveSeed, Prng } from "../tensor/prng.ts";
import { checkedSize, Tensor } from "../tensor/tensor.ts";
import { type BatchNormTap, findBatchNormTaps } from "./bn_taps.ts";
import { gaussianNoise, zeroqInit } from "./init.ts";
import { type StatisticsTarget, statisticsTargets, zeroqLoss } from "./loss.ts";

/** Target classes of the label-conditioned variant. */
export type LabelTargets = "balanced" | "random" | readonly number[];

/** The builder's settings (see {@link zeroShot} for defaults). */
export interface ZeroShotConfig {
  /** Images per batch. */
  readonly batch: number;
  /** Adam iterations per batch. */
  readonly iterations: number;
  /** Adam learning rate. */
  readonly lr: number;
  /** Seed of the initial images (and of random labels). */
  readonly seed: number;
  /** Number of batches. */
  readonly batches: number;
  /** Plateau schedule: patience (iterations) and minimum rate. */
  readonly plateau: { readonly patience: number; readonly minLr: number; readonly factor: number };
  /** Label-conditioned variant: classes and the weight of the cross-entropy term. */
  readonly labels?: { readonly targets: LabelTargets; readonly weight: number; readonly classes?: number };
  /** Input term targets (ZeroQ: mean 0, std 1 per channel, the normalised-input space). */
  readonly input: { readonly mean: number; readonly std: number };
  /** Initial images: ZeroQ's uniform quirk (default) or N(0, 1). */
  readonly init: "zeroq" | "gaussian";
  /** Input shape without the batch dimension (default: the model's declared input shape). */
  readonly inputShape?: readonly number[];
  /** Start the first batch from these images instead of the init (`[batch, ...inputShape]`). */
  readonly start?: Tensor<"float32">;
  /** ONNX Runtime options. */
  readonly session: SessionOptions;
  /** Called after every iteration. */
  readonly onIteration?: (info: { batch: number; iteration: number; loss: number; lr: number }) => void;
}

/** What {@link ZeroShotBuilder.lossGraph} returns. */
export interface ZeroShotLossGraph {
  /** The compiled graph (loss and d loss / d input). */
  readonly graph: GradientGraph;
  /** Input name. */
  readonly input: string;
  /** Input shape without the batch dimension. */
  readonly shape: readonly number[];
  /** Labels input name (label variant). */
  readonly labels?: string;
  /** Classes (label variant; 0 otherwise). */
  readonly classes: number;
  /** The statistics targets (BN taps, then the input). */
  readonly targets: readonly StatisticsTarget[];
}

/**
 * Synthetic calibration data: batches of inputs, iterable as `CalibrationData` for `ptq().calibrateOn()`.
 *
 * @example
 * ```ts
 * import { ZeroShotData } from "./distill.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const d = new ZeroShotData("noise", [Tensor.zeros([2, 1, 2, 2]), Tensor.zeros([2, 1, 2, 2])]);
 * if (d.count !== 4 || [...d].length !== 2 || d.images().shape[0] !== 4) throw new Error("bad");
 * ```
 */
export class ZeroShotData implements Iterable<Tensor<"float32">> {
  /** `"zeroq"` (distilled) or `"noise"` (Gaussian baseline). */
  readonly kind: "zeroq" | "noise";
  /** The batches, `[batch, ...inputShape]`. */
  readonly tensors: readonly Tensor<"float32">[];
  /** Loss before each Adam step, per batch (empty for noise). */
  readonly losses: readonly Float64Array[];
  /** Loss of each finished batch (after the last step). */
  readonly finalLosses: readonly number[];
  /** Target classes per batch (label-conditioned variant). */
  readonly labels: readonly Int32Array[];
  /** Wall time of the generation, seconds. */
  readonly seconds: number;
  /** ORT binding used (`""` for noise). */
  readonly backend: string;

  /** Wrap generated batches and their records (made by {@link ZeroShotBuilder}). */
  constructor(
    kind: "zeroq" | "noise",
    tensors: readonly Tensor<"float32">[],
    losses: readonly Float64Array[] = [],
    finalLosses: readonly number[] = [],
    labels: readonly Int32Array[] = [],
    seconds = 0,
    backend = "",
  ) {
    this.kind = kind;
    this.tensors = tensors;
    this.losses = losses;
    this.finalLosses = finalLosses;
    this.labels = labels;
    this.seconds = seconds;
    this.backend = backend;
  }

  /** Iterate over the batches. */
  [Symbol.iterator](): Iterator<Tensor<"float32">> {
    return this.tensors[Symbol.iterator]();
  }

  /** Total number of images. */
  get count(): number {
    return this.tensors.reduce((a, t) => a + t.shape[0], 0);
  }

  /** All images in one tensor `[count, ...inputShape]`. */
  images(): Tensor<"float32"> {
    const size = this.tensors.reduce((a, t) => a + t.size, 0);
    const out = new Float32Array(size);
    let o = 0;
    for (const t of this.tensors) {
      out.set(t.data, o);
      o += t.size;
    }
    return new Tensor(out, [this.count, ...this.tensors[0].shape.slice(1)], `${this.kind} images`);
  }

  /** Summary line. */
  toString(): string {
    const shape = this.tensors[0]?.shape.slice(1).join("x") ?? "?";
    if (this.kind === "noise") return `ZeroShotData(noise, ${this.count} images ${shape})`;
    const first = this.losses.map((l) => l[0]), last = this.finalLosses;
    const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    return `ZeroShotData(zeroq, ${this.count} images ${shape}, loss ${mean(first).toPrecision(4)} -> ${
      mean(last).toPrecision(4)
    }, ${this.seconds.toFixed(1)} s on ${this.backend})`;
  }
}

function positiveInt(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `zeroShot().${what} must be a positive integer, got ${n}`);
  }
}

function positive(what: string, v: number, allowZero = false): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", `zeroShot().${what} must be a finite number > 0, got ${v}`);
  }
}

/**
 * The model's single float input and its per-sample shape (declared, or `override`). With `images`, also checks
 * that `images` samples of that shape fit one tensor (`INVALID_ARGUMENT` "too large" with the element count, see
 * `checkedSize`), before anything is allocated.
 *
 * @example
 * ```ts
 * import { modelInput } from "./distill.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const m = await OnnxModel.load(new URL("../../tests/fixtures/models/resnet8_op13.onnx", import.meta.url));
 * if (modelInput(m).shape.join() !== "1,28,28") throw new Error("bad");
 * ```
 */
export function modelInput(
  model: OnnxModel,
  override?: readonly number[],
  images?: number,
): { name: string; shape: number[] } {
  const inputs = [...indexGraph(model.graph).inputs];
  if (inputs.length !== 1) {
    throw new QuantlabError("UNSUPPORTED", `${model.source}: zeroShot needs one graph input, found ${inputs.length}`);
  }
  const name = inputs[0];
  const shape = override ? [...override] : (model.declaredShape(name) ?? []).slice(1);
  if (shape.length < 2 || shape.some((d) => !(d > 0))) {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${model.source}: input "${name}" has no static [C, H, W] shape (declared ${
        JSON.stringify(model.declaredShape(name))
      }); pass .inputShape([C, H, W])`,
    );
  }
  // Before anything is allocated: a declared 1e6 x 1e6 input is a typed "too large" error with the count.
  if (images !== undefined) checkedSize([images, ...shape], `${model.source}: zeroShot images of input "${name}"`);
  return { name, shape };
}

/**
 * An immutable ZeroQ recipe over one model. Create with {@link zeroShot}.
 *
 * @example
 * ```ts
 * import { zeroShot } from "./distill.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const m = await OnnxModel.load(new URL("../../tests/fixtures/models/resnet8_op17.onnx", import.meta.url));
 * const z = zeroShot(m).batch(4).iterations(3).seed(1);
 * if (z.config.batch !== 4 || zeroShot(m).config.batch !== 32) throw new Error("not immutable");
 * const data = await z.session({ backend: "web", threads: 1 }).generate();
 * if (data.count !== 4 || !(data.finalLosses[0] < data.losses[0][0])) throw new Error(data.toString());
 * ```
 */
export class ZeroShotBuilder {
  /** The BatchNorm taps found in the model (validated when the builder is made). */
  readonly taps: readonly BatchNormTap[];

  /** Use {@link zeroShot}. */
  constructor(readonly model: OnnxModel, readonly config: ZeroShotConfig, taps?: readonly BatchNormTap[]) {
    this.taps = taps ?? findBatchNormTaps(model);
  }

  #with(patch: Partial<ZeroShotConfig>): ZeroShotBuilder {
    return new ZeroShotBuilder(this.model, { ...this.config, ...patch }, this.taps);
  }

  /** Images per batch (>= 2; default 32). */
  batch(n: number): ZeroShotBuilder {
    positiveInt("batch", n);
    if (n < 2) throw new QuantlabError("INVALID_ARGUMENT", `zeroShot().batch must be >= 2, got ${n}`);
    return this.#with({ batch: n });
  }

  /** Adam iterations per batch (default 500). */
  iterations(n: number): ZeroShotBuilder {
    positiveInt("iterations", n);
    return this.#with({ iterations: n });
  }

  /** Adam learning rate (default 0.5). */
  lr(v: number): ZeroShotBuilder {
    positive("lr", v);
    return this.#with({ lr: v });
  }

  /** Seed (default 0; a safe integer, hashed in full): same seed and settings, same images. */
  seed(s: number): ZeroShotBuilder {
    checkSeed(s, "zeroShot().seed");
    return this.#with({ seed: s });
  }

  /** Number of batches (default 1). */
  batches(n: number): ZeroShotBuilder {
    positiveInt("batches", n);
    return this.#with({ batches: n });
  }

  /** Plateau schedule settings (defaults: patience 100, minLr 1e-4, factor 0.1 as ZeroQ / PyTorch). */
  plateau(o: { patience?: number; minLr?: number; factor?: number }): ZeroShotBuilder {
    const p = { ...this.config.plateau, ...o };
    if (!Number.isInteger(p.patience) || p.patience < 0) {
      throw new QuantlabError("INVALID_ARGUMENT", `zeroShot().plateau patience must be an integer >= 0`);
    }
    positive("plateau minLr", p.minLr, true);
    if (!(p.factor >= 0 && p.factor < 1)) {
      throw new QuantlabError("INVALID_ARGUMENT", `zeroShot().plateau factor must be in [0, 1), got ${p.factor}`);
    }
    return this.#with({ plateau: p });
  }

  /**
   * Label-conditioned variant: add `weight` x cross-entropy toward target classes: `"balanced"` (image i gets
   * class i mod classes), `"random"` (seeded) or an explicit list (cycled over the batch).
   */
  labels(targets: LabelTargets, options: { weight?: number; classes?: number } = {}): ZeroShotBuilder {
    if (targets !== "balanced" && targets !== "random") {
      if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => !Number.isInteger(t) || t < 0)) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `zeroShot().labels expects "balanced", "random" or a non-empty list of class indexes`,
        );
      }
    }
    const weight = options.weight ?? 1;
    positive("labels weight", weight);
    if (options.classes !== undefined) positiveInt("labels classes", options.classes);
    return this.#with({ labels: { targets, weight, classes: options.classes } });
  }

  /** Input term targets (default mean 0, std 1 per channel: the normalised-input space). */
  inputTargets(mean: number, std: number): ZeroShotBuilder {
    if (!Number.isFinite(mean)) throw new QuantlabError("INVALID_ARGUMENT", `zeroShot().inputTargets mean ${mean}`);
    positive("inputTargets std", std);
    return this.#with({ input: { mean, std } });
  }

  /** Initial images: `"zeroq"` (the reference's uniform quirk, default) or `"gaussian"` (N(0, 1)). */
  init(kind: "zeroq" | "gaussian"): ZeroShotBuilder {
    if (kind !== "zeroq" && kind !== "gaussian") {
      throw new QuantlabError("INVALID_ARGUMENT", `zeroShot().init must be "zeroq" or "gaussian", got "${kind}"`);
    }
    return this.#with({ init: kind });
  }

  /** Start the first batch from given images (`[batch, ...inputShape]`, copied), e.g. to compare with PyTorch. */
  startFrom(x: Tensor<"float32">): ZeroShotBuilder {
    if (!(x instanceof Tensor) || !(x.data instanceof Float32Array) || x.rank < 3) {
      throw new QuantlabError("INVALID_ARGUMENT", "zeroShot().startFrom expects a float32 tensor [N, C, H, W]");
    }
    return this.#with({ start: x.clone() as Tensor<"float32">, batch: x.shape[0] });
  }

  /** Input shape without the batch dimension, for models that do not declare it. */
  inputShape(shape: readonly number[]): ZeroShotBuilder {
    if (!Array.isArray(shape) || shape.length < 2) {
      throw new QuantlabError("INVALID_ARGUMENT", "zeroShot().inputShape expects [C, H, W]");
    }
    for (const d of shape) positiveInt("inputShape dims", d);
    return this.#with({ inputShape: [...shape] });
  }

  /** ONNX Runtime binding and threads. */
  session(options: SessionOptions): ZeroShotBuilder {
    return this.#with({ session: { ...this.config.session, ...options } });
  }

  /** Progress callback, called after every iteration. */
  onIteration(cb: ZeroShotConfig["onIteration"]): ZeroShotBuilder {
    return this.#with({ onIteration: cb });
  }

  /** The target classes of batch `b` (label variant). */
  #labelsFor(b: number, classes: number, rng: Prng): Int32Array {
    const n = this.config.batch, t = this.config.labels!.targets;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      if (t === "balanced") out[i] = (b * n + i) % classes;
      else if (t === "random") out[i] = rng.nextInt(classes);
      else out[i] = t[i % t.length];
      if (out[i] >= classes) {
        throw new QuantlabError("INVALID_ARGUMENT", `zeroShot().labels: class ${out[i]} >= ${classes} classes`);
      }
    }
    return out;
  }

  /** Gaussian-noise batches N(0, 1) of the same shape and count (the baseline; no model run). */
  noise(): ZeroShotData {
    const { shape } = modelInput(this.model, this.config.inputShape, this.config.batches * this.config.batch);
    const rng = new Prng(this.config.seed);
    const tensors: Tensor<"float32">[] = [];
    for (let b = 0; b < this.config.batches; b++) {
      const x = new Float32Array(this.config.batch * shape.reduce((a, d) => a * d, 1));
      tensors.push(new Tensor(gaussianNoise(rng, x), [this.config.batch, ...shape], `noise batch ${b}`));
    }
    return new ZeroShotData("noise", tensors);
  }

  /**
   * The compiled loss-and-gradient graph for batches of `batch` images: ZeroQ's loss (plus the weighted
   * cross-entropy toward `labels` in the label variant) and its gradient with respect to the input.
   */
  async lossGraph(batch = this.config.batch): Promise<ZeroShotLossGraph> {
    const c = this.config;
    const { name: input, shape } = modelInput(this.model, c.inputShape, Math.max(2, batch));
    const probe = this.model.clone();
    await captureShapes(probe, { [input]: Tensor.zeros([2, ...shape]) }, c.session);
    const targets = statisticsTargets(this.taps, {
      input,
      inputShape: shape,
      shapes: probe.capturedShapes,
      inputMean: c.input.mean,
      inputStd: c.input.std,
    });
    const terms: LossTerm[] = [zeroqLoss(targets)];
    const output = this.model.graph.output[0].name;
    const labels = c.labels ? "zeroshot_labels" : undefined;
    let classes = 0;
    if (c.labels) {
      classes = c.labels.classes ?? (probe.shape(output)?.[1] ?? 0);
      if (!(classes > 0) || probe.shape(output)?.length !== 2) {
        throw new QuantlabError("UNSUPPORTED", `${this.model.source}: output "${output}" is not [N, classes]`);
      }
      terms.push(weightedLoss(crossEntropyLoss(output, labels!), c.labels.weight));
    }
    const feeds: Record<string, Tensor> = { [input]: Tensor.zeros([batch, ...shape]) };
    if (labels) feeds[labels] = new Tensor(new Int32Array(batch), [batch]);
    const graph = await buildGradientGraph(this.model, {
      loss: terms,
      wrt: [input],
      feeds,
      batchNorm: "eval",
      session: c.session,
    });
    return { graph, input, shape, labels, classes, targets };
  }

  /** Distil the batches (see the module doc). */
  async generate(): Promise<ZeroShotData> {
    const t0 = performance.now();
    const c = this.config;
    modelInput(this.model, c.inputShape, c.batches * c.batch);
    const { graph: tg, input, shape, labels: labelInput, classes } = await this.lossGraph();
    const dims = [c.batch, ...shape];
    const size = dims.reduce((a, d) => a * d, 1);
    const feeds = (x: Tensor, labels?: Int32Array) =>
      labels && labelInput ? { [input]: x, [labelInput]: new Tensor(labels, [c.batch]) } : { [input]: x };
    const rng = new Prng(c.seed);
    const labelRng = new Prng(deriveSeed(c.seed, (lo) => lo ^ 0x5bd1e995));
    const gs = await GradientSession.create(tg, c.session);
    const noParams = new Map<string, Float32Array>();
    const tensors: Tensor<"float32">[] = [], losses: Float64Array[] = [], finals: number[] = [];
    const allLabels: Int32Array[] = [];
    for (let b = 0; b < c.batches; b++) {
      const x = new Float32Array(size);
      if (c.init === "zeroq") zeroqInit(rng, x);
      else gaussianNoise(rng, x);
      if (b === 0 && c.start) {
        if (c.start.size !== size) {
          throw new QuantlabError("SHAPE_MISMATCH", `zeroShot().startFrom: [${c.start.shape}] is not [${dims}]`);
        }
        x.set(c.start.data);
      }
      const labels = c.labels ? this.#labelsFor(b, classes, labelRng) : undefined;
      if (labels) allLabels.push(labels);
      const xt = new Tensor<"float32">(x, dims, `zeroq batch ${b}`);
      const opt = adam({ lr: c.lr });
      const sched = new ReduceLROnPlateau(opt, {
        patience: c.plateau.patience,
        minLr: c.plateau.minLr,
        factor: c.plateau.factor,
      });
      const curve = new Float64Array(c.iterations);
      const params = new Map([[input, x]]);
      for (let it = 0; it < c.iterations; it++) {
        const r = await gs.run(feeds(xt, labels), noParams);
        if (!Number.isFinite(r.loss)) {
          throw new QuantlabError("NON_FINITE", `zeroShot: loss became ${r.loss} at batch ${b}, iteration ${it}`);
        }
        opt.step(params, r.grads);
        sched.step(r.loss);
        curve[it] = r.loss;
        c.onIteration?.({ batch: b, iteration: it, loss: r.loss, lr: opt.lr });
      }
      finals.push((await gs.run(feeds(xt, labels), noParams)).loss);
      losses.push(curve);
      tensors.push(xt);
    }
    const backend = gs.backend;
    await gs.release();
    return new ZeroShotData(
      "zeroq",
      tensors,
      losses,
      finals,
      allLabels,
      (performance.now() - t0) / 1000,
      backend,
    );
  }

  /** Readable description of the recipe. */
  toString(): string {
    const c = this.config;
    const lab = c.labels
      ? ` labels=${Array.isArray(c.labels.targets) ? `[${c.labels.targets}]` : c.labels.targets} x${c.labels.weight}`
      : "";
    return `zeroShot(${this.model.source}) batch=${c.batch} batches=${c.batches} iterations=${c.iterations} ` +
      `adam(lr=${c.lr}) plateau(patience=${c.plateau.patience}, minLr=${c.plateau.minLr}) seed=${c.seed} ` +
      `init=${c.init}${lab}; ${this.taps.length} BatchNorm layers`;
  }
}

/**
 * Start a ZeroQ recipe for `model` (an `OnnxModel` or ONNX bytes). Defaults follow the reference: batch 32,
 * 500 iterations, Adam lr 0.5, plateau patience 100 / min lr 1e-4, one batch, seed 0, ZeroQ's init, input
 * targets mean 0 / std 1, backend auto. Throws `UNSUPPORTED` right away when the model has no BatchNorm (or
 * had it folded), explaining how to export one that keeps it.
 *
 * @example
 * ```ts
 * import { zeroShot } from "./distill.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * try {
 *   zeroShot(new OnnxModel(emptyModel(17)));
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!String(e).includes("TrainingMode.PRESERVE")) throw e;
 * }
 * ```
 */
export function zeroShot(model: OnnxModel | Uint8Array): ZeroShotBuilder {
  const m = model instanceof Uint8Array ? OnnxModel.decode(model) : model;
  if (!(m instanceof OnnxModel)) throw new QuantlabError("INVALID_ARGUMENT", "zeroShot() expects an OnnxModel");
  return new ZeroShotBuilder(m, {
    batch: 32,
    iterations: 500,
    lr: 0.5,
    seed: 0,
    batches: 1,
    plateau: { patience: 100, minLr: 1e-4, factor: 0.1 },
    input: { mean: 0, std: 1 },
    init: "zeroq",
    session: {},
  });
}
