/**
 * Lowering a QDQ model to integer operators (the "QOperator" format): each `DequantizeLinear -> op ->
 * [Relu] -> QuantizeLinear` group becomes one integer node, so only the model's boundaries keep
 * QuantizeLinear/DequantizeLinear.
 *
 * | float group | integer node |
 * |---|---|
 * | Conv (+ int32 bias) [+ Relu] | QLinearConv |
 * | MatMul [+ Relu] | QLinearMatMul (per-column weight scales) |
 * | Gemm (+ int32 bias) [+ Relu] | com.microsoft QGemm |
 * | Add [+ Relu] | com.microsoft QLinearAdd |
 * | GlobalAveragePool / AveragePool | com.microsoft QLinearGlobalAveragePool / QLinearAveragePool |
 * | MaxPool, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Pad (same parameters in and out) | the same op on int8/uint8 |
 *
 * A fused Relu is exact only when the output zero point is the grid's lowest code (then saturation is the
 * Relu), so it is fused only then. Everything else stays in float between its DequantizeLinear and
 * QuantizeLinear and is listed in {@link LoweringResult.float}. ORT runs the contrib (com.microsoft) ops in
 * both onnxruntime-node and onnxruntime-web.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import {
  attrFloat,
  attrInt,
  GraphBuilder,
  indexGraph,
  nodeLabel,
  removeDeadNodes,
  topologicalOrder,
} from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { DATA_MOVEMENT_OPS } from "../onnx/op_classes.ts";
import type { AttributeProto, NodeProto, TensorProto } from "../onnx/proto.ts";
import { DataType, tensorValues } from "../onnx/tensor_data.ts";

/** Result of {@link lowerToQOperator}. */
export interface LoweringResult {
  /** The integer-operator model (new object). */
  readonly model: OnnxModel;
  /** Lowered groups: float op label -> integer op. */
  readonly lowered: { node: string; op: string }[];
  /** Nodes left in float between DequantizeLinear/QuantizeLinear, with the reason. */
  readonly float: { node: string; op: string; reason: string }[];
}

const MS = "com.microsoft";

interface DqInfo {
  q: string;
  s: string;
  z: string;
  node: NodeProto;
}

function sameConst(a: TensorProto | undefined, b: TensorProto | undefined): boolean {
  if (!a || !b || a.dataType !== b.dataType) return false;
  const x = tensorValues(a), y = tensorValues(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Lower a QDQ model (as written by `insertQdq`) to integer operators. Returns a new model.
 *
 * @example
 * ```ts ignore
 * import { lowerToQOperator } from "./qoperator.ts";
 * const { model, float } = lowerToQOperator(qdqModel);
 * console.log(float); // nodes kept in float, with reasons
 * ```
 */
export function lowerToQOperator(qdq: OnnxModel): LoweringResult {
  qdq.checkOpset("QOperator lowering");
  const m = qdq.clone();
  const g = m.graph;
  const b = new GraphBuilder(g);
  const ix = indexGraph(g);
  const outputs = new Set(g.output.map((v) => v.name));
  const lowered: { node: string; op: string }[] = [];
  const float: { node: string; op: string; reason: string }[] = [];
  const remove = new Set<NodeProto>();
  const replace = new Map<NodeProto, NodeProto>();
  let usesMs = false;

  const dq = (name: string): DqInfo | undefined => {
    const i = ix.producer.get(name);
    if (i === undefined) return undefined;
    const n = g.node[i];
    if (n.opType !== "DequantizeLinear" || n.domain !== "") return undefined;
    return { q: n.input[0], s: n.input[1], z: n.input[2] ?? "", node: n };
  };
  const soleConsumer = (name: string): NodeProto | undefined => {
    if (outputs.has(name)) return undefined;
    const c = ix.consumers.get(name) ?? [];
    return c.length === 1 ? g.node[c[0]] : undefined;
  };
  /** Follow `y` through an optional Relu to its QuantizeLinear; relu fused only when zp is the lowest code. */
  const outQ = (y: string, allowRelu: boolean): { q: NodeProto; relu?: NodeProto } | { reason: string } => {
    let c = soleConsumer(y);
    let relu: NodeProto | undefined;
    if (c && c.opType === "Relu" && allowRelu) {
      relu = c;
      c = soleConsumer(c.output[0]);
    }
    if (!c || c.opType !== "QuantizeLinear") {
      return { reason: "output is not quantized (no sole QuantizeLinear consumer)" };
    }
    if (relu) {
      const zp = ix.initializers.get(c.input[2] ?? "");
      const lowest = zp?.dataType === DataType.INT8 ? -128 : 0;
      if (!zp || tensorValues(zp)[0] !== lowest) {
        return { reason: "Relu cannot fuse: output zero point is not the lowest code" };
      }
    }
    return { q: c, relu };
  };
  const copyAttrs = (n: NodeProto, keep: (a: AttributeProto) => boolean = () => true) =>
    n.attribute.filter(keep).map((a) => structuredClone(a));

  for (const n of g.node) {
    if (n.domain !== "" || n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear" || remove.has(n)) continue;
    const label = nodeLabel(n);
    const keepFloat = (reason: string) => float.push({ node: label, op: n.opType, reason });
    const op = n.opType;
    const compute = op === "Conv" || op === "MatMul" || op === "Gemm" || op === "Add";
    const pool = op === "GlobalAveragePool" || op === "AveragePool";
    if (!compute && !pool && !DATA_MOVEMENT_OPS.has(op)) {
      if (n.opType !== "Identity") keepFloat("no integer lowering for this op");
      continue;
    }
    const nIn = op === "Conv" || op === "Gemm" ? Math.min(n.input.length, 3) : op === "MatMul" || op === "Add" ? 2 : 1;
    const ins: DqInfo[] = [];
    for (let k = 0; k < nIn; k++) {
      const d = n.input[k] ? dq(n.input[k]) : undefined;
      if (!d) break;
      ins.push(d);
    }
    if (ins.length !== nIn) {
      keepFloat(`input ${ins.length} ("${n.input[ins.length]}") does not come from a DequantizeLinear`);
      continue;
    }
    const out = outQ(n.output[0], compute);
    if ("reason" in out) {
      keepFloat(out.reason);
      continue;
    }
    const y = out.q.output[0], ys = out.q.input[1], yz = out.q.input[2] ?? "";
    let node: NodeProto;
    const [x, w, bias] = ins;
    if (op === "Conv") {
      if (bias && ix.initializers.get(bias.q)?.dataType !== DataType.INT32) {
        keepFloat("bias is not int32");
        continue;
      }
      node = mk("QLinearConv", [x.q, x.s, x.z, w.q, w.s, w.z, ys, yz, ...(bias ? [bias.q] : [])], y, copyAttrs(n));
    } else if (op === "MatMul") {
      node = mk("QLinearMatMul", [x.q, x.s, x.z, w.q, w.s, w.z, ys, yz], y, []);
    } else if (op === "Gemm") {
      if (attrInt(n, "transA", 0) !== 0 || attrFloat(n, "beta", 1) !== 1) {
        keepFloat("Gemm with transA or beta != 1");
        continue;
      }
      if (bias && ix.initializers.get(bias.q)?.dataType !== DataType.INT32) {
        keepFloat("bias is not int32");
        continue;
      }
      node = mk(
        "QGemm",
        [x.q, x.s, x.z, w.q, w.s, w.z, bias ? bias.q : "", ys, yz],
        y,
        copyAttrs(n, (a) => a.name !== "beta"),
        MS,
      );
    } else if (op === "Add") {
      node = mk("QLinearAdd", [x.q, x.s, x.z, w.q, w.s, w.z, ys, yz], y, [], MS);
    } else if (op === "GlobalAveragePool") {
      node = mk("QLinearGlobalAveragePool", [x.q, x.s, x.z, ys, yz], y, [{ name: "channels_last", type: 2, i: 0 }], MS);
    } else if (op === "AveragePool") {
      node = mk("QLinearAveragePool", [x.q, x.s, x.z, ys, yz], y, copyAttrs(n), MS);
    } else {
      // Data movement: exact only when input and output share parameters.
      if (
        !sameConst(ix.initializers.get(x.s), ix.initializers.get(ys)) ||
        !sameConst(ix.initializers.get(x.z), ix.initializers.get(yz))
      ) {
        keepFloat("input and output quantization parameters differ");
        continue;
      }
      if (op === "MaxPool" && n.output.length > 1 && n.output[1]) {
        keepFloat("MaxPool with indices output");
        continue;
      }
      const rest = n.input.slice(1);
      if (op === "Pad") {
        if (rest[1]) {
          keepFloat("Pad with an explicit constant value");
          continue;
        }
        rest[1] = yz; // pad with the code of real 0
      }
      node = mk(op, [x.q, ...rest], y, copyAttrs(n));
    }
    if (node.domain === MS) usesMs = true;
    replace.set(n, node);
    if (out.relu) remove.add(out.relu);
    remove.add(out.q);
    lowered.push({ node: label, op: node.opType });
  }

  function mk(opType: string, input: string[], output: string, attribute: AttributeProto[], domain = ""): NodeProto {
    while (input.length && input[input.length - 1] === "") input.pop();
    return { input, output: [output], name: b.fresh(`${output}_${opType}`), opType, domain, attribute };
  }

  g.node = g.node.filter((n) => !remove.has(n)).map((n) => replace.get(n) ?? n);
  if (usesMs) m.requireOpset(MS, 1);
  removeDeadNodes(g);
  g.node = topologicalOrder(g);
  try {
    m.validate();
  } catch (e) {
    throw new QuantlabError(
      "MALFORMED_MODEL",
      `QOperator lowering produced an invalid graph: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return { model: m, lowered, float };
}
