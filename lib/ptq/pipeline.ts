/**
 * The fluent post-training quantization pipeline over the model-level core: a policy makes the plan, an ordered
 * list of passes transforms one immutable state, and materialization writes QDQ, trainable QDQ or QOperator.
 *
 * ```ts ignore
 * const run = ptq(model)
 *   .weights(quantizer().int(4).symmetric().perChannel())
 *   .activations(quantizer().uint(8).asymmetric())
 *   .exclude("/classifier/*")
 *   .override("/layer1/conv1/Conv", { bits: 8 })
 *   .use(passes.equalize(), passes.biasCorrection({ count: 512 }))
 *   .calibrateOn(trainSet, { count: 1024 });
 * console.log(String(await run.plan()));   // the plan, a table
 * const report = await run.evaluate(testSet);
 * await run.save("qoperator", "model.int8.onnx");
 * ```
 *
 * Builders are immutable; the state is computed once per builder (on first `plan()`, `quantize()`,
 * `evaluate()`, `export()`) and calibration is cached across builders (calibrate_pass.ts), so variations of the
 * weight quantizer, of weight-layer exclusions or of bias correction calibrate once.
 *
 * @module
 */
import { isImageDataset } from "../data/images.ts";
import { QuantlabError } from "../errors.ts";
import { batches, type ImageDataset } from "../data/batching.ts";
import { asReader, type InputFeeds, type InputReader } from "../data/reader.ts";
import { writeModelAtomic } from "../onnx/io.ts";
import { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { QuantizerBuilder } from "../quant/quantizer.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { QuantParams } from "../quant/params.ts";
import { isWeightQuantizer, type WeightQuantizer } from "../quant/weight_quantizer.ts";
import { calibratePass } from "./calibrate_pass.ts";
import { biasCorrectionPass, type CorrectedLayer } from "./bias_correction.ts";
import { type EqualizedPair, type EqualizeOptions, equalizePass } from "./equalize.ts";
import { compareModels, evaluateAccuracy, modelSize } from "./evaluate.ts";
import { foldBatchNormPass } from "./fold_pass.ts";
import {
  materializeQdq,
  materializeTrainable,
  type QdqModel,
  type TrainableModel,
  type TrainableOptions,
} from "./materialize.ts";
import { initialState, type PassContext, type PtqPass, type PtqState, timedPass } from "./pass.ts";
import { QuantPlan } from "./plan.ts";
import {
  buildPlan,
  checkPolicy,
  type NodeMatcher,
  type NodeOverride,
  type Placement,
  type QuantPolicy,
} from "./policy.ts";
import { type LoweringResult, lowerToQOperator } from "./qoperator.ts";
import { PtqReport } from "./report.ts";
import { analyzeSensitivity, type SensitivityOptions, type SensitivityResult } from "./sensitivity.ts";

/**
 * Calibration data: a labelled-image dataset, a reader of named inputs, batches of feeds (`{ input: tensor }`),
 * or (single-input models) batches of input tensors.
 */
export type CalibrationSource = ImageDataset | InputReader | Iterable<InputFeeds> | Iterable<Tensor<"float32">>;

/** Everything a {@link PtqPipeline} holds (read it through `pipeline.config`). */
export interface PtqConfig {
  /** The float model as given. */
  readonly model: OnnxModel;
  /** The policy the plan is built from. */
  readonly policy: QuantPolicy;
  /** An explicit plan, or a function editing the policy's plan. */
  readonly plan?: QuantPlan | ((plan: QuantPlan) => QuantPlan);
  /** Fold BatchNorm first. */
  readonly fold: boolean;
  /** User passes, in order (run by stage). */
  readonly passes: readonly PtqPass[];
  /** Calibration data. */
  readonly calibration?: CalibrationSource;
  /** Calibration examples. */
  readonly calibrationCount?: number;
  /** Batch size for datasets. */
  readonly batchSize: number;
  /** ORT options. */
  readonly session: SessionOptions;
  /** Progress callback. */
  readonly progress?: (message: string, fraction?: number) => void;
}

/** The quantized artefacts of a PTQ run. */
export interface PtqModels {
  /** The final state (float model, plan, parameters, pass records). */
  readonly state: PtqState;
  /** The plan. */
  readonly plan: QuantPlan;
  /** The float model quantization started from (after graph passes; bias-corrected if that pass ran). */
  readonly float: OnnxModel;
  /** Fake-quantized model (QuantizeLinear/DequantizeLinear). */
  readonly qdq: OnnxModel;
  /** Integer-operator model and what was left in float (lowered on first access). */
  readonly qoperator: LoweringResult;
  /** Activation parameters by tensor name. */
  readonly activationParams: ReadonlyMap<string, QuantParams>;
  /** Uniform weight parameters by initializer name. */
  readonly weightParams: ReadonlyMap<string, QuantParams>;
  /** Largest nominal weight bits. */
  readonly weightBits: number;
  /** Storage bits per weight over the planned weights. */
  readonly bitsPerWeight: number;
  /** The materialized QDQ bookkeeping (fitted weight quantizers). */
  readonly materialized: QdqModel;
  /** Pairs equalized by the equalize pass, if it ran. */
  readonly equalization?: readonly EqualizedPair[];
  /** Layers corrected by the bias-correction pass, if it ran. */
  readonly biasCorrection?: readonly CorrectedLayer[];
}

/** A reader over a calibration source for a model (typed errors for anything else; see data/reader.ts). */
function toReader(source: CalibrationSource, model: OnnxModel, batchSize: number, count?: number): InputReader {
  return asReader(source, model, { batchSize, count });
}

/**
 * An immutable PTQ recipe over one model.
 *
 * @example
 * ```ts
 * import { ptq } from "./pipeline.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const p = ptq(new OnnxModel(emptyModel(13))).weights(quantizer().int(4).perChannel()).exclude("/fc*");
 * if (!p.toString().includes("int4") || !p.toString().includes("/fc*")) throw new Error(p.toString());
 * ```
 */
export class PtqPipeline {
  #state?: Promise<PtqState>;
  #models?: Promise<PtqModels>;

  /** Use {@link ptq}. */
  constructor(readonly config: PtqConfig) {}

  #with(patch: Partial<PtqConfig>): PtqPipeline {
    return new PtqPipeline({ ...this.config, ...patch });
  }

  #policy(patch: Partial<QuantPolicy>): PtqPipeline {
    const policy = { ...this.config.policy, ...patch };
    checkPolicy(policy);
    return this.#with({ policy });
  }

  /** The policy the plan is built from. */
  get policy(): QuantPolicy {
    return this.config.policy;
  }

  /** Default weight quantizer: any family (uniform, non-uniform, binary, ternary, k-means, product). */
  weights(q: WeightQuantizer): PtqPipeline {
    if (!isWeightQuantizer(q)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        "weights() expects a weight quantizer (quantizer(), nonUniform(), ...)",
      );
    }
    return this.#policy({ weights: q });
  }

  /**
   * Default activation quantizer (per-tensor, static, at most 8 bits; its calibrator observes the data), or
   * `false` for weights-only quantization (activations float, no calibration data needed).
   */
  activations(q: QuantizerBuilder | false): PtqPipeline {
    if (q !== false && !(q instanceof QuantizerBuilder)) {
      throw new QuantlabError("INVALID_ARGUMENT", "activations() expects a quantizer() builder or false");
    }
    return this.#policy({ activations: q });
  }

  /** Merge policy fields (see policy.ts). */
  withPolicy(patch: QuantPolicy): PtqPipeline {
    return this.#policy(patch);
  }

  /** Activation placement: `"all"` (default), `"relu"`, `"weight-inputs"` or a predicate. */
  placement(p: Placement): PtqPipeline {
    return this.#policy({ placement: p });
  }

  /** Quantize the network input(s) (`true`, default), keep them float (`false`), or use this quantizer. */
  input(q: boolean | QuantizerBuilder): PtqPipeline {
    return this.#policy({ input: q });
  }

  /** Quantize only these op types. */
  opTypes(types: readonly string[]): PtqPipeline {
    return this.#policy({ opTypes: [...types] });
  }

  /** Keep these nodes in float (names, globs, RegExps or predicates); adds to earlier exclusions. */
  exclude(...nodes: NodeMatcher[]): PtqPipeline {
    return this.#policy({ exclude: [...(this.config.policy.exclude ?? []), ...nodes] });
  }

  /** Per-node settings (later overrides win). */
  override(match: NodeMatcher, set: NodeOverride): PtqPipeline {
    return this.#policy({ overrides: [...(this.config.policy.overrides ?? []), { match, set }] });
  }

  /** First and last weight layers (and the activations entering and leaving them) at `bits` (default 8). */
  firstLast(bits = 8): PtqPipeline {
    return this.#policy({ firstLast: { bits } });
  }

  /**
   * Use an explicit plan (e.g. loaded from JSON; it must name tensors of the prepared float graph), or edit the
   * policy's plan with a function.
   */
  withPlan(plan: QuantPlan | ((plan: QuantPlan) => QuantPlan)): PtqPipeline {
    if (!(plan instanceof QuantPlan) && typeof plan !== "function") {
      throw new QuantlabError("INVALID_ARGUMENT", "withPlan() expects a QuantPlan or a function editing one");
    }
    return this.#with({ plan });
  }

  /** Add passes (run by stage: graph passes before the plan, then calibration, then the rest, each in order). */
  use(...passes: PtqPass[]): PtqPipeline {
    for (const p of passes) {
      if (!p || typeof p.run !== "function" || !["graph", "calibrate", "calibrated"].includes(p.stage)) {
        throw new QuantlabError("INVALID_ARGUMENT", "use() expects passes (objects with name, stage and run)");
      }
    }
    return this.#with({ passes: [...this.config.passes, ...passes] });
  }

  /** Fold BatchNormalization into Conv/Gemm first (default true). */
  foldBatchNorm(on = true): PtqPipeline {
    return this.#with({ fold: on });
  }

  /** Cross-layer equalization after BN folding (a graph pass; `false` removes it). */
  equalize(on: boolean | EqualizeOptions = true): PtqPipeline {
    const rest = this.config.passes.filter((p) => p.name !== "equalize");
    return this.#with({ passes: on === false ? rest : [...rest, equalizePass(on === true ? {} : on)] });
  }

  /** Empirical bias correction on the first `count` calibration examples (default 512; `false` removes it). */
  biasCorrection(on: boolean | { count?: number } = true): PtqPipeline {
    const rest = this.config.passes.filter((p) => p.name !== "biasCorrection");
    return this.#with({ passes: on === false ? rest : [...rest, biasCorrectionPass(on === true ? {} : on)] });
  }

  /** Calibration data and how many examples to use (default 1024 of a dataset; all of a reader). */
  calibrateOn(data: CalibrationSource, options: { count?: number } = {}): PtqPipeline {
    // Typed errors now rather than at quantize() (one-shot iterables are left alone: converting consumes them);
    // a single Tensor, a reader, a dataset, an array or anything else that is not iterable is checked here.
    const oneShot = typeof data === "object" && data !== null && Symbol.iterator in data && !Array.isArray(data) &&
      !isImageDataset(data);
    if (!oneShot) toReader(data, this.config.model, this.config.batchSize);
    if (options.count !== undefined && !(Number.isInteger(options.count) && options.count >= 1)) {
      throw new QuantlabError("INVALID_ARGUMENT", `calibrateOn count must be a positive integer, got ${options.count}`);
    }
    return this.#with({ calibration: data, calibrationCount: options.count });
  }

  /** ORT binding and threads for calibration and evaluation. */
  session(options: SessionOptions): PtqPipeline {
    return this.#with({ session: { ...this.config.session, ...options } });
  }

  /** Batch size for datasets in calibration and evaluation (default 64). */
  batchSize(n: number): PtqPipeline {
    if (!Number.isInteger(n) || n < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `batchSize must be a positive integer, got ${n}`);
    }
    return this.#with({ batchSize: n });
  }

  /** Progress reports (message, fraction when known) from every pass. */
  onProgress(fn: (message: string, fraction?: number) => void): PtqPipeline {
    return this.#with({ progress: fn });
  }

  /** The pass list in run order. */
  passList(): PtqPass[] {
    const c = this.config;
    const graph = [...(c.fold ? [foldBatchNormPass()] : []), ...c.passes.filter((p) => p.stage === "graph")];
    const cal = c.passes.filter((p) => p.stage === "calibrate");
    const rest = c.passes.filter((p) => p.stage === "calibrated");
    return [...graph, ...(cal.length ? cal : [calibratePass()]), ...rest];
  }

  #context(): PassContext {
    const c = this.config;
    const dataset = c.calibration && isImageDataset(c.calibration);
    const count = c.calibrationCount ?? (dataset ? 1024 : undefined);
    return {
      data: c.calibration ? toReader(c.calibration, c.model, c.batchSize, dataset ? count : undefined) : undefined,
      count: dataset ? undefined : count,
      session: c.session,
      progress: c.progress ?? (() => {}),
    };
  }

  /** Run the passes (once per pipeline object) and return the final state. */
  state(): Promise<PtqState> {
    this.#state ??= this.#run();
    return this.#state;
  }

  async #run(): Promise<PtqState> {
    const c = this.config;
    const ctx = this.#context();
    let state = initialState(c.model);
    const list = this.passList();
    let planned = false;
    for (const pass of list) {
      if (!planned && pass.stage !== "graph") {
        state = await timedPass("plan", state, () => {
          let plan = buildPlan(state.model, c.policy);
          if (c.plan instanceof QuantPlan) plan = checkPlanFits(c.plan, state.model);
          else if (c.plan) plan = checkPlanFits(c.plan(plan), state.model);
          return Promise.resolve({
            patch: { plan },
            summary: `${plan.weights.length} weights, ${plan.observed.length} observed activations`,
          });
        });
        planned = true;
      }
      ctx.progress(`pass ${pass.name}`);
      state = await pass.run(state, ctx);
    }
    return state;
  }

  /** The plan on the prepared float graph (after graph passes such as BN folding). */
  async plan(): Promise<QuantPlan> {
    const s = await this.state();
    return s.plan!;
  }

  /** Calibrate, run every pass and build the QDQ model (computed once per pipeline object). */
  quantize(): Promise<PtqModels> {
    this.#models ??= this.#quantize();
    return this.#models;
  }

  async #quantize(): Promise<PtqModels> {
    const state = await this.state();
    const q = materializeQdq(state);
    let lowered: LoweringResult | undefined;
    return {
      state,
      plan: state.plan!,
      float: state.model,
      qdq: q.model,
      get qoperator() {
        lowered ??= lowerToQOperator(q.model);
        return lowered;
      },
      activationParams: q.activationParams,
      weightParams: q.weightParams,
      weightBits: q.weightBits,
      bitsPerWeight: q.bitsPerWeight,
      materialized: q,
      equalization: state.records.find((r) => r.pass === "equalize")?.details as EqualizedPair[] | undefined,
      biasCorrection: state.records.find((r) => r.pass === "biasCorrection")?.details as CorrectedLayer[] | undefined,
    };
  }

  /**
   * Sensitivity analysis of this recipe (see sensitivity.ts): per-group "only this" / "all but this" metrics,
   * weights-only vs activations-only, per-activation SQNR; `result.exclusions()` feeds `exclude(...)`.
   */
  async sensitivity(data: ImageDataset | InputReader, options: SensitivityOptions = {}): Promise<SensitivityResult> {
    return analyzeSensitivity(await this.state(), data, { ...this.config.session, ...options });
  }

  /** The trainable fake-quantized graph of the final state (QAT, AdaRound, ZeroQ level 2 start here). */
  async trainable(options: TrainableOptions = {}): Promise<TrainableModel> {
    return materializeTrainable(await this.state(), options);
  }

  /**
   * Evaluate float, QDQ and QOperator models on a labelled dataset: accuracy, latency, size, output KL,
   * per-layer SQNR (on the first `sqnrImages` images, default 256) and QDQ/QOperator agreement in LSB.
   */
  async evaluate(testSet: ImageDataset, options: { limit?: number; sqnrImages?: number } = {}): Promise<PtqReport> {
    const m = await this.quantize();
    const opts = { ...this.config.session, batchSize: this.config.batchSize, limit: options.limit };
    const variants: [string, OnnxModel][] = [["float", m.float], ["qdq", m.qdq], ["qoperator", m.qoperator.model]];
    const rows = [];
    let backend = "";
    for (const [name, model] of variants) {
      const r = await evaluateAccuracy(model, testSet, opts);
      backend = r.backend;
      rows.push({ model: name, top1: r.top1, top5: r.top5, msPerBatch: r.msPerBatch, bytes: modelSize(model).bytes });
    }
    const count = Math.min(options.limit ?? testSet.count, testSet.count);
    const layers = m.plan.observed.filter((k) => m.float.graph.node.some((n) => n.output.includes(k)));
    const cmp = await compareModels(m.float, m.qdq, testSet, {
      ...opts,
      limit: Math.min(count, options.sqnrImages ?? 256),
      layers,
    });
    const lsb = await this.#qoperatorLsb(m, testSet, Math.min(count, options.sqnrImages ?? 256));
    const policy = this.config.policy;
    return new PtqReport({
      dataset: testSet.name,
      count,
      backend,
      batchSize: this.config.batchSize,
      weights: String(policy.weights ?? m.plan.weights[0]?.quantizer ?? "none"),
      activations: String(policy.activations ?? m.plan.activations[0]?.quantizer ?? "none"),
      weightBits: m.weightBits,
      rows,
      outputKl: cmp.outputKl,
      qoperatorMaxLsb: lsb,
      layerSqnr: cmp.layerSqnr,
      floatNodes: m.qoperator.float,
    });
  }

  async #qoperatorLsb(m: PtqModels, ds: ImageDataset, limit: number): Promise<number | undefined> {
    const out = m.float.graph.output[0].name;
    const p = m.activationParams.get(out);
    if (!p) return undefined;
    const a = await createSession(m.qdq, this.config.session);
    const b = await createSession(m.qoperator.model, this.config.session);
    const input = a.inputNames[0];
    let worst = 0;
    for (const batch of batches(ds, { batchSize: this.config.batchSize, count: limit })) {
      const x = (await a.run({ [input]: batch.x }))[out].data as Float32Array;
      const y = (await b.run({ [input]: batch.x }))[out].data as Float32Array;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / p.scale[0]);
    }
    return Math.round(worst * 1000) / 1000;
  }

  /** The quantized model's bytes: `"qdq"` (fake-quantized) or `"qoperator"` (integer operators). */
  async export(format: "qdq" | "qoperator"): Promise<Uint8Array> {
    if (format !== "qdq" && format !== "qoperator") {
      throw new QuantlabError("INVALID_ARGUMENT", `export() format must be "qdq" or "qoperator", got "${format}"`);
    }
    const m = await this.quantize();
    return format === "qdq" ? m.qdq.encode() : m.qoperator.model.encode();
  }

  /** Export and write atomically to `path`; refuses to overwrite the source model file. */
  async save(format: "qdq" | "qoperator", path: string): Promise<void> {
    const bytes = await this.export(format);
    await writeModelAtomic(path, bytes, { sources: [this.config.model.origin] });
  }

  /** Readable description of the recipe. */
  toString(): string {
    const c = this.config;
    const passes = this.passList().map((p) => p.toString()).join(" -> ");
    return `ptq(${c.model.source}) ${
      // describePolicy via the plan's policy string keeps one wording
      policyWords(c.policy)} passes: ${passes}${c.plan ? " (explicit plan)" : ""}`;
  }
}

function policyWords(p: QuantPolicy): string {
  const parts: string[] = [];
  parts.push(`weights=${String(p.weights)}`, `activations=${String(p.activations)}`);
  if (p.placement) parts.push(`placement=${typeof p.placement === "function" ? "<predicate>" : p.placement}`);
  if (p.input !== undefined) parts.push(`input=${String(p.input)}`);
  if (p.opTypes) parts.push(`opTypes=[${p.opTypes}]`);
  if (p.exclude?.length) {
    parts.push(`exclude=[${p.exclude.map((m) => typeof m === "function" ? "<predicate>" : String(m))}]`);
  }
  if (p.overrides?.length) parts.push(`overrides=${p.overrides.length}`);
  if (p.firstLast) parts.push(`firstLast=${p.firstLast.bits}`);
  return parts.join(" ");
}

/** Check that an explicit plan names tensors of the prepared graph. */
function checkPlanFits(plan: QuantPlan, model: OnnxModel): QuantPlan {
  if (!(plan instanceof QuantPlan)) {
    throw new QuantlabError("INVALID_ARGUMENT", "withPlan(fn): the function must return a QuantPlan");
  }
  const g = model.graph;
  const values = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  for (const n of g.node) for (const o of n.output) values.add(o);
  for (const e of plan.entries) {
    if (!values.has(e.tensor)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `plan entry "${e.tensor}" (${e.role}) names no tensor of ${model.source} after graph passes`,
      );
    }
  }
  return plan;
}

/**
 * Start a PTQ recipe: int8 symmetric per-channel weights and uint8 asymmetric min-max activations (ONNX
 * Runtime's defaults) placed as ONNX Runtime does, BN folding on, batch 64, native ORT when it loads. Throws
 * `UNSUPPORTED` naming the model at once when its ai.onnx opset is outside `SUPPORTED_OPSETS` (13..22), not after
 * calibration.
 *
 * @example
 * ```ts
 * import { ptq } from "./pipeline.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const p = ptq(new OnnxModel(emptyModel(13)));
 * if (!p.toString().includes("per-channel")) throw new Error(p.toString());
 * ```
 */
export function ptq(model: OnnxModel | Uint8Array, policy: QuantPolicy = {}): PtqPipeline {
  const m = model instanceof Uint8Array ? OnnxModel.decode(model) : model;
  if (!(m instanceof OnnxModel)) {
    throw new QuantlabError("INVALID_ARGUMENT", "ptq() expects an OnnxModel or ONNX bytes");
  }
  // Now, not after calibration: UNSUPPORTED naming the model and the supported opset range.
  m.checkOpset("ptq()");
  const full: QuantPolicy = {
    ...policy,
    weights: policy.weights ?? quantizerDefaults().weights,
    activations: policy.activations ?? quantizerDefaults().activations,
  };
  checkPolicy(full);
  return new PtqPipeline({ model: m, policy: full, fold: true, passes: [], batchSize: 64, session: {} });
}

function quantizerDefaults(): { weights: QuantizerBuilder; activations: QuantizerBuilder } {
  return {
    weights: new QuantizerBuilder().int(8).symmetric().perChannel(),
    activations: new QuantizerBuilder().uint(8).asymmetric(),
  };
}
