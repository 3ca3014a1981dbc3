/**
 * The per-layer AdaRound objective as one ONNX gradient graph (built with lib/grad): for a Conv (grouped and
 * depthwise included, attributes copied), Gemm or MatMul layer with weight `w`, fixed quantizer (scale `s`, zero
 * point `zp`, grid `[qmin, qmax]`, per tensor or per output channel) the graph computes
 *
 *   `w~ = (clip(floor(w / s) + zp + h(V), qmin, qmax) - zp) * s`,  `h(V) = clip(sigmoid(V) 1.2 - 0.1, 0, 1)`
 *   `y = act(layer(x, w~, b))`
 *   `loss = mean over batch and positions of sum over channels (y - t)^2 + reg * sum(1 - |2 h(V) - 1|^beta)`
 *
 * (AIMET `AdaroundLoss`: `norm(y - t, dim=1)^2` then `.mean()`; the channel axis is 1 for Conv and Gemm and the last
 * axis for MatMul). `x` (layer input), `t` (float target after the activation), `beta` and `reg` (scalars; `reg` is 0
 * during the warm start) are graph inputs; V is the only parameter. The graph's backward is lib/grad's, so the
 * rectified sigmoid, the clamps (gradient zero outside, inclusive bounds, as `torch.clamp`), Abs/Log/Exp and the
 * layer's own rule are the ones the gradient checks cover.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { buildGradientGraph, type GradientGraph } from "../grad/compiler.ts";
import { customLoss } from "../grad/losses.ts";
import { attrFloat, indexGraph, nodeLabel } from "../onnx/graph.ts";
import { OnnxModel } from "../onnx/model.ts";
import { type AttributeProto, emptyModel, type NodeProto, type TensorProto } from "../onnx/proto.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { DataType, makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import type { QuantParams } from "../quant/params.ts";
import { Tensor } from "../tensor/tensor.ts";
import { ADAROUND_GAMMA, ADAROUND_ZETA } from "./rectified_sigmoid.ts";

/** The activation AdaRound applies after the layer (AIMET: the module's immediately following activation). */
export type FollowingActivation =
  | { readonly opType: "Relu" }
  | { readonly opType: "Clip"; readonly min: number; readonly max: number };

/**
 * The activation that alone consumes `n`'s output (Relu, or Clip with constant bounds), if any (AIMET and BRECQ
 * fold it into the reconstruction).
 *
 * @example
 * ```ts
 * import { followingActivation } from "./layer_graph.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const m = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url));
 * const conv = m.graph.node.find((n) => n.name === "conv1")!;
 * if (followingActivation(m, conv) !== undefined) throw new Error("conv1 feeds a BatchNormalization");
 * ```
 */
export function followingActivation(model: OnnxModel, n: NodeProto): FollowingActivation | undefined {
  const g = model.graph;
  const y = n.output[0];
  if (g.output.some((o) => o.name === y)) return undefined;
  const users = g.node.filter((m) => m.input.includes(y));
  if (users.length !== 1) return undefined;
  const u = users[0];
  if (u.opType === "Relu") return { opType: "Relu" };
  if (u.opType === "Clip") {
    const inits = indexGraph(g).initializers;
    const bound = (k: number, attr: string, fallback: number): number | undefined => {
      if (u.input.length > k && u.input[k]) {
        const t = inits.get(u.input[k]);
        return t ? (tensorValues(t) as Float32Array)[0] : undefined;
      }
      return model.opset() < 11 ? attrFloat(u, attr, fallback) : fallback;
    };
    const min = bound(1, "min", -3.4028234663852886e38), max = bound(2, "max", 3.4028234663852886e38);
    if (min !== undefined && max !== undefined) return { opType: "Clip", min, max };
  }
  return undefined;
}

/**
 * The value a layer is reconstructed at: the output of its following activation, or its own output.
 *
 * @example
 * ```ts
 * import { followingActivation, reconstructionTarget } from "./layer_graph.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const m = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url));
 * const fc = m.graph.node.find((n) => n.name === "fc")!;
 * if (reconstructionTarget(m, fc, followingActivation(m, fc)) !== "logits") throw new Error("bad");
 * ```
 */
export function reconstructionTarget(model: OnnxModel, n: NodeProto, act: FollowingActivation | undefined): string {
  if (!act) return n.output[0];
  return model.graph.node.find((m) => m.input.includes(n.output[0]))!.output[0];
}

/** One layer to round: the float node and its fixed quantizer. */
export interface RoundingLayer {
  /** Label for messages and reports. */
  readonly label: string;
  /** The float node (op type and attributes are copied). */
  readonly node: NodeProto;
  /** Float weights. */
  readonly weight: Float32Array;
  /** Weight dims. */
  readonly dims: readonly number[];
  /** Output-channel axis of the weight (the quantizer's channel axis when per channel). */
  readonly axis: number;
  /** The fixed uniform quantizer parameters (one slot per tensor or per channel along `axis`). */
  readonly params: QuantParams;
  /** Float bias and its dims, if any. */
  readonly bias?: { readonly values: Float32Array; readonly dims: readonly number[] };
  /** The following activation, if any. */
  readonly activation?: FollowingActivation;
}

/**
 * Names of the inputs and the parameter of the per-layer graph.
 *
 * @example
 * ```ts
 * import { ROUNDING_NAMES } from "./layer_graph.ts";
 * if (ROUNDING_NAMES.variable !== "adaround_v") throw new Error("bad");
 * ```
 */
export const ROUNDING_NAMES = {
  input: "adaround_x",
  target: "adaround_target",
  beta: "adaround_beta",
  reg: "adaround_reg",
  variable: "adaround_v",
} as const;

/**
 * Per-element slot index (the channel along `axis`, or 0 per tensor).
 *
 * @example
 * ```ts
 * import { slotIndex } from "./layer_graph.ts";
 * if (slotIndex([2, 3], 0, 2).join() !== "0,0,0,1,1,1") throw new Error("bad");
 * ```
 */
export function slotIndex(dims: readonly number[], axis: number, slots: number): Int32Array {
  let n = 1;
  for (const d of dims) n *= d;
  const out = new Int32Array(n);
  if (slots === 1) return out;
  let inner = 1;
  for (let k = axis + 1; k < dims.length; k++) inner *= dims[k];
  const c = dims[axis];
  for (let i = 0; i < n; i++) out[i] = Math.floor(i / inner) % c;
  return out;
}

/**
 * `floor(w / s) + zp` (float32 division as PyTorch computes it) and the fractional part `w / s - floor(w / s)`.
 *
 * @example
 * ```ts
 * import { splitWeights } from "./layer_graph.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const p = quantizer().int(4).symmetric().fit([1, -1]).params; // s = 1/7
 * const { base, fraction } = splitWeights(new Float32Array([0.5, -0.3]), [2], 0, p);
 * if (base.join() !== "3,-3" || Math.abs(fraction[0] - 0.5) > 1e-5) throw new Error(`${base} ${fraction}`);
 * ```
 */
export function splitWeights(
  w: Float32Array,
  dims: readonly number[],
  axis: number,
  p: QuantParams,
): { base: Float32Array; fraction: Float32Array } {
  const slot = slotIndex(dims, axis, p.scale.length);
  const base = new Float32Array(w.length), fraction = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const r = Math.fround(w[i] / p.scale[slot[i]]);
    const f = Math.floor(r);
    base[i] = f + p.zeroPoint[slot[i]];
    fraction[i] = Math.fround(r - f);
  }
  return { base, fraction };
}

/**
 * The channel axis of the layer's output for the reconstruction sum (1 for Conv and Gemm, the last for MatMul).
 *
 * @example
 * ```ts
 * import { outputChannelAxis } from "./layer_graph.ts";
 * if (outputChannelAxis("Conv", 4) !== 1 || outputChannelAxis("MatMul", 3) !== 2) throw new Error("bad");
 * ```
 */
export function outputChannelAxis(opType: string, outputRank: number): number {
  return opType === "MatMul" ? outputRank - 1 : 1;
}

/**
 * The forward model of one layer with its soft-rounded weights (see the module doc), V initialised to `v0`.
 *
 * @example
 * ```ts
 * import { roundingForwardModel, splitWeights } from "./layer_graph.ts";
 * import { initialRoundingVariable } from "./rectified_sigmoid.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const weight = new Float32Array([0.3, -0.2, 0.7, 0.1]);
 * const params = quantizer().int(4).symmetric().perChannel().fit(weight, [2, 2]).params;
 * const { base, fraction } = splitWeights(weight, [2, 2], 0, params);
 * const node = { input: ["x", "w"], output: ["y"], name: "fc", opType: "Gemm", domain: "", attribute: [] };
 * const layer = { label: "fc", node, weight, dims: [2, 2], axis: 0, params, activation: { opType: "Relu" as const } };
 * const m = roundingForwardModel(layer, base, initialRoundingVariable(fraction), [-1, 2]);
 * if (!m.graph.node.some((n) => n.opType === "Sigmoid")) throw new Error("bad");
 * ```
 */
export function roundingForwardModel(
  layer: RoundingLayer,
  base: Float32Array,
  v0: Float32Array,
  inputDims: readonly number[],
): OnnxModel {
  const { node, dims, axis, params: p } = layer;
  if (node.opType === "Gemm" && node.attribute.some((a) => a.name === "transA" && Number(a.i) !== 0)) {
    throw new QuantlabError("UNSUPPORTED", `AdaRound: ${layer.label} uses transA`);
  }
  if (!["Conv", "Gemm", "MatMul"].includes(node.opType)) {
    throw new QuantlabError("UNSUPPORTED", `AdaRound: ${layer.label} is a ${node.opType} (Conv, Gemm, MatMul only)`);
  }
  const N = ROUNDING_NAMES;
  const proto = emptyModel(17);
  const g = proto.graph;
  g.name = `adaround_${layer.label}`;
  g.input.push({
    name: N.input,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: inputDims.map((d, k) => (k === 0 || d < 0 ? { param: "N" } : { value: d })),
      },
    },
  });
  const perChannel = p.scale.length > 1;
  const bdims = perChannel ? dims.map((d, k) => (k === axis ? d : 1)) : [];
  const zp = Float32Array.from(p.zeroPoint);
  g.initializer.push(
    makeTensorProto(N.variable, v0, dims),
    makeTensorProto("adaround_base", base, dims),
    makeTensorProto("adaround_scale", p.scale.slice(), bdims),
    makeTensorProto("adaround_zp", zp, bdims),
    makeTensorProto("adaround_span", new Float32Array([ADAROUND_ZETA - ADAROUND_GAMMA]), []),
    makeTensorProto("adaround_gamma", new Float32Array([ADAROUND_GAMMA]), []),
    makeTensorProto("adaround_zero", new Float32Array([0]), []),
    makeTensorProto("adaround_one", new Float32Array([1]), []),
    makeTensorProto("adaround_qmin", new Float32Array([p.qmin]), []),
    makeTensorProto("adaround_qmax", new Float32Array([p.qmax]), []),
  );
  const nd = (opType: string, input: string[], output: string, attribute: AttributeProto[] = []): void => {
    g.node.push({ input, output: [output], name: output, opType, domain: "", attribute });
  };
  nd("Sigmoid", [N.variable], "ar_sig");
  nd("Mul", ["ar_sig", "adaround_span"], "ar_stretched");
  nd("Add", ["ar_stretched", "adaround_gamma"], "ar_shifted");
  nd("Clip", ["ar_shifted", "adaround_zero", "adaround_one"], "adaround_h");
  nd("Add", ["adaround_base", "adaround_h"], "ar_codes_soft");
  nd("Clip", ["ar_codes_soft", "adaround_qmin", "adaround_qmax"], "ar_codes");
  nd("Sub", ["ar_codes", "adaround_zp"], "ar_centred");
  nd("Mul", ["ar_centred", "adaround_scale"], "adaround_w");
  const inputs = [N.input, "adaround_w"];
  if (layer.bias && node.opType !== "MatMul") {
    g.initializer.push(makeTensorProto("adaround_bias", layer.bias.values, layer.bias.dims));
    inputs.push("adaround_bias");
  }
  const attrs = node.attribute.map((a) => ({ ...a }));
  nd(node.opType, inputs, "adaround_pre", attrs);
  let out = "adaround_pre";
  if (layer.activation?.opType === "Relu") {
    nd("Relu", [out], "adaround_y");
    out = "adaround_y";
  } else if (layer.activation?.opType === "Clip") {
    g.initializer.push(
      makeTensorProto("adaround_act_min", new Float32Array([layer.activation.min]), []),
      makeTensorProto("adaround_act_max", new Float32Array([layer.activation.max]), []),
    );
    nd("Clip", [out, "adaround_act_min", "adaround_act_max"], "adaround_y");
    out = "adaround_y";
  }
  g.output.push({ name: out, type: { tensorType: { elemType: DataType.FLOAT } } });
  return OnnxModel.fromProto(proto, `adaround(${nodeLabel(node)})`);
}

/**
 * The gradient graph of the per-layer objective: loss = reconstruction + `reg * sum(1 - |2h - 1|^beta)`, gradient
 * with respect to V only. `sampleInput` and `sampleTarget` (batch >= 2) fix the shapes.
 *
 * @example
 * ```ts ignore
 * const tg = await roundingGradientGraph(layer, base, v0, xBatch, tBatch);
 * ```
 */
export async function roundingGradientGraph(
  layer: RoundingLayer,
  base: Float32Array,
  v0: Float32Array,
  sampleInput: Tensor<"float32">,
  sampleTarget: Tensor<"float32">,
  session: SessionOptions = {},
): Promise<GradientGraph> {
  const N = ROUNDING_NAMES;
  const model = roundingForwardModel(layer, base, v0, sampleInput.shape);
  const out = model.graph.output[0].name;
  const chAxis = outputChannelAxis(layer.node.opType, sampleTarget.rank);
  const scalar = (v: number) => new Tensor<"float32">(new Float32Array([v]), []);
  return await buildGradientGraph(model, {
    loss: customLoss((ctx) => {
      const e = ctx.e;
      const t = ctx.input(N.target, DataType.FLOAT);
      const d = e.sub(ctx.value(out), t);
      const perPosition = e.reduceSum(e.mul(d, d), [chAxis], false);
      const recon = e.reduceMean(perPosition, null, false);
      const beta = ctx.input(N.beta, DataType.FLOAT, []);
      const reg = ctx.input(N.reg, DataType.FLOAT, []);
      const h = ctx.value("adaround_h");
      const u = e.op("Abs", [e.sub(e.mul(h, e.scalar(2)), e.scalar(1))]);
      // |u|^beta as exp(beta log |u|) (lib/grad's Pow rule wants a constant exponent; beta changes every
      // iteration). |u| is clipped below at 1e-30 so log stays finite; there |u|^beta underflows to 0 as it should.
      const safe = e.op("Clip", [u, e.scalar(1e-30), e.scalar(2)]);
      const pow = e.op("Exp", [e.mul(beta, e.op("Log", [safe]))]);
      const term = e.reduceSum(e.sub(e.scalar(1), pow), null, false);
      return e.add(recon, e.mul(reg, term));
    }),
    wrt: [N.variable],
    feeds: { [N.input]: sampleInput, [N.target]: sampleTarget, [N.beta]: scalar(20), [N.reg]: scalar(0.01) },
    fixedInputs: [N.beta, N.reg],
    session,
  });
}

/** One weight of a multi-layer rounding subgraph (BRECQ block): its fixed quantizer and split weights. */
export interface BlockRoundingWeight {
  /** The weight initializer's name in the subgraph (the soft-rounded value takes this name). */
  readonly tensor: string;
  /** Weight dims. */
  readonly dims: readonly number[];
  /** Quantizer channel axis (when per channel). */
  readonly axis: number;
  /** The fixed uniform quantizer parameters. */
  readonly params: QuantParams;
  /** `floor(w / s) + zp` ({@link splitWeights}). */
  readonly base: Float32Array;
  /** The fractional part `w / s - floor(w / s)` ({@link splitWeights}); V starts where h(V) equals it. */
  readonly fraction: Float32Array;
}

/**
 * A subgraph whose weights are rounded together (BRECQ's block reconstruction; a single layer plus its activation is
 * the one-layer case): float nodes copied as they are, their constant initializers, one input value and one output.
 */
export interface RoundingBlock {
  /** Label for messages and reports. */
  readonly label: string;
  /** The nodes, in graph order (copied unchanged; rounded weights keep their names). */
  readonly nodes: readonly NodeProto[];
  /** Constant initializers the nodes read (not the rounded weights). */
  readonly constants: readonly TensorProto[];
  /** The subgraph's input value (becomes the graph input). */
  readonly input: string;
  /** The subgraph's output value (compared with the float target). */
  readonly output: string;
  /** The weights rounded with AdaRound's rectified sigmoid. */
  readonly weights: readonly BlockRoundingWeight[];
  /** Channel axis of the output for the reconstruction sum (default 1). */
  readonly channelAxis?: number;
}

/**
 * The name of the rounding variable V of weight `tensor` in a block graph.
 *
 * @example
 * ```ts
 * import { blockVariableName } from "./layer_graph.ts";
 * if (blockVariableName("conv.weight") !== "conv.weight_adaround_v") throw new Error("bad");
 * ```
 */
export function blockVariableName(tensor: string): string {
  return `${tensor}_adaround_v`;
}

/**
 * The forward model of a rounding block: every listed weight is replaced by its soft-rounded value
 * `(clip(base + h(V), qmin, qmax) - zp) s` under its own name, V initialised from `v0` (weight name -> V); the
 * other nodes and constants are copied. The graph input is `block.input` (batch dimension symbolic), the output
 * `block.output`.
 *
 * @example
 * ```ts
 * import { blockVariableName, roundingBlockForwardModel, splitWeights } from "./layer_graph.ts";
 * import { initialRoundingVariable } from "./rectified_sigmoid.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const w = new Float32Array([0.3, -0.2, 0.7, 0.1]);
 * const params = quantizer().int(4).symmetric().perChannel().fit(w, [2, 2]).params;
 * const { base, fraction } = splitWeights(w, [2, 2], 0, params);
 * const node = { input: ["x", "fc.w"], output: ["y"], name: "fc", opType: "Gemm", domain: "", attribute: [] };
 * const relu = { input: ["y"], output: ["z"], name: "relu", opType: "Relu", domain: "", attribute: [] };
 * const block = {
 *   label: "fc", nodes: [node, relu], constants: [], input: "x", output: "z",
 *   weights: [{ tensor: "fc.w", dims: [2, 2], axis: 0, params, base, fraction }],
 * };
 * const m = roundingBlockForwardModel(block, new Map([["fc.w", initialRoundingVariable(fraction)]]), [-1, 2]);
 * if (!m.graph.initializer.some((t) => t.name === blockVariableName("fc.w"))) throw new Error("bad");
 * ```
 */
export function roundingBlockForwardModel(
  block: RoundingBlock,
  v0: ReadonlyMap<string, Float32Array>,
  inputDims: readonly number[],
): OnnxModel {
  const proto = emptyModel(17);
  const g = proto.graph;
  g.name = `adaround_block_${block.label}`;
  g.input.push({
    name: block.input,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: inputDims.map((d, k) => (k === 0 || d < 0 ? { param: "N" } : { value: d })),
      },
    },
  });
  g.initializer.push(
    makeTensorProto("adaround_span", new Float32Array([ADAROUND_ZETA - ADAROUND_GAMMA]), []),
    makeTensorProto("adaround_gamma", new Float32Array([ADAROUND_GAMMA]), []),
    makeTensorProto("adaround_zero", new Float32Array([0]), []),
    makeTensorProto("adaround_one", new Float32Array([1]), []),
  );
  const nd = (opType: string, input: string[], output: string): void => {
    g.node.push({ input, output: [output], name: output, opType, domain: "", attribute: [] });
  };
  for (const w of block.weights) {
    const v = v0.get(w.tensor);
    if (!v || v.length !== w.base.length) {
      throw new QuantlabError("SHAPE_MISMATCH", `AdaRound block ${block.label}: no or wrong-sized V for ${w.tensor}`);
    }
    const p = w.params, t = w.tensor;
    const perChannel = p.scale.length > 1;
    const bdims = perChannel ? w.dims.map((d, k) => (k === w.axis ? d : 1)) : [];
    g.initializer.push(
      makeTensorProto(blockVariableName(t), v, w.dims),
      makeTensorProto(`${t}_ar_base`, w.base, w.dims),
      makeTensorProto(`${t}_ar_scale`, p.scale.slice(), bdims),
      makeTensorProto(`${t}_ar_zp`, Float32Array.from(p.zeroPoint), bdims),
      makeTensorProto(`${t}_ar_qmin`, new Float32Array([p.qmin]), []),
      makeTensorProto(`${t}_ar_qmax`, new Float32Array([p.qmax]), []),
    );
    nd("Sigmoid", [blockVariableName(t)], `${t}_ar_sig`);
    nd("Mul", [`${t}_ar_sig`, "adaround_span"], `${t}_ar_stretched`);
    nd("Add", [`${t}_ar_stretched`, "adaround_gamma"], `${t}_ar_shifted`);
    nd("Clip", [`${t}_ar_shifted`, "adaround_zero", "adaround_one"], `${t}_ar_h`);
    nd("Add", [`${t}_ar_base`, `${t}_ar_h`], `${t}_ar_codes_soft`);
    nd("Clip", [`${t}_ar_codes_soft`, `${t}_ar_qmin`, `${t}_ar_qmax`], `${t}_ar_codes`);
    nd("Sub", [`${t}_ar_codes`, `${t}_ar_zp`], `${t}_ar_centred`);
    nd("Mul", [`${t}_ar_centred`, `${t}_ar_scale`], t);
  }
  g.initializer.push(...block.constants);
  for (const n of block.nodes) g.node.push({ ...n, attribute: n.attribute.map((a) => ({ ...a })) });
  g.output.push({ name: block.output, type: { tensorType: { elemType: DataType.FLOAT } } });
  return OnnxModel.fromProto(proto, `adaround_block(${block.label})`);
}

/**
 * The gradient graph of the block objective: `mean over batch and positions of sum over channels (y - t)^2` (BRECQ
 * `lp_loss(p=2)`, AIMET's per-layer loss) `+ reg * sum over the block's weights of sum(1 - |2h - 1|^beta)`, gradients
 * with respect to every V. Inputs: `block.input`, {@link ROUNDING_NAMES} `target`, `beta`, `reg`.
 *
 * @example
 * ```ts ignore
 * const tg = await roundingBlockGradientGraph(block, v0, xBatch, tBatch, { backend: "node" });
 * ```
 */
export async function roundingBlockGradientGraph(
  block: RoundingBlock,
  v0: ReadonlyMap<string, Float32Array>,
  sampleInput: Tensor<"float32">,
  sampleTarget: Tensor<"float32">,
  session: SessionOptions = {},
): Promise<GradientGraph> {
  const N = ROUNDING_NAMES;
  const model = roundingBlockForwardModel(block, v0, sampleInput.shape);
  const chAxis = block.channelAxis ?? 1;
  const scalar = (v: number) => new Tensor<"float32">(new Float32Array([v]), []);
  return await buildGradientGraph(model, {
    loss: customLoss((ctx) => {
      const e = ctx.e;
      const t = ctx.input(N.target, DataType.FLOAT);
      const d = e.sub(ctx.value(block.output), t);
      const recon = e.reduceMean(e.reduceSum(e.mul(d, d), [chAxis], false), null, false);
      const beta = ctx.input(N.beta, DataType.FLOAT, []);
      const reg = ctx.input(N.reg, DataType.FLOAT, []);
      const terms = block.weights.map((w) => {
        const h = ctx.value(`${w.tensor}_ar_h`);
        const u = e.op("Abs", [e.sub(e.mul(h, e.scalar(2)), e.scalar(1))]);
        const safe = e.op("Clip", [u, e.scalar(1e-30), e.scalar(2)]);
        const pow = e.op("Exp", [e.mul(beta, e.op("Log", [safe]))]);
        return e.reduceSum(e.sub(e.scalar(1), pow), null, false);
      });
      const round = terms.length === 1 ? terms[0] : e.sum(terms);
      return e.add(recon, e.mul(reg, round));
    }),
    wrt: block.weights.map((w) => blockVariableName(w.tensor)),
    feeds: { [block.input]: sampleInput, [N.target]: sampleTarget, [N.beta]: scalar(20), [N.reg]: scalar(0.01) },
    fixedInputs: [N.beta, N.reg],
    session,
  });
}
