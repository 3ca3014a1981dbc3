/**
 * QDQ insertion: turn a float ONNX model into a fake-quantized one with QuantizeLinear/DequantizeLinear pairs,
 * the format ONNX Runtime's own quantization tool writes.
 *
 * - Weights of Conv, Gemm and MatMul (float initializers) are quantized with any uniform quantlab quantizer
 *   (`quantizer().int(8).symmetric().perChannel()` etc.; per-channel axis = the output channel: 0 for Conv and
 *   Gemm with transB, 1 for MatMul and Gemm without) and stored as int8/uint8 codes behind a DequantizeLinear.
 *   The dequantized weight equals quantlab's `fakeQuantizeTensor` bit for bit.
 * - Biases of Conv and Gemm become int32 with scale `x_scale * w_scale` and zero point 0 (as integer kernels
 *   need), behind a DequantizeLinear.
 * - Activations (per-tensor; the quantizer's calibrator observes them over calibration data) get a
 *   QuantizeLinear -> DequantizeLinear pair: graph inputs and outputs of Conv, Gemm, MatMul, Add, Mul, Relu,
 *   Clip, pooling and shape ops. A Conv/Gemm/MatMul/Add output consumed only by a Relu is not quantized
 *   (the pair is fused as integer kernels do); data-movement ops (MaxPool, Flatten, Reshape, Transpose, Squeeze,
 *   Unsqueeze, Pad) share their input's parameters, so they commute exactly with quantization.
 *   Grids narrower than 8 bits are enforced with a Clip before the QuantizeLinear.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { inferElemTypes } from "../onnx/capture.ts";
import { attrInt, GraphBuilder, indexGraph, intAttr, removeDeadNodes } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { DataType, tensorValues } from "../onnx/tensor_data.ts";
import { quantizeTensor } from "../quant/affine.ts";
import type { QuantParams } from "../quant/params.ts";
import type { QuantizerBuilder } from "../quant/quantizer.ts";
import { Tensor } from "../tensor/tensor.ts";

/**
 * Ops whose output activations are quantized.
 *
 * @example
 * ```ts
 * import { QUANTIZED_OPS } from "./qdq.ts";
 * if (!QUANTIZED_OPS.has("Conv") || !QUANTIZED_OPS.has("Gemm") || QUANTIZED_OPS.has("Softmax")) throw new Error("bad");
 * ```
 */
export const QUANTIZED_OPS: ReadonlySet<string> = new Set([
  "Conv",
  "Gemm",
  "MatMul",
  "Add",
  "Mul",
  "Relu",
  "Clip",
  "MaxPool",
  "AveragePool",
  "GlobalAveragePool",
  "Flatten",
  "Reshape",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Pad",
]);

/**
 * Data-movement ops whose output shares the input's quantization parameters.
 *
 * @example
 * ```ts
 * import { PASS_THROUGH_OPS } from "./qdq.ts";
 * if (!PASS_THROUGH_OPS.has("MaxPool") || PASS_THROUGH_OPS.has("Conv")) throw new Error("bad");
 * ```
 */
export const PASS_THROUGH_OPS: ReadonlySet<string> = new Set([
  "MaxPool",
  "Flatten",
  "Reshape",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Pad",
]);

const FUSE_RELU = new Set(["Conv", "Gemm", "MatMul", "Add"]);
const WEIGHT_OPS = new Set(["Conv", "Gemm", "MatMul"]);

/** Which activations to calibrate and which share another's parameters. */
export interface ActivationPlan {
  /** Tensors that get their own observer, in graph order. */
  readonly observe: readonly string[];
  /** Tensor -> the tensor whose parameters it reuses (pass-through ops). */
  readonly share: ReadonlyMap<string, string>;
  /** Float constant inputs of Add/Mul quantized per-tensor from their own values. */
  readonly constants: readonly string[];
}

/**
 * Decide which activation tensors get quantization parameters (see the module doc for the rules).
 *
 * @example
 * ```ts
 * import { planActivations } from "./qdq.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const p = emptyModel(13);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.node.push({ input: ["x"], output: ["r"], name: "", opType: "Relu", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["r"], output: ["y"], name: "", opType: "Flatten", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const plan = planActivations(OnnxModel.fromProto(p));
 * if (plan.observe.join() !== "x,r" || plan.share.get("y") !== "r") throw new Error("bad");
 * ```
 */
export function planActivations(model: OnnxModel): ActivationPlan {
  const g = model.graph;
  const ix = indexGraph(g);
  const types = inferElemTypes(model);
  const outputs = new Set(g.output.map((v) => v.name));
  const isFloat = (name: string) => types.get(name) === DataType.FLOAT;
  const quantized = new Set<string>();
  const observe: string[] = [];
  const share = new Map<string, string>();
  const constants: string[] = [];
  const root = (name: string): string => share.get(name) ?? name;
  // Graph inputs feeding quantized ops.
  for (const name of ix.inputs) {
    if (!isFloat(name)) continue;
    if ((ix.consumers.get(name) ?? []).some((i) => QUANTIZED_OPS.has(g.node[i].opType) && g.node[i].domain === "")) {
      quantized.add(name);
      observe.push(name);
    }
  }
  for (const n of g.node) {
    if (n.domain !== "" || !QUANTIZED_OPS.has(n.opType)) continue;
    if (n.opType === "Add" || n.opType === "Mul") {
      for (const x of n.input) if (ix.initializers.has(x) && isFloat(x) && !constants.includes(x)) constants.push(x);
    }
    const y = n.output[0];
    if (!y || !isFloat(y)) continue;
    const cons = ix.consumers.get(y) ?? [];
    if (FUSE_RELU.has(n.opType) && !outputs.has(y) && cons.length === 1 && g.node[cons[0]].opType === "Relu") continue;
    if (PASS_THROUGH_OPS.has(n.opType) && quantized.has(n.input[0])) {
      share.set(y, root(n.input[0]));
      quantized.add(y);
      continue;
    }
    quantized.add(y);
    observe.push(y);
  }
  return { observe, share, constants };
}

/** Result of {@link insertQdq}. */
export interface QdqResult {
  /** The QDQ model (new object). */
  readonly model: OnnxModel;
  /** Parameters of each quantized weight initializer (by its name in the float model). */
  readonly weightParams: ReadonlyMap<string, QuantParams>;
  /** Parameters of each quantized activation tensor. */
  readonly activationParams: ReadonlyMap<string, QuantParams>;
  /** Nominal weight bits per quantized weight element (for size reports). */
  readonly weightBits: number;
}

/**
 * The output-channel axis of an op's weight.
 *
 * @example
 * ```ts
 * import { weightAxis } from "./qdq.ts";
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

function storageType(p: QuantParams, what: string): { code: number; make: (n: number) => Int8Array | Uint8Array } {
  if (p.qmin >= -128 && p.qmax <= 127) return { code: DataType.INT8, make: (n) => new Int8Array(n) };
  if (p.qmin >= 0 && p.qmax <= 255) return { code: DataType.UINT8, make: (n) => new Uint8Array(n) };
  throw new QuantlabError(
    "UNSUPPORTED",
    `${what}: QDQ export needs an 8-bit-or-narrower grid, got [${p.qmin}, ${p.qmax}]`,
  );
}

/**
 * Fit weight parameters for one weight tensor with the builder (axis forced to the op's output channel).
 *
 * @example
 * ```ts
 * import { fitWeight } from "./qdq.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const w = Tensor.from([1, -2, 0.5, 4], [2, 2]);
 * const p = fitWeight(quantizer().int(8).symmetric().perChannel(1), w, 0, "W");
 * if (p.scale.length !== 2 || Math.abs(p.scale[1] - 4 / 127) > 1e-6) throw new Error("bad");
 * ```
 */
export function fitWeight(weights: QuantizerBuilder, w: Tensor<"float32">, axis: number, name: string): QuantParams {
  const g = weights.config.granularity;
  if (g.kind === "group") {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${name}: per-group weight quantization has no QDQ form before opset 21; use per-channel`,
    );
  }
  const b = g.kind === "channel" ? weights.perChannel(axis) : weights;
  return b.fit(w, undefined, name).params;
}

/**
 * Insert QuantizeLinear/DequantizeLinear pairs. `activationParams` holds parameters for every tensor in
 * `planActivations(model).observe` (from calibration); shared tensors reuse their source's parameters.
 * Returns a new model; the input is not modified.
 *
 * @example
 * ```ts
 * import { insertQdq, planActivations } from "./qdq.ts";
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
 * const act = quantizer().uint(8).asymmetric();
 * const params = new Map(planActivations(model).observe.map((t) => [t, act.fit([-1, 1]).params]));
 * const { model: q } = insertQdq(model, params, quantizer().int(8).perChannel());
 * const ops = q.graph.node.map((n) => n.opType).join();
 * if (ops !== "QuantizeLinear,DequantizeLinear,DequantizeLinear,MatMul,QuantizeLinear,DequantizeLinear") throw new Error(ops);
 * ```
 */
export function insertQdq(
  model: OnnxModel,
  activationParams: ReadonlyMap<string, QuantParams>,
  weights: QuantizerBuilder,
  options: { quantizeBias?: boolean } = {},
): QdqResult {
  model.checkOpset("QDQ insertion");
  const plan = planActivations(model);
  const m = model.clone();
  const g = m.graph;
  const b = new GraphBuilder(g);
  const ix = indexGraph(g);
  const act = new Map<string, QuantParams>();
  for (const t of plan.observe) {
    const p = activationParams.get(t);
    if (!p) throw new QuantlabError("NOT_CALIBRATED", `${model.source}: no activation parameters for "${t}"`);
    if (p.granularity.kind !== "tensor") {
      throw new QuantlabError(
        "UNSUPPORTED",
        `activation "${t}": QDQ activations are per-tensor, got ${p.granularity.kind}`,
      );
    }
    act.set(t, p);
  }
  for (const [t, src] of plan.share) act.set(t, act.get(src)!);
  const newNodes: typeof g.node = [];
  const qparamNames = new Map<QuantParams, { s: string; z: string }>();
  const qparams = (p: QuantParams, base: string) => {
    let r = qparamNames.get(p);
    if (!r) {
      const st = storageType(p, base);
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
    input: string[],
    output: string[],
    attribute = [] as ReturnType<typeof intAttr>[],
  ) => ({
    input,
    output,
    name: b.fresh(`${output[0]}_${opType}`),
    opType,
    domain: "",
    attribute,
  });
  /** Emit Q/DQ for tensor `t` whose float value is named `src`; DQ writes `dst`. */
  const qdq = (src: string, dst: string, p: QuantParams, base: string) => {
    const { s, z } = qparams(p, base);
    let x = src;
    const full = storageType(p, base).code === DataType.INT8 ? [-128, 127] : [0, 255];
    if (p.qmin !== full[0] || p.qmax !== full[1]) {
      const lo = b.initializer(
        `${base}_clip_min`,
        new Float32Array([Math.fround((p.qmin - p.zeroPoint[0]) * p.scale[0])]),
        [],
      );
      const hi = b.initializer(
        `${base}_clip_max`,
        new Float32Array([Math.fround((p.qmax - p.zeroPoint[0]) * p.scale[0])]),
        [],
      );
      const c = b.fresh(`${base}_clipped`);
      newNodes.push(mkNode("Clip", [x, lo, hi], [c]));
      x = c;
    }
    const q = b.fresh(`${base}_quantized`);
    newNodes.push(mkNode("QuantizeLinear", [x, s, z], [q]));
    newNodes.push(mkNode("DequantizeLinear", [q, s, z], [dst]));
  };
  // Graph inputs: Q/DQ up front, consumers rewired to the DQ output.
  const renamed = new Map<string, string>();
  for (const t of plan.observe) {
    if (!ix.inputs.has(t)) continue;
    const dq = b.fresh(`${t}_dequantized`);
    qdq(t, dq, act.get(t)!, t);
    renamed.set(t, dq);
  }
  const weightParams = new Map<string, QuantParams>();
  let weightBits = 0;
  for (const n of g.node) {
    n.input = n.input.map((x) => renamed.get(x) ?? x);
    // Weights and biases.
    if (n.domain === "" && WEIGHT_OPS.has(n.opType) && ix.initializers.has(n.input[1])) {
      const wT = ix.initializers.get(n.input[1])!;
      if (wT.dataType === DataType.FLOAT) {
        const axis = weightAxis(n.opType, attrInt(n, "transB", 0) === 1);
        const wName = n.input[1];
        const w = new Tensor<"float32">(tensorValues(wT) as Float32Array, wT.dims, wName);
        const p = fitWeight(weights, w, axis, wName);
        weightParams.set(wName, p);
        weightBits = p.bits;
        const st = storageType(p, wName);
        const codes = quantizeTensor(w, p, { name: wName });
        const q = st.make(codes.size);
        q.set(codes.data as ArrayLike<number>);
        const perChannel = p.granularity.kind === "channel";
        const dims = perChannel ? [p.scale.length] : [];
        const zp = st.make(p.zeroPoint.length);
        zp.set(p.zeroPoint);
        const qn = b.initializer(`${wName}_quantized`, q, wT.dims);
        const sn = b.initializer(`${wName}_scale`, p.scale.slice(), dims);
        const zn = b.initializer(`${wName}_zero_point`, zp, dims);
        const dq = b.fresh(`${wName}_dequantized`);
        newNodes.push(mkNode("DequantizeLinear", [qn, sn, zn], [dq], perChannel ? [intAttr("axis", axis)] : []));
        n.input[1] = dq;
        const xp = act.get(n.input[0]) ?? act.get([...renamed].find(([, v]) => v === n.input[0])?.[0] ?? "");
        const biasName = n.input[2];
        if (
          (options.quantizeBias ?? true) && n.opType !== "MatMul" && biasName && ix.initializers.has(biasName) && xp
        ) {
          const bT = ix.initializers.get(biasName)!;
          const bv = tensorValues(bT);
          const outCh = p.scale.length === 1 ? bv.length : p.scale.length;
          if (bv instanceof Float32Array && bT.dims.length === 1 && bv.length === outCh) {
            const bs = new Float32Array(bv.length);
            const bq = new Int32Array(bv.length);
            for (let c = 0; c < bv.length; c++) {
              bs[c] = Math.fround(xp.scale[0] * p.scale[perChannel ? c : 0]);
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
    }
    // Float constants of Add/Mul: per-tensor parameters from their own values.
    for (let k = 0; k < n.input.length; k++) {
      const x = n.input[k];
      if (!plan.constants.includes(x)) continue;
      const p = activationParams.get(x);
      if (!p) continue;
      const dq = b.fresh(`${x}_dequantized`);
      qdq(x, dq, p, x);
      n.input[k] = dq;
    }
    newNodes.push(n);
    // Output activation: producer writes `<t>_float`, Q/DQ restores the original name.
    const y = n.output[0];
    const p = y ? act.get(y) : undefined;
    if (p) {
      const f = b.fresh(`${y}_float`);
      n.output[0] = f;
      qdq(f, y, p, y);
    }
  }
  g.node = newNodes;
  // The float weights were replaced by their int8 codes + DequantizeLinear: drop them so the QDQ model is not
  // larger than the float one.
  removeDeadNodes(g);
  m.validate();
  const allAct = new Map(act);
  for (const c of plan.constants) {
    const p = activationParams.get(c);
    if (p) allAct.set(c, p);
  }
  return { model: m, weightParams, activationParams: allAct, weightBits };
}
