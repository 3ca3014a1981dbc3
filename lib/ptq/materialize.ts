/**
 * Materialization: one function from (float graph, plan, parameters) to an ONNX model.
 *
 * - {@link materializeQdq}: the inference QDQ model ONNX Runtime's own quantizer writes. Uniform affine weights
 *   of at most 8 bits become int8/uint8 codes behind a DequantizeLinear (per-channel `axis` = the op's output
 *   channel); every other weight (non-uniform, binary, ternary, k-means, PQ, wider than 8 bits, per-group)
 *   becomes its fake-quantized float values, so the model computes exactly what the quantizer stores while its
 *   true bits per weight are reported by the quantizer. int32 biases get scale `x_scale * w_scale` (zero point
 *   0) behind a DequantizeLinear. Activations get QuantizeLinear -> DequantizeLinear (a Clip first enforces
 *   grids narrower than 8 bits); the producer writes `<t>_float` and the DequantizeLinear restores `<t>`, so
 *   every planned tensor keeps its name. Graph inputs are quantized up front and consumers rewired.
 * - {@link materializeTrainable}: the same graph with float weights as learnable initializers behind
 *   fake-quantizers whose gradient rules the compiler knows: `ste` (QuantizeLinear -> DequantizeLinear,
 *   straight-through with the clip mask of lib/grad's rule), `lsq` (learned step sizes, LSQ gradient scale
 *   `1 / sqrt(N * Qp)`), `pact` (learned clip value for activations). Every learnable tensor is listed by name.
 *   Non-affine weights stay fixed fake-quantized constants (codebook fine-tuning is its own method).
 * - {@link materializeQOperator}: lowering of the QDQ model to integer operators (export only).
 *
 * Unnamed nodes of the float graph are named by their plan label (`Conv#3`) in the output so passes and
 * reports can find them again.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Emitter } from "../grad/emitter.ts";
import { lsqFakeQuant, lsqGradScale, lsqGrid, pactFakeQuant } from "../grad/markers.ts";
import { GraphBuilder, indexGraph, intAttr, removeDeadNodes } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { AttributeProto, NodeProto } from "../onnx/proto.ts";
import { DataType, makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import { quantizeTensor } from "../quant/affine.ts";
import type { QuantParams } from "../quant/params.ts";
import type { FittedWeights } from "../quant/weight_quantizer.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { ActivationEntry, QuantPlan, WeightEntry } from "./plan.ts";
import { type LoweringResult, lowerToQOperator } from "./qoperator.ts";

/** What materialization reads (a `PtqState` after calibration has all of it). */
export interface MaterializeInput {
  /** The float model the plan was made for. */
  readonly model: OnnxModel;
  /** The plan. */
  readonly plan: QuantPlan | undefined;
  /** Calibrated parameters of observed activations and constants. */
  readonly activationParams: ReadonlyMap<string, QuantParams>;
  /** Weight quantizers already fitted by a pass (others are fitted here). */
  readonly weightFits?: ReadonlyMap<string, FittedWeights>;
  /** Weight values replacing the float weights before quantization. */
  readonly weightValues?: ReadonlyMap<string, Float32Array>;
}

/** A materialized QDQ model. */
export interface QdqModel {
  /** The model (a new object). */
  readonly model: OnnxModel;
  /** Parameters of every quantized activation (shared tensors included) and constant. */
  readonly activationParams: ReadonlyMap<string, QuantParams>;
  /** Uniform affine parameters of weights stored as integer codes. */
  readonly weightParams: ReadonlyMap<string, QuantParams>;
  /** The fitted weight quantizer of every planned weight. */
  readonly fitted: ReadonlyMap<string, FittedWeights>;
  /** Largest nominal weight bits in the plan (0 without quantized weights). */
  readonly weightBits: number;
  /** Storage bits per weight over all planned weights (codes plus tables). */
  readonly bitsPerWeight: number;
}

/** Fake-quantizer kinds for trainable graphs. */
export type TrainableWeights = "ste" | "lsq" | "frozen";
/** Activation fake-quantizer kinds for trainable graphs. */
export type TrainableActivations = "ste" | "lsq" | "pact";

/** Options of {@link materializeTrainable}. */
export interface TrainableOptions {
  /** Weight fake-quantizers (default `ste`; `frozen` keeps fake-quantized constants). */
  readonly weights?: TrainableWeights;
  /** Activation fake-quantizers (default `ste`: fixed calibrated parameters). */
  readonly activations?: TrainableActivations;
  /** Biases learnable (default true). */
  readonly biases?: boolean;
  /** LSQ weight step initialisation: from the fitted PTQ scales (default) or LSQ's `2 mean|w| / sqrt(Qp)`. */
  readonly lsqInit?: "ptq" | "lsq";
  /**
   * Activations LSQ/PACT cannot learn (a zero point off the grid's end, or signed data under PACT): throw
   * (default) or keep them as fixed `ste` quantizers.
   */
  readonly incompatible?: "throw" | "ste";
  /**
   * Elements per sample of each activation tensor: LSQ activation steps then get LSQ's gradient scale
   * `1 / sqrt(numel * Qp)` (default: no scale, g = 1).
   */
  readonly activationNumel?: ReadonlyMap<string, number>;
}

/** A trainable fake-quantized model. */
export interface TrainableModel {
  /** The model (float weights and quantizer parameters as initializers). */
  readonly model: OnnxModel;
  /** Every learnable initializer name: weights, biases, step sizes, clip values. */
  readonly learnable: readonly string[];
  /** Learnable weights, their grids and axes (to clamp after a step, as STE training needs below 8 bits). */
  readonly weights: ReadonlyMap<string, { params: QuantParams; axis: number; dims: readonly number[] }>;
  /** Learnable biases. */
  readonly biases: readonly string[];
  /** Learned quantizer parameters by tensor: the step size or clip initializer name. */
  readonly quantizerParams: ReadonlyMap<string, { kind: "lsq" | "pact"; param: string }>;
  /** The QDQ-side bookkeeping (fitted weights, parameters). */
  readonly qdq: Omit<QdqModel, "model">;
}

function storageType(p: QuantParams): { code: number; make: (n: number) => Int8Array | Uint8Array } | undefined {
  // Unsigned grids (also narrower than 8 bits) in uint8, so a layer's activations share one storage type (ORT's
  // QGemm / QLinearConv need input and output of one type; a uint4 input beside a uint8 output failed to load).
  if (p.qmin >= 0 && p.qmax <= 255) return { code: DataType.UINT8, make: (n) => new Uint8Array(n) };
  if (p.qmin >= -128 && p.qmax <= 127) return { code: DataType.INT8, make: (n) => new Int8Array(n) };
  return undefined;
}

function requirePlan(input: MaterializeInput): QuantPlan {
  if (!input.plan) throw new QuantlabError("NOT_CALIBRATED", `${input.model.source}: no quantization plan yet`);
  return input.plan;
}

/** Resolve every activation entry's parameters (shared ones from their source). */
function activationParamsOf(input: MaterializeInput, plan: QuantPlan): Map<string, QuantParams> {
  const out = new Map<string, QuantParams>();
  for (const e of plan.activations) {
    const key = e.sharesWith ?? e.tensor;
    const p = input.activationParams.get(key);
    if (!p) {
      throw new QuantlabError(
        "NOT_CALIBRATED",
        `${input.model.source}: no calibrated parameters for ${e.role} "${key}"; run the calibrate pass first`,
      );
    }
    if (p.granularity.kind !== "tensor" || p.scale.length !== 1) {
      throw new QuantlabError("UNSUPPORTED", `activation "${e.tensor}": QDQ activations are per-tensor`);
    }
    if (!storageType(p)) {
      throw new QuantlabError(
        "UNSUPPORTED",
        `activation "${e.tensor}": QDQ needs an 8-bit-or-narrower grid, got [${p.qmin}, ${p.qmax}]`,
      );
    }
    out.set(e.tensor, p);
  }
  return out;
}

/**
 * Fit (or take the pass-fitted) weight quantizer of every planned weight.
 *
 * @example
 * ```ts ignore
 * const fitted = fitPlannedWeights(state);
 * for (const [w, f] of fitted) console.log(w, f.bitsPerWeight());
 * ```
 */
export function fitPlannedWeights(input: MaterializeInput): Map<string, FittedWeights> {
  const plan = requirePlan(input);
  const ix = indexGraph(input.model.graph);
  const out = new Map<string, FittedWeights>();
  for (const e of plan.weights) {
    const have = input.weightFits?.get(e.tensor);
    if (have) {
      out.set(e.tensor, have);
      continue;
    }
    out.set(e.tensor, e.quantizer.fitWeights(floatWeight(input, ix.initializers, e), { axis: e.axis, name: e.tensor }));
  }
  return out;
}

function floatWeight(
  input: MaterializeInput,
  inits: ReadonlyMap<string, { dims: readonly number[] } & Parameters<typeof tensorValues>[0]>,
  e: WeightEntry,
): Tensor<"float32"> {
  const t = inits.get(e.tensor);
  if (!t || t.dataType !== DataType.FLOAT) {
    throw new QuantlabError(
      "MALFORMED_MODEL",
      `${input.model.source}: planned weight "${e.tensor}" of ${e.node} is not a float initializer of this graph`,
    );
  }
  const v = tensorValues(t) as Float32Array;
  return new Tensor<"float32">(v, t.dims, e.tensor);
}

function isAffineStorable(f: FittedWeights): QuantParams | undefined {
  const p = f.affine;
  if (!p || p.granularity.kind === "group" || !storageType(p)) return undefined;
  return p;
}

interface EmitOptions {
  readonly trainable?: TrainableOptions;
}

interface EmitResult {
  model: OnnxModel;
  act: Map<string, QuantParams>;
  weightParams: Map<string, QuantParams>;
  fitted: Map<string, FittedWeights>;
  learnable: string[];
  learnWeights: Map<string, { params: QuantParams; axis: number; dims: readonly number[] }>;
  biases: string[];
  quantizerParams: Map<string, { kind: "lsq" | "pact"; param: string }>;
}

function emit(input: MaterializeInput, options: EmitOptions): EmitResult {
  const plan = requirePlan(input);
  input.model.checkOpset("QDQ materialization");
  const trainable = options.trainable;
  const act = activationParamsOf(input, plan);
  const fitted = fitPlannedWeights(input);
  const m = input.model.clone();
  const g = m.graph;
  g.node.forEach((n, i) => {
    if (!n.name) n.name = `${n.opType}#${i}`;
  });
  const b = new GraphBuilder(g);
  const ix = indexGraph(g);
  const newNodes: NodeProto[] = [];
  // The emitter appends to the graph; nodes it adds past the original ones are moved into `newNodes` in order.
  const originalNodes = g.node.slice();
  const emitter = new Emitter(g, m.opset(), b);
  const flushScratch = () => {
    newNodes.push(...g.node.splice(originalNodes.length));
  };
  const qparamNames = new Map<QuantParams, { s: string; z: string }>();
  const qparams = (p: QuantParams, base: string) => {
    let r = qparamNames.get(p);
    if (!r) {
      const st = storageType(p)!;
      const zp = st.make(1);
      zp[0] = p.zeroPoint[0];
      r = {
        s: b.initializer(`${base}_scale`, new Float32Array([p.scale[0]]), []),
        z: b.initializer(`${base}_zero_point`, zp, []),
      };
      qparamNames.set(p, r);
    }
    return r;
  };
  const mkNode = (
    opType: string,
    inputs: string[],
    outputs: string[],
    attribute: AttributeProto[] = [],
  ): NodeProto => ({
    input: inputs,
    output: outputs,
    name: b.fresh(`${outputs[0]}_${opType}`),
    opType,
    domain: "",
    attribute,
  });
  const quantizerParams = new Map<string, { kind: "lsq" | "pact"; param: string }>();
  const learnable: string[] = [];
  /** Fake-quantize activation `src` (planned tensor `t` with params `p`) into `dst`. */
  const quantizeActivation = (src: string, dst: string, p: QuantParams, t: string, e: ActivationEntry | undefined) => {
    const mode = trainable?.activations ?? "ste";
    const learnedOk = (() => {
      if (!trainable || mode === "ste" || !e || e.role === "constant") return false;
      if (trainable.incompatible !== "ste") return true;
      const signed = p.qmin < 0;
      if (e.sharesWith !== undefined && !quantizerParams.has(e.sharesWith)) return false;
      return p.zeroPoint[0] === (signed ? 0 : p.qmin) && !(mode === "pact" && signed);
    })();
    if (trainable && learnedOk && e && mode !== "ste") {
      const signed = p.qmin < 0;
      if (p.zeroPoint[0] !== (signed ? 0 : p.qmin)) {
        throw new QuantlabError(
          "UNSUPPORTED",
          `activation "${t}": ${mode.toUpperCase()} needs a zero point at ${signed ? 0 : p.qmin} (symmetric or ` +
            `non-negative data), got ${p.zeroPoint[0]}`,
        );
      }
      if (mode === "pact" && signed) {
        throw new QuantlabError("UNSUPPORTED", `activation "${t}": PACT clips non-negative activations only`);
      }
      if (e.sharesWith === undefined || !quantizerParams.has(e.sharesWith)) {
        const init = mode === "lsq" ? p.scale[0] : Math.fround((p.qmax - p.zeroPoint[0]) * p.scale[0]);
        const param = b.initializer(`${t}_${mode}_${mode === "lsq" ? "step" : "alpha"}`, new Float32Array([init]), []);
        quantizerParams.set(t, { kind: mode, param });
        learnable.push(param);
      }
      const { param } = quantizerParams.get(e.sharesWith ?? t) ?? quantizerParams.get(t)!;
      if (e.sharesWith) quantizerParams.set(t, quantizerParams.get(e.sharesWith)!);
      const y = mode === "lsq"
        ? lsqFakeQuant(emitter, src, param, {
          bits: p.bits,
          signed,
          // LSQ's g needs the elements per sample, known from captured shapes (`activationNumel`); else 1.
          gradScale: trainable.activationNumel?.has(e.sharesWith ?? t)
            ? lsqGradScale(trainable.activationNumel.get(e.sharesWith ?? t)!, lsqGrid(p.bits, signed)[1])
            : 1,
        })
        : pactFakeQuant(emitter, src, param, { bits: p.bits });
      emitter.opTo("Identity", [y], [dst]);
      flushScratch();
      return;
    }
    const { s, z } = qparams(p, t);
    let x = src;
    const full = storageType(p)!.code === DataType.INT8 ? [-128, 127] : [0, 255];
    if (p.qmin !== full[0] || p.qmax !== full[1]) {
      const lo = b.initializer(
        `${t}_clip_min`,
        new Float32Array([Math.fround((p.qmin - p.zeroPoint[0]) * p.scale[0])]),
        [],
      );
      const hi = b.initializer(
        `${t}_clip_max`,
        new Float32Array([Math.fround((p.qmax - p.zeroPoint[0]) * p.scale[0])]),
        [],
      );
      const c = b.fresh(`${t}_clipped`);
      newNodes.push(mkNode("Clip", [x, lo, hi], [c]));
      x = c;
    }
    const q = b.fresh(`${t}_quantized`);
    newNodes.push(mkNode("QuantizeLinear", [x, s, z], [q]));
    newNodes.push(mkNode("DequantizeLinear", [q, s, z], [dst]));
  };

  // Graph inputs: quantized up front, consumers rewired.
  const renamed = new Map<string, string>();
  for (const e of plan.activations) {
    if (e.role !== "input" || !ix.inputs.has(e.tensor)) continue;
    const dq = b.fresh(`${e.tensor}_dequantized`);
    quantizeActivation(e.tensor, dq, act.get(e.tensor)!, e.tensor, e);
    renamed.set(e.tensor, dq);
  }
  const unrenamed = new Map([...renamed].map(([k, v]) => [v, k]));
  const weightParams = new Map<string, QuantParams>();
  const learnWeights = new Map<string, { params: QuantParams; axis: number; dims: readonly number[] }>();
  const biases: string[] = [];
  const doneWeights = new Map<string, string>();
  const weightMode = trainable?.weights ?? "ste";
  /** The weight initializer itself is the learnable tensor (its values replaced by `weightValues` if given). */
  const learnableWeight = (name: string, w: Tensor<"float32">): string => {
    const k = g.initializer.findIndex((t) => t.name === name);
    g.initializer[k] = makeTensorProto(name, w.data.slice(), w.shape);
    return name;
  };
  for (const n of originalNodes) {
    n.input = n.input.map((x) => renamed.get(x) ?? x);
    // Weight and bias of a planned weight layer.
    const we = n.input[1] ? plan.get(n.input[1]) : undefined;
    if (we?.kind === "weight" && we.node === n.name) {
      const wName = we.tensor;
      const wT = ix.initializers.get(wName)!;
      const f = fitted.get(wName)!;
      const values = input.weightValues?.get(wName);
      const w = new Tensor<"float32">(values ?? (tensorValues(wT) as Float32Array), wT.dims, wName);
      const p = isAffineStorable(f);
      const perChannel = p?.granularity.kind === "channel";
      const axisAttr = perChannel ? [intAttr("axis", we.axis)] : [];
      let weightOut = doneWeights.get(wName);
      if (weightOut === undefined) {
        if (p && trainable && weightMode === "ste") {
          // Learnable float weight -> QuantizeLinear -> DequantizeLinear (STE with the clip mask).
          const st = storageType(p)!;
          const zp = st.make(p.zeroPoint.length);
          zp.set(p.zeroPoint);
          const dims = perChannel ? [p.scale.length] : [];
          const wv = learnableWeight(wName, w);
          const sn = b.initializer(`${wName}_scale`, p.scale.slice(), dims);
          const zn = b.initializer(`${wName}_zero_point`, zp, dims);
          const q = b.fresh(`${wName}_quantized`);
          weightOut = b.fresh(`${wName}_dequantized`);
          newNodes.push(mkNode("QuantizeLinear", [wv, sn, zn], [q], axisAttr));
          newNodes.push(mkNode("DequantizeLinear", [q, sn, zn], [weightOut], axisAttr));
          learnable.push(wv);
          learnWeights.set(wv, { params: p, axis: perChannel ? we.axis : 0, dims: wT.dims });
          weightParams.set(wName, p);
        } else if (p && trainable && weightMode === "lsq") {
          if (p.zeroPoint.some((z) => z !== 0)) {
            throw new QuantlabError("UNSUPPORTED", `weight "${wName}": LSQ needs symmetric weights (zero point 0)`);
          }
          const [, qp] = lsqGrid(p.bits, p.qmin < 0);
          const C = p.scale.length;
          const shape = wT.dims.map((d, k) => (perChannel && k === we.axis ? d : 1));
          let init: Float32Array;
          if (trainable.lsqInit === "lsq") {
            init = new Float32Array(C);
            const inner = wT.dims.slice(we.axis + 1).reduce((a, d) => a * d, 1);
            const sums = new Float64Array(C), counts = new Float64Array(C);
            for (let i = 0; i < w.data.length; i++) {
              const c = C === 1 ? 0 : Math.floor(i / inner) % C;
              sums[c] += Math.abs(w.data[i]);
              counts[c]++;
            }
            for (let c = 0; c < C; c++) init[c] = (2 * sums[c] / counts[c]) / Math.sqrt(qp);
          } else init = p.scale.slice();
          const wv = learnableWeight(wName, w);
          const step = b.initializer(`${wName}_lsq_step`, init, C === 1 ? [] : shape);
          weightOut = lsqFakeQuant(emitter, wv, step, {
            bits: p.bits,
            signed: p.qmin < 0,
            gradScale: lsqGradScale(w.data.length / C, qp),
          });
          flushScratch();
          learnable.push(wv, step);
          quantizerParams.set(wName, { kind: "lsq", param: step });
          weightParams.set(wName, p);
        } else if (p && (!trainable || weightMode === "frozen")) {
          const st = storageType(p)!;
          const codes = quantizeTensor(w, p, { name: wName });
          const q = st.make(codes.size);
          q.set(codes.data as ArrayLike<number>);
          const zp = st.make(p.zeroPoint.length);
          zp.set(p.zeroPoint);
          const dims = perChannel ? [p.scale.length] : [];
          const qn = b.initializer(`${wName}_quantized`, q, wT.dims);
          const sn = b.initializer(`${wName}_scale`, p.scale.slice(), dims);
          const zn = b.initializer(`${wName}_zero_point`, zp, dims);
          weightOut = b.fresh(`${wName}_dequantized`);
          newNodes.push(mkNode("DequantizeLinear", [qn, sn, zn], [weightOut], axisAttr));
          weightParams.set(wName, p);
        } else {
          // Non-affine (or unstorable) weights: their fake-quantized values as a float constant.
          weightOut = b.initializer(`${wName}_fake_quantized`, f.fakeQuantize(w).data.slice(), wT.dims);
        }
        doneWeights.set(wName, weightOut);
      }
      n.input[1] = weightOut;
      // Bias.
      const be = n.input[2] ? plan.get(n.input[2]) : undefined;
      const biasName = n.input[2];
      const xp = act.get(unrenamed.get(n.input[0]) ?? n.input[0]);
      const wp = weightParams.get(wName);
      if (trainable) {
        if (biasName && ix.initializers.get(biasName)?.dataType === DataType.FLOAT && trainable.biases !== false) {
          if (!biases.includes(biasName)) {
            biases.push(biasName);
            learnable.push(biasName);
          }
        }
      } else if (be?.kind === "bias" && xp && wp && biasName) {
        const bT = ix.initializers.get(biasName)!;
        const bv = tensorValues(bT) as Float32Array;
        const outCh = wp.scale.length === 1 ? bv.length : wp.scale.length;
        if (bv.length === outCh) {
          const bs = new Float32Array(bv.length);
          const bq = new Int32Array(bv.length);
          for (let c = 0; c < bv.length; c++) {
            bs[c] = Math.fround(xp.scale[0] * wp.scale[wp.scale.length === 1 ? 0 : c]);
            const r = Math.fround(bv[c] / bs[c]);
            const v = (r + 6755399441055744) - 6755399441055744;
            bq[c] = Math.max(-2147483648, Math.min(2147483647, v));
          }
          const bqn = b.initializer(`${biasName}_quantized`, bq, [bv.length]);
          const bsn = b.initializer(`${biasName}_scale`, bs, [bv.length]);
          const bzn = b.initializer(`${biasName}_zero_point`, new Int32Array(bv.length), [bv.length]);
          const bdq = b.fresh(`${biasName}_dequantized`);
          newNodes.push(mkNode("DequantizeLinear", [bqn, bsn, bzn], [bdq], [intAttr("axis", 0)]));
          n.input[2] = bdq;
        }
      }
    }
    // Float constants of Add/Mul.
    for (let k = 0; k < n.input.length; k++) {
      const ce = plan.get(n.input[k]);
      if (ce?.kind !== "activation" || ce.role !== "constant") continue;
      const dq = b.fresh(`${ce.tensor}_dequantized`);
      quantizeActivation(ce.tensor, dq, act.get(ce.tensor)!, ce.tensor, ce);
      n.input[k] = dq;
    }
    newNodes.push(n);
    // Output activations.
    for (let k = 0; k < n.output.length; k++) {
      const y = n.output[k];
      const ae = y ? plan.get(y) : undefined;
      if (ae?.kind !== "activation" || ae.role === "input" || ae.role === "constant") continue;
      const fl = b.fresh(`${y}_float`);
      n.output[k] = fl;
      quantizeActivation(fl, y, act.get(y)!, y, ae);
    }
  }
  g.node = newNodes;
  removeDeadNodes(g);
  m.validate();
  for (const e of plan.activations) if (!act.has(e.tensor)) act.set(e.tensor, input.activationParams.get(e.tensor)!);
  return { model: m, act, weightParams, fitted, learnable, learnWeights, biases, quantizerParams };
}

function storageSummary(plan: QuantPlan, fitted: ReadonlyMap<string, FittedWeights>, model: OnnxModel) {
  const inits = indexGraph(model.graph).initializers;
  let bits = 0, count = 0, maxBits = 0;
  for (const e of plan.weights) {
    const f = fitted.get(e.tensor);
    const t = inits.get(e.tensor);
    if (!f || !t) continue;
    const n = t.dims.reduce((a, d) => a * d, 1);
    bits += f.bitsPerWeight() * n;
    count += n;
    maxBits = Math.max(maxBits, e.bits);
  }
  return { weightBits: maxBits, bitsPerWeight: count ? bits / count : 0 };
}

/**
 * The inference QDQ model of a plan with its parameters (see the module doc). The input is not modified.
 *
 * @example
 * ```ts
 * import { materializeQdq } from "./materialize.ts";
 * import { buildPlan } from "./policy.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const p = emptyModel(13);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 1 }, { value: 2 }] } } });
 * p.graph.initializer.push(makeTensorProto("w", new Float32Array([1, -2, 0.5, 4]), [2, 2]));
 * p.graph.node.push({ input: ["x", "w"], output: ["y"], name: "mm", opType: "MatMul", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const model = OnnxModel.fromProto(p);
 * const plan = buildPlan(model);
 * const act = quantizer().uint(8).asymmetric().fit([-1, 1]).params;
 * const q = materializeQdq({ model, plan, activationParams: new Map(plan.observed.map((t) => [t, act])) });
 * const ops = q.model.graph.node.map((n) => n.opType).join();
 * if (ops !== "QuantizeLinear,DequantizeLinear,DequantizeLinear,MatMul,QuantizeLinear,DequantizeLinear") throw new Error(ops);
 * ```
 */
export function materializeQdq(input: MaterializeInput): QdqModel {
  const r = emit(input, {});
  return {
    model: r.model,
    activationParams: r.act,
    weightParams: r.weightParams,
    fitted: r.fitted,
    ...storageSummary(requirePlan(input), r.fitted, input.model),
  };
}

/**
 * The trainable fake-quantized model of a plan (see the module doc): feed it to `buildGradientGraph` with
 * `wrt: trainable.learnable`.
 *
 * @example
 * ```ts ignore
 * const t = materializeTrainable(state, { weights: "ste", activations: "ste" });
 * const graph = await buildGradientGraph(t.model, { loss, wrt: t.learnable, feeds });
 * ```
 */
export function materializeTrainable(input: MaterializeInput, options: TrainableOptions = {}): TrainableModel {
  const mode = options.weights ?? "ste";
  if (!["ste", "lsq", "frozen"].includes(mode)) {
    throw new QuantlabError("INVALID_ARGUMENT", `trainable weights must be "ste", "lsq" or "frozen", got "${mode}"`);
  }
  const am = options.activations ?? "ste";
  if (!["ste", "lsq", "pact"].includes(am)) {
    throw new QuantlabError("INVALID_ARGUMENT", `trainable activations must be "ste", "lsq" or "pact", got "${am}"`);
  }
  const r = emit(input, { trainable: { ...options, weights: mode } });
  return {
    model: r.model,
    learnable: r.learnable,
    weights: r.learnWeights,
    biases: r.biases,
    quantizerParams: r.quantizerParams,
    qdq: {
      activationParams: r.act,
      weightParams: r.weightParams,
      fitted: r.fitted,
      ...storageSummary(requirePlan(input), r.fitted, input.model),
    },
  };
}

/**
 * The integer-operator (QOperator) model of a plan: the QDQ model lowered (see qoperator.ts).
 *
 * @example
 * ```ts ignore
 * const { model, float } = materializeQOperator(state);
 * ```
 */
export function materializeQOperator(input: MaterializeInput): LoweringResult {
  return lowerToQOperator(materializeQdq(input).model);
}
