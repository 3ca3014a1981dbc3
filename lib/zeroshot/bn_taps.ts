/**
 * Where ZeroQ reads its targets: every BatchNormalization of a model, the value feeding it (the output of the
 * Conv before it) and the statistics it stores. ZeroQ (Cai et al., CVPR 2020; `classification/distill_data.py`
 * in github.com/amirgholami/ZeroQ) hooks the first `#BN` Conv2d modules and pairs them in module order with the
 * BatchNorm2d modules; in a graph the pairing is explicit: the BN's input is the tapped value.
 *
 * A model without BatchNormalization, or whose BatchNorms were folded into the convolutions at export, has no
 * statistics to match: {@link findBatchNormTaps} throws `UNSUPPORTED` with {@link ZEROQ_BATCHNORM_HELP}.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { tensorValues } from "../onnx/tensor_data.ts";

/**
 * ZeroQ's epsilon, used for sqrt(running_var + eps) and for every sqrt(var + eps) (not the BN's own epsilon).
 *
 * @example
 * ```ts
 * import { ZEROQ_EPS } from "./bn_taps.ts";
 * if (ZEROQ_EPS !== 1e-6) throw new Error("bad");
 * ```
 */
export const ZEROQ_EPS = 1e-6;

/**
 * How to get a model that keeps its BatchNorm statistics (for error messages and docs).
 *
 * @example
 * ```ts
 * import { ZEROQ_BATCHNORM_HELP } from "./bn_taps.ts";
 * if (!ZEROQ_BATCHNORM_HELP.includes("TrainingMode.PRESERVE")) throw new Error("bad");
 * ```
 */
export const ZEROQ_BATCHNORM_HELP: string =
  "ZeroQ distils inputs whose per-layer statistics match the running mean and " +
  "variance stored in the model's BatchNormalization layers, so it needs a model that keeps them. Export from " +
  "PyTorch with `torch.onnx.export(model.eval(), x, path, training=torch.onnx.TrainingMode.PRESERVE, " +
  "do_constant_folding=False)` (the default TrainingMode.EVAL with constant folding fuses BatchNorm into the " +
  "convolutions); do not run onnxruntime / onnx-simplifier fusions before quantlab; quantlab's own PTQ folds BN " +
  "later, on its copy.";

/** One BatchNormalization and the value whose statistics ZeroQ matches to it. */
export interface BatchNormTap {
  /** The BatchNormalization node's name (or its output when unnamed). */
  readonly node: string;
  /** The value feeding the BN (a Conv output in Conv-BN networks), `[N, C, ...]`. */
  readonly value: string;
  /** Op type of the value's producer (`"Conv"` normally; a graph input when empty). */
  readonly producer: string;
  /** Channels. */
  readonly channels: number;
  /** Running mean per channel (the target of the per-sample channel means). */
  readonly mean: Float32Array;
  /** `sqrt(running_var + ZEROQ_EPS)` per channel (the target of the per-sample channel standard deviations). */
  readonly std: Float32Array;
}

function floatInit(model: OnnxModel, name: string, what: string): Float32Array {
  const t = model.graph.initializer.find((x) => x.name === name);
  const v = t ? tensorValues(t) : undefined;
  if (!(v instanceof Float32Array)) {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${model.source}: BatchNormalization ${what} "${name}" is not a float32 initializer. ${ZEROQ_BATCHNORM_HELP}`,
    );
  }
  return v;
}

/**
 * The BatchNorm taps of `model`, in graph order. Throws `UNSUPPORTED` (message: why, and how to export a model
 * that keeps BN) when the model has no inference-mode BatchNormalization with constant statistics, which
 * includes models whose BN was folded into Conv at export.
 *
 * @example
 * ```ts
 * import { findBatchNormTaps } from "./bn_taps.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(17);
 * const f = (name: string, v: number[]) => makeTensorProto(name, new Float32Array(v), [v.length]);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.initializer.push(makeTensorProto("w", new Float32Array([1]), [1, 1, 1, 1]), f("g", [1]), f("b", [0]), f("m", [2]), f("v", [9]));
 * p.graph.node.push({ input: ["x", "w"], output: ["c"], name: "conv", opType: "Conv", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["c", "g", "b", "m", "v"], output: ["y"], name: "bn", opType: "BatchNormalization", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const [t] = findBatchNormTaps(OnnxModel.fromProto(p));
 * if (t.value !== "c" || t.producer !== "Conv" || t.mean[0] !== 2 || Math.abs(t.std[0] - 3) > 1e-6) throw new Error("bad");
 * ```
 */
export function findBatchNormTaps(model: OnnxModel): BatchNormTap[] {
  const g = model.graph;
  const ix = indexGraph(g);
  const taps: BatchNormTap[] = [];
  for (const n of g.node) {
    if (n.opType !== "BatchNormalization" || (n.domain !== "" && n.domain !== "ai.onnx")) continue;
    const label = n.name || n.output[0];
    const mean = floatInit(model, n.input[3], `${label} running mean`);
    const variance = floatInit(model, n.input[4], `${label} running variance`);
    if (mean.length !== variance.length || mean.length === 0) {
      throw new QuantlabError(
        "MALFORMED_MODEL",
        `${model.source}: BatchNormalization ${label} has ${mean.length} means and ${variance.length} variances`,
      );
    }
    const std = new Float32Array(variance.length);
    for (let c = 0; c < std.length; c++) std[c] = Math.sqrt(variance[c] + ZEROQ_EPS);
    const p = ix.producer.get(n.input[0]);
    taps.push({
      node: label,
      value: n.input[0],
      producer: p === undefined ? "" : g.node[p].opType,
      channels: mean.length,
      mean: mean.slice(),
      std,
    });
  }
  if (taps.length === 0) {
    const convs = g.node.filter((n) => n.opType === "Conv");
    const folded = convs.length > 0 && convs.every((n) => n.input[2]);
    throw new QuantlabError(
      "UNSUPPORTED",
      `${model.source}: no BatchNormalization layer${
        folded ? ` (its ${convs.length} Conv layers all carry a bias: BatchNorm was probably folded into them)` : ""
      }. ${ZEROQ_BATCHNORM_HELP}`,
    );
  }
  return taps;
}
