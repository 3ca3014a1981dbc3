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
import type { InputFeeds, InputReader } from "../data/reader.ts";
import { exposeValues } from "../onnx/capture.ts";
import { attrInt, GraphBuilder, indexGraph, nodeLabel, removeDeadNodes } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { NodeProto } from "../onnx/proto.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { DataType, makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import { limitedBatches } from "./calibrate_pass.ts";
import { fitPlannedWeights, type MaterializeInput, materializeQdq, type QdqModel } from "./materialize.ts";
import { type PassContext, type PtqPass, type PtqState, registerPass, timedPass } from "./pass.ts";
import type { PlanEntry, QuantPlan } from "./plan.ts";

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
  /** The plan with the corrected biases' int32 entries. */
  readonly plan: QuantPlan;
  /** The QDQ model built from it. */
  readonly qdq: QdqModel;
  /** Corrected layers in graph order. */
  readonly layers: readonly CorrectedLayer[];
}

/** Options of {@link correctBias}. */
export interface BiasCorrectionOptions extends SessionOptions {
  /** Called after each corrected layer with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Planned Conv/Gemm layers (by label) with their float-graph node. */
function targetsOf(input: MaterializeInput): { label: string; node: NodeProto }[] {
  const g = input.model.graph;
  const byLabel = new Map(g.node.map((n, i) => [n.name || `${n.opType}#${i}`, n]));
  return (input.plan?.weights ?? [])
    .filter((e) => e.opType === "Conv" || e.opType === "Gemm")
    .map((e) => ({ label: e.node, node: byLabel.get(e.node)! }))
    .filter((t) => t.node !== undefined);
}

/** Per-channel sums (axis 1) of several outputs over all batches; returns means. */
async function channelMeans(
  model: OnnxModel,
  names: readonly string[],
  data: readonly InputFeeds[],
  options: SessionOptions,
): Promise<Float64Array[]> {
  const probe = exposeValues(model, names, { replace: true });
  removeDeadNodes(probe.graph);
  const s = await createSession(probe, { ...options, cache: false });
  const sums: Float64Array[] = [];
  const counts = new Float64Array(names.length);
  try {
    for (const feeds of data) {
      const r = await s.run(feeds);
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
 * Empirical bias correction of every planned Conv/Gemm (see the module doc), sequentially in graph order, on a
 * calibrated state (plan + activation parameters). `data` is iterated once per layer plus twice, so it is
 * collected into memory first (a few hundred examples are enough). Throws `EMPTY_TENSOR` for no data.
 *
 * @example
 * ```ts ignore
 * import { correctBias } from "./bias_correction.ts";
 * const { model, layers } = await correctBias(state, readerFromDataset(train, { input: "input" }), { count: 512 });
 * console.log(layers.map((l) => `${l.node}: ${l.meanAbsErrorBefore} -> ${l.meanAbsErrorAfter}`));
 * ```
 */
export async function correctBias(
  state: MaterializeInput,
  data: InputReader,
  options: BiasCorrectionOptions & { count?: number } = {},
): Promise<BiasCorrectionResult> {
  const float = state.model;
  const inputs = [...indexGraph(float.graph).inputs];
  const batches: InputFeeds[] = [];
  for await (const f of limitedBatches(data, inputs, options.count, float.source)) batches.push(f);
  if (!batches.length) throw new QuantlabError("EMPTY_TENSOR", `${float.source}: bias correction data holds no batch`);
  const session: SessionOptions = { backend: options.backend, threads: options.threads };
  const cur = float.clone();
  const g = cur.graph;
  const builder = new GraphBuilder(g);
  const targets = targetsOf({ ...state, model: cur });
  const outNames = targets.map((t) => t.node.output[0]);
  const reference = await channelMeans(float, outNames, batches, session);
  const corrections: Float64Array[] = [];
  const before: number[] = [];
  let plan = state.plan!;
  // Only biases change: the weights are fitted once and re-used by every materialization below.
  const weightFits = fitPlannedWeights(state);
  const qdqOutput = (q: OnnxModel, label: string): string => {
    const n = q.graph.node.find((x) => x.name === label);
    if (!n) throw new QuantlabError("MALFORMED_MODEL", `bias correction: ${label} is missing from the QDQ model`);
    return n.output[0];
  };
  for (let l = 0; l < targets.length; l++) {
    const q = materializeQdq({ ...state, model: cur, plan, weightFits });
    const [mean] = await channelMeans(q.model, [qdqOutput(q.model, targets[l].label)], batches, session);
    const ref = reference[l];
    if (mean.length !== ref.length) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `bias correction: ${targets[l].label} has ${ref.length} float channels and ${mean.length} quantized`,
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
    const hadBias = !!targets[l].node.input[2];
    plan = withCorrectedBias(plan, targets[l], applyCorrection(cur, builder, targets[l].node, delta), hadBias);
    options.onProgress?.(l + 1, targets.length);
  }
  removeDeadNodes(g);
  cur.validate();
  const qdq = materializeQdq({ ...state, model: cur, plan, weightFits });
  const finalMeans = await channelMeans(qdq.model, targets.map((t) => qdqOutput(qdq.model, t.label)), batches, session);
  const layers = targets.map((t, l) => {
    let abs = 0;
    for (let c = 0; c < reference[l].length; c++) abs += Math.abs(finalMeans[l][c] - reference[l][c]);
    return {
      node: t.label,
      channels: reference[l].length,
      meanAbsErrorBefore: before[l],
      meanAbsErrorAfter: abs / reference[l].length,
      correction: corrections[l],
    };
  });
  return { model: cur, plan, qdq, layers };
}

/**
 * The plan after a layer's bias was replaced by `bias`: its int32 entry follows the new tensor; a layer that had no
 * bias gets an int32 entry when its weight is uniform and its input quantized (as the policy plans biases).
 */
function withCorrectedBias(
  plan: QuantPlan,
  target: { label: string; node: NodeProto },
  bias: string,
  hadBias: boolean,
): QuantPlan {
  const old = plan.biases.find((b) => b.node === target.label);
  const weight = plan.get(target.node.input[1]);
  const input = target.node.input[0];
  const changes: Record<string, PlanEntry | null> = {};
  if (old) changes[old.tensor] = null;
  if ((old || !hadBias) && weight?.kind === "weight" && weight.quantizer.kind === "uniform") {
    if (plan.get(input)?.kind === "activation") {
      changes[bias] = {
        kind: "bias",
        tensor: bias,
        role: "bias",
        node: target.label,
        weight: weight.tensor,
        input,
        bits: 32,
      };
    }
  }
  return Object.keys(changes).length ? plan.with(changes) : plan;
}

/**
 * The bias-correction pass (stage `calibrated`): corrects the float biases on the first `count` calibration
 * examples (default 512); the state's float model becomes the corrected one.
 *
 * @example
 * ```ts
 * import { biasCorrectionPass } from "./bias_correction.ts";
 * const p = biasCorrectionPass({ count: 256 });
 * if (p.stage !== "calibrated" || !p.toString().includes("256")) throw new Error(p.toString());
 * ```
 */
export function biasCorrectionPass(options: { count?: number } = {}): PtqPass {
  const count = options.count ?? 512;
  if (!Number.isInteger(count) || count < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `biasCorrection count must be a positive integer, got ${count}`);
  }
  return {
    name: "biasCorrection",
    stage: "calibrated",
    run(state: PtqState, ctx: PassContext): Promise<PtqState> {
      return timedPass("biasCorrection", state, async () => {
        if (!ctx.data) {
          throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: bias correction needs calibrateOn(data)`);
        }
        const r = await correctBias(state, ctx.data, {
          ...ctx.session,
          count,
          onProgress: (d, t) => ctx.progress(`bias correction ${d}/${t}`, d / t),
        });
        return {
          patch: { model: r.model, plan: r.plan },
          summary: `${r.layers.length} layers corrected on ${count} examples`,
          details: r.layers,
        };
      });
    },
    toString: () => `biasCorrection(${count})`,
  };
}

registerPass("biasCorrection", (o) => biasCorrectionPass(o as { count?: number }));

function applyCorrection(m: OnnxModel, b: GraphBuilder, n: NodeProto, delta: Float64Array): string {
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
  return name;
}
