/**
 * The one table of ONNX op classes quantlab's model-level code relies on: which ops carry a weight, which only
 * move data (so their output can share the input's quantization parameters exactly), which may absorb a
 * following Relu in integer kernels, and which activations a QDQ model quantizes by default (ONNX Runtime's
 * static quantizer covers the same set). Everything that asks "what kind of op is this" reads it here.
 *
 * @module
 */
import type { NodeProto } from "./proto.ts";

/**
 * Ops with a weight input (input 1) that quantization treats as a layer.
 *
 * @example
 * ```ts
 * import { WEIGHT_OPS } from "./op_classes.ts";
 * if (!WEIGHT_OPS.has("Conv") || WEIGHT_OPS.has("Relu")) throw new Error("bad");
 * ```
 */
export const WEIGHT_OPS: ReadonlySet<string> = new Set(["Conv", "Gemm", "MatMul"]);

/**
 * Data-movement ops: their output holds a subset or rearrangement of the input's values, so it shares the
 * input's quantization parameters and commutes exactly with quantization.
 *
 * @example
 * ```ts
 * import { DATA_MOVEMENT_OPS } from "./op_classes.ts";
 * if (!DATA_MOVEMENT_OPS.has("MaxPool") || DATA_MOVEMENT_OPS.has("AveragePool")) throw new Error("bad");
 * ```
 */
export const DATA_MOVEMENT_OPS: ReadonlySet<string> = new Set([
  "MaxPool",
  "Flatten",
  "Reshape",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Pad",
]);

/**
 * Ops whose float output is quantized by the default ("all") activation placement.
 *
 * @example
 * ```ts
 * import { ACTIVATION_OPS } from "./op_classes.ts";
 * if (!ACTIVATION_OPS.has("Add") || ACTIVATION_OPS.has("Softmax")) throw new Error("bad");
 * ```
 */
export const ACTIVATION_OPS: ReadonlySet<string> = new Set([
  "Conv",
  "Gemm",
  "MatMul",
  "Add",
  "Mul",
  "Relu",
  "Clip",
  "AveragePool",
  "GlobalAveragePool",
  ...DATA_MOVEMENT_OPS,
]);

/**
 * Ops an integer kernel fuses with a following Relu (the pair is quantized once, after the Relu).
 *
 * @example
 * ```ts
 * import { RELU_FUSING_OPS } from "./op_classes.ts";
 * if (!RELU_FUSING_OPS.has("Conv") || RELU_FUSING_OPS.has("MaxPool")) throw new Error("bad");
 * ```
 */
export const RELU_FUSING_OPS: ReadonlySet<string> = new Set(["Conv", "Gemm", "MatMul", "Add"]);

/**
 * Whether a node is a standard-domain op of one of the given classes.
 *
 * @example
 * ```ts
 * import { isOp, WEIGHT_OPS } from "./op_classes.ts";
 * if (!isOp({ opType: "Conv", domain: "" }, WEIGHT_OPS) || isOp({ opType: "Conv", domain: "x" }, WEIGHT_OPS)) {
 *   throw new Error("bad");
 * }
 * ```
 */
export function isOp(n: Pick<NodeProto, "opType" | "domain">, cls: ReadonlySet<string>): boolean {
  return (n.domain === "" || n.domain === "ai.onnx") && cls.has(n.opType);
}

/**
 * The output-channel axis of a weight op's weight: 0 for Conv and for Gemm with `transB`, 1 for MatMul and
 * Gemm without.
 *
 * @example
 * ```ts
 * import { weightAxis } from "./op_classes.ts";
 * if (weightAxis("Conv", false) !== 0 || weightAxis("Gemm", true) !== 0 || weightAxis("MatMul", false) !== 1) {
 *   throw new Error("bad");
 * }
 * ```
 */
export function weightAxis(opType: string, transB: boolean): number {
  if (opType === "Conv") return 0;
  if (opType === "Gemm") return transB ? 0 : 1;
  return 1;
}
