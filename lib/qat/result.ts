/**
 * The result of a QAT run and its export. The trained parameters are written back into a PTQ state: the float
 * model gets the trained weights and biases, every planned uniform weight a pinned fit whose scales are the ones
 * the training graph used (`ste`: the fixed PTQ scales; `lsq`: the learned steps, zero point 0, LSQ's grid), and
 * every learned activation quantizer its QDQ parameters (`lsq`: scale = step, zero point 0; `pact`: scale =
 * `alpha / (2^b - 1)`, zero point 0, grid `[0, 2^b - 1]`). Export is then the core's own `materializeQdq` /
 * `materializeQOperator`.
 *
 * Biases train in float; export stores them as int32 at scale `s_x * s_w`. So that the training graph computes
 * what is exported, the final biases are rounded to that grid (`round(b / (s_x s_w)) * s_x s_w`) before the final
 * evaluation: the fake-quantized training graph and the QDQ export then compute the same function (up to float
 * op order), and their accuracies agree (the tests check it).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { ImageDataset } from "../data/images.ts";
import { applyParams } from "../grad/compiler.ts";
import { lsqGrid } from "../grad/markers.ts";
import { evaluateModel } from "../grad/train.ts";
import { indexGraph } from "../onnx/graph.ts";
import { writeModelAtomic } from "../onnx/io.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { tensorValues } from "../onnx/tensor_data.ts";
import { materializeQdq, type TrainableModel } from "../ptq/materialize.ts";
import type { PtqState } from "../ptq/pass.ts";
import { lowerToQOperator } from "../ptq/qoperator.ts";
import type { QuantParams } from "../quant/params.ts";
import { UniformWeights } from "../quant/quantizer.ts";
import type { FittedWeights } from "../quant/weight_quantizer.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { QatEpoch, QatPipeline } from "./qat.ts";
import { dorefaValues, type DorefaWeight } from "./dorefa.ts";

/**
 * The parameters that are initializers of `model` (weights, biases, BN scale and shift).
 *
 * @example
 * ```ts
 * import { floatPart } from "./result.ts";
 * import { digitsCnn } from "../models/digits_cnn.ts";
 * const p = floatPart(new Map([["conv1.weight", new Float32Array(144)], ["x_lsq_step", new Float32Array(1)]]), digitsCnn());
 * if ([...p.keys()].join() !== "conv1.weight") throw new Error("bad");
 * ```
 */
export function floatPart(params: ReadonlyMap<string, Float32Array>, model: OnnxModel): Map<string, Float32Array> {
  const inits = indexGraph(model.graph).initializers;
  return new Map([...params].filter(([k]) => inits.has(k)));
}

/** What {@link QatResult.create} gets from the training loop. */
export interface QatRun {
  /** The recipe that ran. */
  readonly pipeline: QatPipeline;
  /** The PTQ state training started from (after any observer re-calibration). */
  readonly state: PtqState;
  /** The training graph. */
  readonly trainable: TrainableModel;
  /** Trained parameters by name. */
  readonly params: Map<string, Float32Array>;
  /** Per-epoch records. */
  readonly history: readonly QatEpoch[];
  /** The model's input. */
  readonly inputName: string;
  /** The model's logits output. */
  readonly logits: string;
  /** BatchNorm scale/shift trained in `batchNorm("keep")` mode. */
  readonly bnParams: readonly string[];
  /** DoReFa weights by name (`weights: "dorefa"`; exported at their grids, see lib/qat/dorefa.ts). */
  readonly dorefa?: ReadonlyMap<string, DorefaWeight>;
  /** The DoReFa weights' quantized values as the training graph computed them (exported as they are). */
  readonly dorefaValues?: ReadonlyMap<string, Float32Array>;
  /** Wall time of the run, seconds. */
  readonly seconds: number;
}

/** Accuracies of the trained model's three forms. */
export interface QatEvaluation {
  /** The training graph's forward (float weights behind the trained fake quantizers). */
  readonly training: number;
  /** The exported QDQ model. */
  readonly qdq: number;
  /** The exported QOperator model (undefined when ONNX Runtime cannot run it; see `qoperatorError`). */
  readonly qoperator: number | undefined;
  /** Why the QOperator model did not run, if it did not. */
  readonly qoperatorError?: string;
  /** Images evaluated. */
  readonly count: number;
}

function exportState(run: QatRun, params: ReadonlyMap<string, Float32Array>): PtqState {
  const { state, trainable } = run;
  const model = applyParams(state.model, floatPart(params, state.model));
  const inits = indexGraph(model.graph).initializers;
  const weightFits = new Map<string, FittedWeights>();
  const activationParams = new Map(state.activationParams);
  const weightNames = new Set(state.plan!.weights.map((e) => e.tensor));
  const weightValues = new Map<string, Float32Array>();
  for (const [w, f] of trainable.qdq.fitted) {
    const q = trainable.quantizerParams.get(w);
    const d = run.dorefa?.get(w);
    if (d && f instanceof UniformWeights) {
      // The DoReFa levels of the trained latent weights, stored on their integer grid.
      const t = inits.get(w)!;
      const values = run.dorefaValues?.get(w) ?? dorefaValues(tensorValues(t) as Float32Array, d.params);
      weightValues.set(w, values);
      weightFits.set(w, new UniformWeights(f.config, d.params, new Tensor(values, t.dims), w));
    } else if (q?.kind === "lsq" && f instanceof UniformWeights) {
      const p = f.affine;
      const [qmin, qmax] = lsqGrid(p.bits, p.qmin < 0);
      const t = inits.get(w)!;
      const fit: QuantParams = {
        ...p,
        qmin,
        qmax,
        scale: params0(params, q.param).slice(),
        zeroPoint: new Int32Array(p.scale.length),
      };
      weightFits.set(w, new UniformWeights(f.config, fit, new Tensor(tensorValues(t) as Float32Array, t.dims), w));
    } else weightFits.set(w, f);
  }
  for (const [t, q] of trainable.quantizerParams) {
    if (weightNames.has(t)) continue;
    const entry = state.plan!.activations.find((e) => e.tensor === t);
    const p = state.activationParams.get(entry?.sharesWith ?? t) ?? state.activationParams.get(t);
    if (!p) continue;
    const v = params0(params, q.param)[0];
    if (q.kind === "lsq") {
      const [qmin, qmax] = lsqGrid(p.bits, p.qmin < 0);
      activationParams.set(t, { ...p, qmin, qmax, scale: new Float32Array([v]), zeroPoint: new Int32Array([0]) });
    } else {
      const [, qp] = lsqGrid(p.bits, false);
      activationParams.set(t, {
        ...p,
        qmin: 0,
        qmax: qp,
        scale: new Float32Array([Math.fround(v / qp)]),
        zeroPoint: new Int32Array([0]),
      });
    }
  }
  return { ...state, model, activationParams, weightFits, weightValues };
}

function params0(params: ReadonlyMap<string, Float32Array>, name: string): Float32Array {
  const v = params.get(name);
  if (!v) throw new QuantlabError("INVALID_ARGUMENT", `qat export: no trained value for "${name}"`);
  return v;
}

/**
 * A trained QAT model: its training graph, the export state, and the QDQ / QOperator exports.
 *
 * @example
 * ```ts
 * import { qat } from "./qat.ts";
 * import { subset } from "../data/batching.ts";
 * import { loadDigits } from "../data/digits.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const data = subset(await loadDigits(), 0, 256);
 * const r = await qat(model).weights(quantizer().int(4).symmetric().perChannel()).activations(quantizer().uint(4))
 *   .calibrateOn(data).session({ backend: "web", threads: 1 }).epochs(1).train(data);
 * const ev = await r.evaluate(data); // training graph, QDQ export, QOperator export
 * if (ev.qdq !== ev.training) throw new Error(JSON.stringify(ev));
 * ```
 */
export class QatResult {
  #qoperator?: OnnxModel;

  private constructor(
    /** What the loop produced (biases already on their int32 grid). */
    readonly run: QatRun,
    /** The export state (float model with trained weights, pinned fits, trained activation parameters). */
    readonly state: PtqState,
    /** The training graph's forward with the trained parameters (what `history` evaluated). */
    readonly trained: OnnxModel,
    /** The exported QDQ model. */
    readonly qdq: OnnxModel,
    /** Largest |latent float bias - exported bias| (the training graph already rounds biases to that grid). */
    readonly biasRounding: number,
  ) {}

  /** Build the result: round biases to their export grid, write the export state, materialize QDQ. */
  static create(run: QatRun): QatResult {
    let params = run.params;
    const first = materializeQdq(exportState(run, params));
    const inits = indexGraph(first.model.graph).initializers;
    const snapped = new Map(params);
    let worst = 0;
    for (const b of run.trainable.biases) {
      const codes = inits.get(`${b}_quantized`), scales = inits.get(`${b}_scale`);
      if (!codes || !scales) continue;
      const q = tensorValues(codes) as Int32Array, s = tensorValues(scales) as Float32Array, v = params.get(b)!;
      const out = new Float32Array(v.length);
      for (let i = 0; i < v.length; i++) {
        out[i] = Math.fround(q[i] * s[i]);
        worst = Math.max(worst, Math.abs(out[i] - v[i]));
      }
      snapped.set(b, out);
    }
    params = snapped;
    const state = exportState(run, params);
    const qdq = materializeQdq(state).model;
    const trained = applyParams(run.trainable.model, params);
    return new QatResult({ ...run, params }, state, trained, qdq, worst);
  }

  /** Per-epoch records. */
  get history(): readonly QatEpoch[] {
    return this.run.history;
  }

  /** Trained parameters (weights, biases, steps, clip values). */
  get params(): ReadonlyMap<string, Float32Array> {
    return this.run.params;
  }

  /** The float model with the trained weights (BN folded unless `batchNorm("keep")`). */
  get float(): OnnxModel {
    return this.state.model;
  }

  /** The exported integer-operator model (lowered on first access). */
  get qoperator(): OnnxModel {
    this.#qoperator ??= lowerToQOperator(this.qdq).model;
    return this.#qoperator;
  }

  /** Accuracy of the training graph, the QDQ export and the QOperator export on `set`. */
  async evaluate(set: ImageDataset): Promise<QatEvaluation> {
    const o = { input: this.run.inputName, logits: this.run.logits, session: this.run.pipeline.ptq.config.session };
    const training = (await evaluateModel(this.trained, set, o)).accuracy;
    const qdq = (await evaluateModel(this.qdq, set, o)).accuracy;
    try {
      const qoperator = (await evaluateModel(this.qoperator, set, o)).accuracy;
      return { training, qdq, qoperator, count: set.count };
    } catch (e) {
      return { training, qdq, qoperator: undefined, qoperatorError: String((e as Error).message), count: set.count };
    }
  }

  /** The exported model's bytes. */
  export(format: "qdq" | "qoperator"): Uint8Array {
    if (format !== "qdq" && format !== "qoperator") {
      throw new QuantlabError("INVALID_ARGUMENT", `export() format must be "qdq" or "qoperator", got "${format}"`);
    }
    return (format === "qdq" ? this.qdq : this.qoperator).encode();
  }

  /** Export and write atomically to `path`; refuses to overwrite the source model. */
  async save(format: "qdq" | "qoperator", path: string): Promise<void> {
    await writeModelAtomic(path, this.export(format), { sources: [this.run.pipeline.ptq.config.model.origin] });
  }
}
