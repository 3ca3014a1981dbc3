/**
 * Zero-shot quantization level 1 (no data, no fine-tuning): calibrate activation ranges on synthetic data and
 * quantize with the PTQ pipeline, as ZeroQ's `uniform_test.py` does: per-channel symmetric weights, per-tensor
 * asymmetric min-max activations after each layer, and the raw input image kept in float (ZeroQ never quantizes
 * the network input; {@link keepInputFloat} removes the input's QuantizeLinear/DequantizeLinear pair that
 * quantlab's QDQ insertion adds).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { indexGraph, removeDeadNodes } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { type CalibrationSource, ptq, type PtqModels, type PtqPipeline } from "../ptq/pipeline.ts";
import { quantizer } from "../quant/quantizer.ts";

/**
 * A copy of a QDQ model where each graph input feeds its consumers directly: the input's
 * `[Clip ->] QuantizeLinear -> DequantizeLinear` chain is bypassed and removed. Returns the new model and the
 * inputs that were un-quantized.
 *
 * @example
 * ```ts
 * import { keepInputFloat } from "./level1.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(13);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.initializer.push(makeTensorProto("s", new Float32Array([0.1]), []), makeTensorProto("z", new Uint8Array([0]), []));
 * const node = (op: string, i: string[], o: string) => ({ input: i, output: [o], name: o, opType: op, domain: "", attribute: [] });
 * p.graph.node.push(node("QuantizeLinear", ["x", "s", "z"], "q"), node("DequantizeLinear", ["q", "s", "z"], "dq"), node("Relu", ["dq"], "y"));
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const { model, inputs } = keepInputFloat(OnnxModel.fromProto(p));
 * if (inputs.join() !== "x" || model.graph.node.map((n) => n.opType).join() !== "Relu" || model.graph.node[0].input[0] !== "x") throw new Error("bad");
 * ```
 */
export function keepInputFloat(qdq: OnnxModel): { model: OnnxModel; inputs: string[] } {
  const m = qdq.clone();
  const g = m.graph;
  const ix = indexGraph(g);
  const done: string[] = [];
  for (const input of ix.inputs) {
    let v = input;
    // Follow Clip -> QuantizeLinear -> DequantizeLinear from the input (each with a single consumer).
    let found = false;
    for (let hop = 0; hop < 3; hop++) {
      const cons = ix.consumers.get(v) ?? [];
      const n = cons.map((i) => g.node[i]).find((n) =>
        ["Clip", "QuantizeLinear", "DequantizeLinear"].includes(n.opType)
      );
      if (!n) break;
      v = n.output[0];
      if (n.opType === "DequantizeLinear") {
        found = true;
        break;
      }
    }
    if (!found) continue;
    for (const n of g.node) n.input = n.input.map((x) => (x === v ? input : x));
    for (const o of g.output) {
      if (o.name === v) {
        throw new QuantlabError("UNSUPPORTED", `keepInputFloat: the quantized input "${v}" is a graph output`);
      }
    }
    done.push(input);
  }
  removeDeadNodes(g);
  m.validate();
  return { model: m, inputs: done };
}

const PASS_THROUGH = new Set(["MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Pad"]);

/**
 * A copy of a QDQ model keeping only the activation quantizers whose value comes from an op `keep` accepts
 * (traced back through data-movement ops such as Flatten); every other activation's
 * `[Clip ->] QuantizeLinear -> DequantizeLinear` becomes an Identity (so graph output names survive). Weight and
 * bias quantizers (DequantizeLinear of initializers) and the graph inputs' quantizers are left alone.
 * ZeroQ's placement is `keep = (op) => op === "Relu"`: its `quantize_model` puts `QuantAct` after every ReLU
 * only, so pre-residual BN outputs, pooled features and logits stay in float.
 *
 * @example
 * ```ts
 * import { keepActivationsFloat } from "./level1.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(13);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.initializer.push(makeTensorProto("s", new Float32Array([0.1]), []), makeTensorProto("z", new Uint8Array([0]), []));
 * const node = (op: string, i: string[], o: string) => ({ input: i, output: [o], name: o, opType: op, domain: "", attribute: [] });
 * p.graph.node.push(node("Neg", ["x"], "y_float"), node("QuantizeLinear", ["y_float", "s", "z"], "q"),
 *   node("DequantizeLinear", ["q", "s", "z"], "y"));
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const { model, removed } = keepActivationsFloat(OnnxModel.fromProto(p), (op) => op === "Relu");
 * if (removed.join() !== "y" || model.graph.node.map((n) => n.opType).join() !== "Neg,Identity") throw new Error("bad");
 * ```
 */
export function keepActivationsFloat(
  qdq: OnnxModel,
  keep: (opType: string) => boolean,
): { model: OnnxModel; removed: string[] } {
  const m = qdq.clone();
  const g = m.graph;
  const ix = indexGraph(g);
  const removed: string[] = [];
  const origin = (v: string): string => {
    for (let guard = 0; guard < 64; guard++) {
      const p = ix.producer.get(v);
      if (p === undefined) return "";
      const n = g.node[p];
      if (
        n.opType === "DequantizeLinear" || n.opType === "QuantizeLinear" || n.opType === "Clip" ||
        PASS_THROUGH.has(n.opType)
      ) {
        v = n.input[0];
        continue;
      }
      return n.opType;
    }
    return "";
  };
  g.node = g.node.map((n) => {
    if (n.opType !== "DequantizeLinear" || ix.initializers.has(n.input[0])) return n;
    const q = ix.producer.get(n.input[0]);
    if (q === undefined || g.node[q].opType !== "QuantizeLinear") return n;
    let src = g.node[q].input[0];
    const c = ix.producer.get(src);
    if (c !== undefined && g.node[c].opType === "Clip" && g.node[c].name.endsWith("_Clip")) src = g.node[c].input[0];
    if (ix.inputs.has(src)) return n;
    const op = origin(src);
    if (op === "" || keep(op)) return n;
    removed.push(n.output[0]);
    return { ...n, input: [src], opType: "Identity", attribute: [] };
  });
  removeDeadNodes(g);
  m.validate();
  return { model: m, removed };
}

/**
 * Apply an activation placement to a QDQ model: drop the input quantizer unless `quantizeInput`, and keep only
 * ReLU-output quantizers for `"relu"` (see {@link keepActivationsFloat}).
 *
 * @example
 * ```ts
 * import { placeQuantizers } from "./level1.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const p = emptyModel(13);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.node.push({ input: ["x"], output: ["y"], name: "r", opType: "Relu", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * if (placeQuantizers(OnnxModel.fromProto(p), "relu", false).graph.node.length !== 1) throw new Error("bad");
 * ```
 */
export function placeQuantizers(qdq: OnnxModel, activations: "relu" | "all", quantizeInput: boolean): OnnxModel {
  let out = quantizeInput ? qdq : keepInputFloat(qdq).model;
  if (activations === "relu") out = keepActivationsFloat(out, (op) => op === "Relu").model;
  return out;
}

/** Options of {@link quantizeZeroShot}. */
export interface ZeroShotQuantizeOptions {
  /** Weight bits (per-channel symmetric; default 8). */
  weightBits?: number;
  /** Activation bits (per-tensor asymmetric min-max; default 8). */
  activationBits?: number;
  /** Quantize the network input too (default false: ZeroQ keeps it in float). */
  quantizeInput?: boolean;
  /**
   * Which activations get quantizers: `"relu"` (default, ZeroQ's placement: after every ReLU) or `"all"`
   * (quantlab's PTQ placement: outputs of Conv, Add, pooling, Gemm, ... including the logits).
   */
  activations?: "relu" | "all";
  /** ORT options for calibration. */
  session?: SessionOptions;
}

/** Result of {@link quantizeZeroShot}. */
export interface ZeroShotQuantized {
  /** The fake-quantized (QDQ) model to evaluate or deploy. */
  readonly model: OnnxModel;
  /** The PTQ pipeline that made it (its weights/activations builders and float model). */
  readonly pipeline: PtqPipeline;
  /** The PTQ artefacts (float model with BN folded, parameters). */
  readonly ptq: PtqModels;
  /** Setting label, e.g. `"W4A8"`. */
  readonly label: string;
  /** Activation placement used. */
  readonly activations: "relu" | "all";
  /** Whether the network input is quantized. */
  readonly quantizeInput: boolean;
}

/**
 * Level 1: calibrate on `data` (distilled batches, noise, or a real dataset) and quantize `model` with
 * `W<weightBits>A<activationBits>`. BN is folded by the PTQ pipeline (on its copy).
 *
 * @example
 * ```ts ignore
 * const data = await zeroShot(model).generate();
 * const { model: q } = await quantizeZeroShot(model, data, { weightBits: 4, activationBits: 8 });
 * ```
 */
export async function quantizeZeroShot(
  model: OnnxModel,
  data: CalibrationSource,
  options: ZeroShotQuantizeOptions = {},
): Promise<ZeroShotQuantized> {
  const wb = options.weightBits ?? 8, ab = options.activationBits ?? 8;
  const pipeline = ptq(model)
    .weights(quantizer().int(wb).symmetric().perChannel())
    .activations(quantizer().uint(ab).asymmetric())
    .session(options.session ?? {})
    .calibrateOn(data);
  const q = await pipeline.quantize();
  const activations = options.activations ?? "relu", quantizeInput = options.quantizeInput ?? false;
  return {
    model: placeQuantizers(q.qdq, activations, quantizeInput),
    pipeline,
    ptq: q,
    label: `W${wb}A${ab}`,
    activations,
    quantizeInput,
  };
}
