/**
 * Exposing intermediate values as graph outputs (for calibration, per-layer error and shape capture) and a
 * small element-type inference that makes those outputs typed, as ONNX Runtime requires.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { attrInt, getAttribute } from "./graph.ts";
import type { OnnxModel } from "./model.ts";
import { createSession, type FeedValue, type SessionOptions } from "./session.ts";
import { DataType } from "./tensor_data.ts";

const BOOL_OPS = new Set([
  "Equal",
  "Greater",
  "Less",
  "GreaterOrEqual",
  "LessOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "IsNaN",
  "IsInf",
]);
const INT64_OPS = new Set(["Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression"]);

/**
 * Infer the element type of every value: initializers and declared types first, then per op
 * (Cast's `to`, Shape -> int64, QuantizeLinear -> its zero point's type, DequantizeLinear -> float32,
 * QLinear* -> the output zero point's type, comparisons -> bool, most others -> first input's type).
 *
 * @example
 * ```ts
 * import { inferElemTypes } from "./capture.ts";
 * import { OnnxModel as Model } from "./model.ts";
 * import { emptyModel } from "./proto.ts";
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.node.push({ input: ["x"], output: ["s"], name: "", opType: "Shape", domain: "", attribute: [] });
 * p.graph.output.push({ name: "s" });
 * if (inferElemTypes(Model.fromProto(p)).get("s") !== 7) throw new Error("bad");
 * ```
 */
export function inferElemTypes(model: OnnxModel): Map<string, number> {
  const g = model.graph;
  const types = new Map<string, number>();
  for (const t of g.initializer) types.set(t.name, t.dataType);
  for (const v of [...g.input, ...g.valueInfo, ...g.output]) {
    const e = v.type?.tensorType?.elemType;
    if (e) types.set(v.name, e);
  }
  for (const n of g.node) {
    const first = types.get(n.input[0] ?? "");
    let out: number | undefined;
    const op = n.opType;
    if (op === "Cast") out = attrInt(n, "to", 0);
    else if (op === "Constant") {
      const a = getAttribute(n, "value");
      out = a?.t?.dataType ??
        (getAttribute(n, "value_float") || getAttribute(n, "value_floats") ? DataType.FLOAT : DataType.INT64);
    } else if (op === "ConstantOfShape") out = getAttribute(n, "value")?.t?.dataType ?? DataType.FLOAT;
    else if (INT64_OPS.has(op)) out = DataType.INT64;
    else if (BOOL_OPS.has(op)) out = DataType.BOOL;
    else if (op === "QuantizeLinear") out = n.input[2] ? types.get(n.input[2]) : DataType.UINT8;
    else if (op === "DequantizeLinear" || op === "DynamicQuantizeLinear") {
      out = op === "DequantizeLinear" ? DataType.FLOAT : DataType.UINT8;
    } else if (op === "QLinearConv" || op === "QLinearMatMul") out = types.get(n.input[7] ?? "");
    else if (op === "QLinearAdd" || op === "QLinearMul") out = types.get(n.input[7] ?? "") ?? first;
    else if (op === "QLinearGlobalAveragePool" || op === "QLinearAveragePool") {
      out = types.get(n.input[4] ?? "") ?? first;
    } else if (op === "QGemm") out = n.input[8] ? types.get(n.input[8]) : DataType.FLOAT;
    else if (op === "MatMulInteger" || op === "ConvInteger") out = DataType.INT32;
    else if (op === "Where") out = types.get(n.input[1]);
    else if (op === "Gather" || op === "GatherElements" || op === "Expand" || op === "Tile" || op === "Slice") {
      out = first;
    } else out = first;
    if (out) {
      for (let k = 0; k < n.output.length; k++) {
        const o = n.output[k];
        if (!o || types.has(o)) continue;
        // MaxPool's second output holds int64 indices.
        types.set(o, op === "MaxPool" && k === 1 ? DataType.INT64 : out);
      }
    }
  }
  return types;
}

/**
 * A copy of `model` whose graph outputs are `names` (appended to the existing outputs unless `replace`), each
 * typed with {@link inferElemTypes}. Throws `INVALID_ARGUMENT` naming a value that does not exist.
 *
 * @example
 * ```ts
 * import { exposeValues } from "./capture.ts";
 * import { OnnxModel as Model } from "./model.ts";
 * import { emptyModel } from "./proto.ts";
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.node.push({ input: ["x"], output: ["r"], name: "", opType: "Relu", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["r"], output: ["y"], name: "", opType: "Neg", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const m = exposeValues(Model.fromProto(p), ["r"]);
 * if (m.graph.output.map((o) => o.name).join() !== "y,r") throw new Error("bad");
 * ```
 */
export function exposeValues(
  model: OnnxModel,
  names: readonly string[],
  options: { replace?: boolean } = {},
): OnnxModel {
  const m = model.clone();
  const types = inferElemTypes(m);
  const g = m.graph;
  if (options.replace) g.output = [];
  const have = new Set(g.output.map((o) => o.name));
  for (const name of names) {
    if (have.has(name)) continue;
    const t = types.get(name);
    if (t === undefined) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${model.source}: cannot expose "${name}": no such value (or its type is unknown)`,
      );
    }
    g.output.push({ name, type: { tensorType: { elemType: t } } });
    have.add(name);
  }
  return m;
}

/**
 * Names of all node outputs in graph order (the intermediates a capture run can expose).
 *
 * @example
 * ```ts
 * import { intermediateNames } from "./capture.ts";
 * import { OnnxModel as Model } from "./model.ts";
 * import { emptyModel } from "./proto.ts";
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.node.push({ input: ["x"], output: ["r"], name: "", opType: "Relu", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["r"], output: ["y"], name: "", opType: "Neg", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * if (intermediateNames(Model.fromProto(p)).join() !== "r,y") throw new Error("bad");
 * ```
 */
export function intermediateNames(model: OnnxModel): string[] {
  const out: string[] = [];
  for (const n of model.graph.node) for (const o of n.output) if (o) out.push(o);
  return out;
}

/**
 * Run the model once on `feeds` with every intermediate exposed and record each value's shape in
 * `model.capturedShapes` (batch dimension included). Returns the same model.
 *
 * @example
 * ```ts ignore
 * import { captureShapes } from "./capture.ts";
 * await captureShapes(model, { input: Tensor.zeros([1, 1, 28, 28]) });
 * console.log(model.shape("/Flatten_output_0")); // [1, 32]
 * ```
 */
export async function captureShapes(
  model: OnnxModel,
  feeds: Record<string, FeedValue>,
  options: SessionOptions = {},
): Promise<OnnxModel> {
  const names = intermediateNames(model);
  const probe = exposeValues(model, names, { replace: true });
  const session = await createSession(probe, { ...options, cache: false });
  try {
    const out = await session.run(feeds);
    for (const [name, t] of Object.entries(out)) model.capturedShapes.set(name, Object.freeze([...t.shape]));
  } finally {
    await session.release();
  }
  return model;
}
