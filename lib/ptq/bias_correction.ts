/**
 * Empirical bias correction (Nagel et al. 2019, section 4.2, "empirical" variant as in Qualcomm's AIMET; Banner,
 * Nahshan, Soudry 2019, "Post training 4-bit quantization of convolutional networks for rapid-deployment"):
 * quantizing weights shifts the expected output of a layer, `E[W~ x~] != E[W x]`, and the shift accumulates
 * through the network. For each quantized Conv/Gemm in graph order, run the float model and the quantized (QDQ)
 * model, whose earlier layers are already corrected, on the same calibration images, and subtract the mean
 * per-channel error of that layer's output (before its activation) from the layer's bias:
 *
 *   `b[c] <- b[c] - (mean over images and positions of y_q[:, c] - y_float[:, c])`.
 *
 * The correction is applied to the float bias, and the QDQ model is rebuilt from it, so the int32 bias quantization
 * (scale `x_scale * w_scale`) is part of what is measured. Activation parameters are kept as calibrated. A Conv or
 * Gemm without a bias gets one. MatMul (no bias input) is not corrected. Means are accumulated in float64.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { exposeValues } from "../onnx/capture.ts";
import { attrInt, GraphBuilder, indexGraph, nodeLabel, removeDeadNodes } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { NodeProto } from "../onnx/proto.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { DataType, makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import type { QuantParams } from "../quant/params.ts";
import type { QuantizerBuilder } from "../quant/quantizer.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { CalibrationData } from "./calibration.ts";
import { insertQdq, type QdqResult } from "./qdq.ts";

/** What bias correction did to one layer. */
export interface CorrectedLayer {
  /** The Conv/Gemm node. */
  readonly node: string;
  /** Output channels corrected. */
  readonly channels: number;
  /** Mean over channels of |mean error| of the layer output before correcting it. */
  readonly meanAbsErrorBefore: number;
  /** The same after all corrections (measured in one final pass). */
  readonly meanAbsErrorAfter: number;
  /** The per-channel correction subtracted from the bias (float64). */
  readonly correction: Float64Array;
}

/** Result of {@link correctBias}. */
export interface BiasCorrectionResult {
  /** The float model with corrected biases (new object). */
  readonly model: OnnxModel;
  /** The QDQ model built from it. */
  readonly qdq: QdqResult;
  /** Corrected layers in graph order. */
  readonly layers: readonly CorrectedLayer[];
}

/** Options of {@link correctBias}. */
export interface BiasCorrectionOptions extends SessionOptions {
  /** Called after each corrected layer with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

function targetsOf(model: OnnxModel): NodeProto[] {
  const g = model.graph;
  const ix = indexGraph(g);
  return g.node.filter((n) =>
    n.domain === "" && (n.opType === "Conv" || n.opType === "Gemm") &&
    ix.initializers.get(n.input[1])?.dataType === DataType.FLOAT
  );
}

/** Per-channel sums (axis 1) of several outputs over all batches; returns means. */
async function channelMeans(
  model: OnnxModel,
  names: readonly string[],
  data: readonly Tensor<"float32">[],
  input: string,
  options: SessionOptions,
): Promise<Float64Array[]> {
  const probe = exposeValues(model, names, { replace: true });
  removeDeadNodes(probe.graph);
  const s = await createSession(probe, { ...options, cache: false });
  const sums: Float64Array[] = [];
  const counts = new Float64Array(names.length);
  try {
    for (const x of data) {
      const r = await s.run({ [input]: x });
      names.forEach((name, k) => {
        const t = r[name];
        const v = t.data as Float32Array;
        const n = t.shape[0], c = t.shape[1] ?? 1;
        const inner = v.length / (n * c);
        sums[k] ??= new Float64Array(c);
        const acc = sums[k];
        for (let b = 0; b < n; b++) {
          for (let ch = 0; ch < c; ch++) {
            let sum = 0;
            const base = (b * c + ch) * inner;
            for (let i = 0; i < inner; i++) sum += v[base + i];
            acc[ch] += sum;
          }
        }
        counts[k] += n * inner;
      });
    }
  } finally {
    await s.release();
  }
  return sums.map((acc, k) => acc.map((v) => v / counts[k]));
}

/**
 * Empirical bias correction of every quantized Conv/Gemm (see the module doc), sequentially in graph order.
 * `float` is the float model the QDQ model is built from (BN folded), `activationParams` its calibrated
 * activation parameters, `weights` the weight quantizer. `data` is iterated once per layer plus twice, so it
 * is collected into memory first (a few hundred images are enough). Throws `EMPTY_TENSOR` for no data.
 *
 * @example
 * ```ts ignore
 * import { correctBias } from "./bias_correction.ts";
 * const { qdq, layers } = await correctBias(floatModel, activationParams, quantizer().int(4).perChannel(), batches);
 * console.log(layers.map((l) => `${l.node}: ${l.meanAbsErrorBefore} -> ${l.meanAbsErrorAfter}`));
 * ```
 */
export async function correctBias(
  float: OnnxModel,
  activationParams: ReadonlyMap<string, QuantParams>,
  weights: QuantizerBuilder,
  data: CalibrationData,
  options: BiasCorrectionOptions = {},
): Promise<BiasCorrectionResult> {
  const batches: Tensor<"float32">[] = [];
  for await (const x of data as AsyncIterable<Tensor<"float32">>) batches.push(x);
  if (!batches.length) throw new QuantlabError("EMPTY_TENSOR", `${float.source}: bias correction data holds no batch`);
  const inputs = [...indexGraph(float.graph).inputs];
  if (inputs.length !== 1) {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${float.source}: bias correction feeds one input, the model has ${inputs.length}`,
    );
  }
  const input = inputs[0];
  const session: SessionOptions = { backend: options.backend, threads: options.threads };
  const cur = float.clone();
  const g = cur.graph;
  const builder = new GraphBuilder(g);
  const targets = targetsOf(cur);
  const floatTargets = targetsOf(float);
  const outNames = floatTargets.map((n) => n.output[0]);
  const reference = await channelMeans(float, outNames, batches, input, session);
  const corrections: Float64Array[] = [];
  const before: number[] = [];
  for (let l = 0; l < targets.length; l++) {
    const q = insertQdq(cur, activationParams, weights);
    // insertQdq keeps the original nodes, in order: the l-th Conv/Gemm holding a DequantizeLinear'd weight.
    const qNode = targetsOfQdq(q.model)[l];
    const [mean] = await channelMeans(q.model, [qNode.output[0]], batches, input, session);
    const ref = reference[l];
    if (mean.length !== ref.length) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `bias correction: ${nodeLabel(targets[l])} has ${ref.length} float channels and ${mean.length} quantized`,
      );
    }
    const delta = new Float64Array(ref.length);
    let abs = 0;
    for (let c = 0; c < ref.length; c++) {
      delta[c] = mean[c] - ref[c];
      abs += Math.abs(delta[c]);
    }
    before.push(abs / ref.length);
    corrections.push(delta);
    applyCorrection(cur, builder, targets[l], delta);
    options.onProgress?.(l + 1, targets.length);
  }
  const qdq = insertQdq(cur, activationParams, weights);
  const finalMeans = await channelMeans(
    qdq.model,
    targetsOfQdq(qdq.model).map((n) => n.output[0]),
    batches,
    input,
    session,
  );
  removeDeadNodes(g);
  cur.validate();
  const layers = targets.map((n, l) => {
    let abs = 0;
    for (let c = 0; c < reference[l].length; c++) abs += Math.abs(finalMeans[l][c] - reference[l][c]);
    return {
      node: nodeLabel(n, g.node.indexOf(n)),
      channels: reference[l].length,
      meanAbsErrorBefore: before[l],
      meanAbsErrorAfter: abs / reference[l].length,
      correction: corrections[l],
    };
  });
  return { model: cur, qdq, layers };
}

/** Conv/Gemm nodes of a QDQ model whose weight comes from a DequantizeLinear (the quantized ones). */
function targetsOfQdq(model: OnnxModel): NodeProto[] {
  const g = model.graph;
  const ix = indexGraph(g);
  return g.node.filter((n) => {
    if (n.domain !== "" || (n.opType !== "Conv" && n.opType !== "Gemm")) return false;
    const p = ix.producer.get(n.input[1]);
    return p !== undefined && g.node[p].opType === "DequantizeLinear";
  });
}

function applyCorrection(m: OnnxModel, b: GraphBuilder, n: NodeProto, delta: Float64Array): void {
  const ix = indexGraph(m.graph);
  const old = n.input[2] ? ix.initializers.get(n.input[2]) : undefined;
  if (n.input[2] && (!old || old.dataType !== DataType.FLOAT)) {
    throw new QuantlabError("UNSUPPORTED", `bias correction: ${nodeLabel(n)} has a bias that is not a float constant`);
  }
  if (n.opType === "Gemm" && attrInt(n, "transA", 0) !== 0) {
    throw new QuantlabError("UNSUPPORTED", `bias correction: ${nodeLabel(n)} uses transA`);
  }
  const prev = old ? tensorValues(old) as Float32Array : new Float32Array(delta.length);
  if (prev.length !== delta.length) {
    throw new QuantlabError(
      "UNSUPPORTED",
      `bias correction: ${nodeLabel(n)} has a broadcast bias of ${prev.length} values for ${delta.length} channels`,
    );
  }
  const next = new Float32Array(delta.length);
  for (let c = 0; c < delta.length; c++) next[c] = prev[c] - delta[c];
  const name = b.fresh(`${n.input[2] || `${n.name || n.output[0]}_bias`}_corrected`);
  m.graph.initializer.push(makeTensorProto(name, next, [delta.length]));
  while (n.input.length < 2) n.input.push("");
  n.input[2] = name;
}
