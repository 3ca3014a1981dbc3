/**
 * The fluent post-training quantization pipeline:
 *
 * ```ts ignore
 * const report = await ptq(model)
 *   .weights(quantizer().int(8).symmetric().perChannel())
 *   .activations(quantizer().uint(8).asymmetric().calibrate(calibrate.minMax()))
 *   .calibrateOn(trainSet, { count: 1024 })
 *   .evaluate(testSet);
 * const bytes = await pipeline.export("qoperator");
 * ```
 *
 * Optional steps: `.equalize()` (cross-layer equalization after BN folding, equalize.ts) and `.biasCorrection()`
 * (empirical bias correction on the calibration images, bias_correction.ts).
 *
 * Builders are immutable; the quantized models are computed once per builder (on first `quantize()`,
 * `evaluate()` or `export()`) and reused.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { batches, type ImageDataset } from "../data/batching.ts";
import { foldBatchNorm } from "../onnx/fold_bn.ts";
import { writeModelAtomic } from "../onnx/io.ts";
import { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { quantizer, QuantizerBuilder } from "../quant/quantizer.ts";
import type { QuantParams } from "../quant/params.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { calibrateActivations, type CalibrationData, checkActivationQuantizer } from "./calibration.ts";
import { compareModels, evaluateAccuracy, modelSize } from "./evaluate.ts";
import { insertQdq, planActivations } from "./qdq.ts";
import { type LoweringResult, lowerToQOperator } from "./qoperator.ts";
import { PtqReport } from "./report.ts";
import { equalizeCrossLayer, type EqualizedPair, type EqualizeOptions } from "./equalize.ts";
import { correctBias, type CorrectedLayer } from "./bias_correction.ts";

/** Calibration source: a dataset (batched here) or batches of input tensors. */
export type CalibrationSource = ImageDataset | CalibrationData;

interface PtqConfig {
  readonly model: OnnxModel;
  readonly weights: QuantizerBuilder;
  readonly activations: QuantizerBuilder;
  readonly fold: boolean;
  readonly calibration?: CalibrationSource;
  readonly calibrationCount?: number;
  readonly batchSize: number;
  readonly session: SessionOptions;
  readonly equalize?: EqualizeOptions;
  readonly biasCorrection?: { readonly count: number };
}

/** The quantized artefacts of a PTQ run. */
export interface PtqModels {
  /** The float model the quantization started from (BN folded if enabled). */
  readonly float: OnnxModel;
  /** Fake-quantized model (QuantizeLinear/DequantizeLinear). */
  readonly qdq: OnnxModel;
  /** Integer-operator model and what was left in float. */
  readonly qoperator: LoweringResult;
  /** Activation parameters by tensor name. */
  readonly activationParams: ReadonlyMap<string, QuantParams>;
  /** Weight parameters by initializer name. */
  readonly weightParams: ReadonlyMap<string, QuantParams>;
  /** Nominal weight bits. */
  readonly weightBits: number;
  /** Pairs equalized by `.equalize()`, if enabled. */
  readonly equalization?: readonly EqualizedPair[];
  /** Layers corrected by `.biasCorrection()`, if enabled. */
  readonly biasCorrection?: readonly CorrectedLayer[];
}

function isDataset(x: CalibrationSource): x is ImageDataset {
  return typeof x === "object" && x !== null && "pixels" in x && "labels" in x;
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
 * const p = ptq(new OnnxModel(emptyModel(13))).weights(quantizer().int(4).perChannel());
 * if (!p.toString().includes("int4")) throw new Error(p.toString());
 * ```
 */
export class PtqPipeline {
  #models?: Promise<PtqModels>;

  /** Use {@link ptq}. */
  constructor(readonly config: PtqConfig) {}

  #with(patch: Partial<PtqConfig>): PtqPipeline {
    return new PtqPipeline({ ...this.config, ...patch });
  }

  /** Weight quantizer (uniform, per-tensor or per-channel; the channel axis is set per op). */
  weights(q: QuantizerBuilder): PtqPipeline {
    if (!(q instanceof QuantizerBuilder)) {
      throw new QuantlabError("INVALID_ARGUMENT", "weights() expects a quantizer() builder");
    }
    if (q.config.granularity.kind === "group") {
      throw new QuantlabError(
        "UNSUPPORTED",
        "weights(): per-group quantization has no QDQ form before opset 21; use per-channel",
      );
    }
    if (q.config.bits > 8) {
      throw new QuantlabError("UNSUPPORTED", `weights(): ${q.config.bits}-bit weights; QDQ export supports up to 8`);
    }
    return this.#with({ weights: q });
  }

  /** Activation quantizer (per-tensor, static; its calibrator observes the calibration data). */
  activations(q: QuantizerBuilder): PtqPipeline {
    if (!(q instanceof QuantizerBuilder)) {
      throw new QuantlabError("INVALID_ARGUMENT", "activations() expects a quantizer() builder");
    }
    checkActivationQuantizer(q);
    return this.#with({ activations: q });
  }

  /** Fold BatchNormalization into Conv/Gemm first (default true). */
  foldBatchNorm(on = true): PtqPipeline {
    return this.#with({ fold: on });
  }

  /**
   * Cross-layer equalization (Nagel et al. 2019) of Conv-ReLU-Conv and Gemm-ReLU-Gemm pairs after BN folding
   * (default off; `false` turns it off again). Float outputs are unchanged; see equalize.ts.
   */
  equalize(on: boolean | EqualizeOptions = true): PtqPipeline {
    return this.#with({ equalize: on === false ? undefined : on === true ? {} : on });
  }

  /**
   * Empirical bias correction of every quantized Conv/Gemm on the first `count` calibration images (default
   * 512; default off, `false` turns it off again); see bias_correction.ts.
   */
  biasCorrection(on: boolean | { count?: number } = true): PtqPipeline {
    if (on === false) return this.#with({ biasCorrection: undefined });
    const count = on === true ? 512 : on.count ?? 512;
    if (!Number.isInteger(count) || count < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `biasCorrection count must be a positive integer, got ${count}`);
    }
    return this.#with({ biasCorrection: { count } });
  }

  /** Calibration data: a dataset (first `count` images, default 1024) or batches of input tensors. */
  calibrateOn(data: CalibrationSource, options: { count?: number } = {}): PtqPipeline {
    if (!data || typeof data !== "object") {
      throw new QuantlabError("INVALID_ARGUMENT", "calibrateOn() expects a dataset or batches");
    }
    return this.#with({ calibration: data, calibrationCount: options.count });
  }

  /** ORT binding and threads for calibration and evaluation. */
  session(options: SessionOptions): PtqPipeline {
    return this.#with({ session: { ...this.config.session, ...options } });
  }

  /** Batch size for calibration and evaluation (default 64). */
  batchSize(n: number): PtqPipeline {
    if (!Number.isInteger(n) || n < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `batchSize must be a positive integer, got ${n}`);
    }
    return this.#with({ batchSize: n });
  }

  /** Calibrate and build the QDQ and QOperator models (computed once per pipeline object). */
  quantize(): Promise<PtqModels> {
    this.#models ??= this.#quantize();
    return this.#models;
  }

  async #quantize(): Promise<PtqModels> {
    const c = this.config;
    if (!c.calibration) throw new QuantlabError("NOT_CALIBRATED", "ptq(): call calibrateOn(data) before quantizing");
    const folded = c.fold ? foldBatchNorm(c.model).model : c.model;
    const eq = c.equalize ? equalizeCrossLayer(folded, c.equalize) : undefined;
    const float = eq ? eq.model : folded;
    const plan = planActivations(float);
    const images = (ds: ImageDataset, count: number, bs: number): Generator<Tensor<"float32">> =>
      (function* () {
        for (const b of batches(ds, { batchSize: bs, count: Math.min(count, ds.count) })) yield b.x;
      })();
    let data: CalibrationData = isDataset(c.calibration)
      ? images(c.calibration, c.calibrationCount ?? 1024, c.batchSize)
      : c.calibration;
    let bcData: Tensor<"float32">[] | undefined;
    if (c.biasCorrection && !isDataset(c.calibration)) {
      // Batches may be a one-shot iterable: keep them for the bias-correction passes.
      const all: Tensor<"float32">[] = [];
      for await (const x of data as AsyncIterable<Tensor<"float32">>) all.push(x);
      data = all;
      bcData = [];
      let n = 0;
      for (const x of all) {
        if (n >= c.biasCorrection.count) break;
        bcData.push(x);
        n += x.shape[0];
      }
    }
    const act = await calibrateActivations(float, plan, data, c.activations, c.session);
    let q;
    let corrected: readonly CorrectedLayer[] | undefined;
    if (c.biasCorrection) {
      const bc = await correctBias(
        float,
        act,
        c.weights,
        bcData ?? images(c.calibration as ImageDataset, c.biasCorrection.count, c.batchSize),
        c.session,
      );
      q = bc.qdq;
      corrected = bc.layers;
    } else q = insertQdq(float, act, c.weights);
    return {
      float,
      qdq: q.model,
      qoperator: lowerToQOperator(q.model),
      activationParams: q.activationParams,
      weightParams: q.weightParams,
      weightBits: q.weightBits,
      equalization: eq?.pairs,
      biasCorrection: corrected,
    };
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
    const layers = [...m.activationParams.keys()].filter((k) => m.float.graph.node.some((n) => n.output.includes(k)));
    const cmp = await compareModels(m.float, m.qdq, testSet, {
      ...opts,
      limit: Math.min(count, options.sqnrImages ?? 256),
      layers,
    });
    const lsb = await this.#qoperatorLsb(m, testSet, Math.min(count, options.sqnrImages ?? 256));
    return new PtqReport({
      dataset: testSet.name,
      count,
      backend,
      batchSize: this.config.batchSize,
      weights: this.config.weights.toString(),
      activations: this.config.activations.toString(),
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
    await writeModelAtomic(path, bytes, { inputs: [this.config.model.source] });
  }

  /** Readable description of the recipe. */
  toString(): string {
    const c = this.config;
    return `ptq(${c.model.source}) weights=${c.weights} activations=${c.activations} foldBN=${c.fold}` +
      (c.equalize ? " equalize=true" : "") +
      (c.biasCorrection ? ` biasCorrection=true(${c.biasCorrection.count})` : "");
  }
}

/**
 * Start a PTQ recipe: defaults are int8 symmetric per-channel weights and uint8 asymmetric min-max
 * activations (ONNX Runtime's defaults), BN folding on, batch 64, native ORT when it loads.
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
export function ptq(model: OnnxModel | Uint8Array): PtqPipeline {
  const m = model instanceof Uint8Array ? OnnxModel.decode(model) : model;
  if (!(m instanceof OnnxModel)) {
    throw new QuantlabError("INVALID_ARGUMENT", "ptq() expects an OnnxModel or ONNX bytes");
  }
  return new PtqPipeline({
    model: m,
    weights: quantizer().int(8).symmetric().perChannel(),
    activations: quantizer().uint(8).asymmetric(),
    fold: true,
    batchSize: 64,
    session: {},
  });
}
