/**
 * Quantization policies: the rules that turn a float ONNX graph into a {@link QuantPlan}.
 *
 * A policy says which weights and activations to quantize and how, in the terms users of ONNX Runtime's
 * quantizer (`op_types_to_quantize`, `nodes_to_exclude`, per-tensor overrides), torch.ao (per-module qconfig)
 * and the papers ("first and last layer at 8 bits") already use:
 *
 * - `weights` / `activations`: the default quantizers (int8 symmetric per-channel weights and uint8 asymmetric
 *   min-max activations, ONNX Runtime's defaults);
 * - `placement`: which activations get quantizers. `"all"` (default) quantizes the graph input and the outputs
 *   of Conv, Gemm, MatMul, Add, Mul, Relu, Clip and pooling, as ONNX Runtime's QDQ quantizer does: a
 *   Conv/Gemm/MatMul/Add output consumed only by a Relu is not quantized (integer kernels fuse the pair) and
 *   data-movement ops (MaxPool, Flatten, Reshape, ...) share their input's parameters. `"relu"` keeps only
 *   ReLU outputs (ZeroQ's `QuantAct` after every ReLU). `"weight-inputs"` keeps only the activations that feed
 *   a quantized weight layer (PyTorch eager mode's placement: each layer quantizes what it reads). A predicate
 *   decides per candidate;
 * - `input`: quantize the network input (default `true`), keep it float (`false`), or give it its own quantizer
 *   (e.g. another calibrator: entropy calibration clips an image input at its background spike);
 * - `outputs`: quantize graph outputs (default `true` under `"all"`);
 * - `opTypes`: quantize only these op types (weights and outputs);
 * - `exclude`: nodes kept in float (weights, bias and output), by name, glob (`*`, `?`), RegExp or predicate;
 * - `overrides`: per node (same matchers): bits, weight quantizer, activation quantizer, granularity, calibrator;
 * - `firstLast`: the first and last weight layers (and the activations entering the first and leaving the
 *   last) at the given bits, the common rule of QAT and low-bit papers;
 * - `quantizeBias`: int32 biases for Conv/Gemm whose weight and input are uniform affine (default `true`).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { Calibrator } from "../quant/calibrate/observer.ts";
import { inferElemTypes } from "../onnx/capture.ts";
import { attrInt, indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import {
  ACTIVATION_OPS,
  DATA_MOVEMENT_OPS,
  isOp,
  RELU_FUSING_OPS,
  WEIGHT_OPS,
  weightAxis,
} from "../onnx/op_classes.ts";
import type { NodeProto } from "../onnx/proto.ts";
import { DataType } from "../onnx/tensor_data.ts";
import { quantizer, QuantizerBuilder } from "../quant/quantizer.ts";
import { isWeightQuantizer, type WeightQuantizer } from "../quant/weight_quantizer.ts";
import { checkActivationQuantizer } from "./calibration.ts";
import { type ActivationEntry, type BiasEntry, type PlanEntry, QuantPlan, type WeightEntry } from "./plan.ts";

/** What a node matcher sees. */
export interface NodeInfo {
  /** The node's name, or `Op#index` when it has none. */
  readonly name: string;
  /** Op type. */
  readonly opType: string;
  /** Index in the graph. */
  readonly index: number;
  /** Input value names. */
  readonly inputs: readonly string[];
  /** Output value names. */
  readonly outputs: readonly string[];
}

/** Selects nodes: exact name, glob with `*`/`?`, RegExp, or predicate. */
export type NodeMatcher = string | RegExp | ((node: NodeInfo) => boolean);

/** What an activation-placement predicate sees. */
export interface ActivationCandidate {
  /** The tensor. */
  readonly tensor: string;
  /** `input`, `activation` or `output`. */
  readonly role: "input" | "activation" | "output";
  /** Producing op type (`""` for graph inputs). */
  readonly opType: string;
  /** Op types of the nodes that read it (directly or through data-movement ops). */
  readonly consumers: readonly string[];
}

/** Activation placement: a named rule or a predicate over candidates. */
export type Placement = "all" | "relu" | "weight-inputs" | ((c: ActivationCandidate) => boolean);

/** Per-node settings. */
export interface NodeOverride {
  /** Bits of the node's weight and of its output activation. */
  readonly bits?: number;
  /** Bits of the node's weight only. */
  readonly weightBits?: number;
  /** Bits of the node's output activation only. */
  readonly activationBits?: number;
  /** A weight quantizer of any family for this node. */
  readonly weights?: WeightQuantizer;
  /** An activation quantizer for this node's output. */
  readonly activations?: QuantizerBuilder;
  /** Weight granularity (uniform weights). */
  readonly granularity?: "tensor" | "channel";
  /** Calibrator of this node's output activation. */
  readonly calibrator?: Calibrator;
}

/** A policy (every field optional; see the module doc for defaults). */
export interface QuantPolicy {
  /** Default weight quantizer. */
  readonly weights?: WeightQuantizer;
  /** Default activation quantizer (static, per-tensor, at most 8 bits), or `false`: weights only (no activation
   * quantizers anywhere, biases float). */
  readonly activations?: QuantizerBuilder | false;
  /** Which activations are quantized. */
  readonly placement?: Placement;
  /** Quantize the network input(s), keep them float, or use this quantizer for them. */
  readonly input?: boolean | QuantizerBuilder;
  /** Quantize graph outputs (default true). */
  readonly outputs?: boolean;
  /** Quantize only these op types. */
  readonly opTypes?: readonly string[];
  /** Nodes kept in float. */
  readonly exclude?: readonly NodeMatcher[];
  /** Per-node settings, applied in order (later ones win). */
  readonly overrides?: readonly { readonly match: NodeMatcher; readonly set: NodeOverride }[];
  /** First and last weight layers at these bits. */
  readonly firstLast?: { readonly bits: number } | false;
  /** int32 biases (default true). */
  readonly quantizeBias?: boolean;
}

/**
 * The default weight quantizer: int8 symmetric (restricted range) per output channel.
 *
 * @example
 * ```ts
 * import { defaultWeightQuantizer } from "./policy.ts";
 * if (!defaultWeightQuantizer().toString().includes("int8")) throw new Error("bad");
 * ```
 */
export function defaultWeightQuantizer(): QuantizerBuilder {
  return quantizer().int(8).symmetric().perChannel();
}

/**
 * The default activation quantizer: uint8 asymmetric min-max.
 *
 * @example
 * ```ts
 * import { defaultActivationQuantizer } from "./policy.ts";
 * if (!defaultActivationQuantizer().toString().includes("uint8")) throw new Error("bad");
 * ```
 */
export function defaultActivationQuantizer(): QuantizerBuilder {
  return quantizer().uint(8).asymmetric();
}

function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${esc}$`);
}

/**
 * Whether a node matches a matcher (exact name, glob, RegExp or predicate).
 *
 * @example
 * ```ts
 * import { matchesNode } from "./policy.ts";
 * const n = { name: "/layer1/conv1/Conv", opType: "Conv", index: 3, inputs: [], outputs: [] };
 * if (!matchesNode(n, "/layer1/*") || matchesNode(n, "/layer2/*") || !matchesNode(n, (x) => x.opType === "Conv")) {
 *   throw new Error("bad");
 * }
 * ```
 */
export function matchesNode(n: NodeInfo, m: NodeMatcher): boolean {
  if (typeof m === "function") return m(n);
  if (m instanceof RegExp) return m.test(n.name);
  if (typeof m === "string") return m.includes("*") || m.includes("?") ? globToRegExp(m).test(n.name) : m === n.name;
  throw new QuantlabError("INVALID_ARGUMENT", `node matcher must be a string, RegExp or function, got ${typeof m}`);
}

function describeMatcher(m: NodeMatcher): string {
  return typeof m === "function" ? "<predicate>" : String(m);
}

/**
 * The policy in words (what `QuantPlan.policy` records).
 *
 * @example
 * ```ts
 * import { describePolicy } from "./policy.ts";
 * if (!describePolicy({ placement: "relu", input: false }).includes("placement=relu")) throw new Error("bad");
 * ```
 */
export function describePolicy(p: QuantPolicy): string {
  const parts = [
    `weights=${(p.weights ?? defaultWeightQuantizer()).toString()}`,
    `activations=${
      p.activations === false ? "none (weights only)" : (p.activations ?? defaultActivationQuantizer()).toString()
    }`,
    `placement=${typeof p.placement === "function" ? "<predicate>" : p.placement ?? "all"}`,
    `input=${p.input instanceof QuantizerBuilder ? p.input.toString() : p.input ?? true}`,
  ];
  if (p.outputs === false) parts.push("outputs=false");
  if (p.opTypes) parts.push(`opTypes=[${p.opTypes.join(",")}]`);
  if (p.exclude?.length) parts.push(`exclude=[${p.exclude.map(describeMatcher).join(",")}]`);
  if (p.overrides?.length) parts.push(`overrides=${p.overrides.length}`);
  if (p.firstLast) parts.push(`firstLast=${p.firstLast.bits}`);
  if (p.quantizeBias === false) parts.push("bias=float");
  return parts.join(" ");
}

/** Validate a policy eagerly (typed errors naming the field). */
export function checkPolicy(p: QuantPolicy): void {
  if (p.weights !== undefined && !isWeightQuantizer(p.weights)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      "policy.weights must be a weight quantizer (quantizer(), nonUniform(), ...)",
    );
  }
  if (p.activations !== undefined && p.activations !== false) {
    if (!(p.activations instanceof QuantizerBuilder)) {
      throw new QuantlabError("INVALID_ARGUMENT", "policy.activations must be a quantizer() builder or false");
    }
    checkActivationQuantizer(p.activations);
  }
  if (p.input instanceof QuantizerBuilder) checkActivationQuantizer(p.input);
  else if (p.input !== undefined && typeof p.input !== "boolean") {
    throw new QuantlabError("INVALID_ARGUMENT", "policy.input must be a boolean or a quantizer() builder");
  }
  const pl = p.placement;
  if (pl !== undefined && typeof pl !== "function" && !["all", "relu", "weight-inputs"].includes(pl)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `policy.placement must be "all", "relu", "weight-inputs" or a predicate, got ${JSON.stringify(pl)}`,
    );
  }
  if (p.firstLast && !(Number.isInteger(p.firstLast.bits) && p.firstLast.bits >= 2 && p.firstLast.bits <= 8)) {
    throw new QuantlabError("BITS_OUT_OF_RANGE", `policy.firstLast.bits must be in 2..8, got ${p.firstLast.bits}`);
  }
  for (const o of p.overrides ?? []) {
    const s = o.set ?? {};
    for (const k of ["bits", "weightBits", "activationBits"] as const) {
      const b = s[k];
      if (b !== undefined && !(Number.isInteger(b) && b >= 1 && b <= 16)) {
        throw new QuantlabError(
          "BITS_OUT_OF_RANGE",
          `override for ${describeMatcher(o.match)}: ${k} ${b} not in 1..16`,
        );
      }
    }
    if (s.weights !== undefined && !isWeightQuantizer(s.weights)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `override for ${describeMatcher(o.match)}: weights is not a weight quantizer`,
      );
    }
    if (s.activations !== undefined) checkActivationQuantizer(s.activations);
    if (s.granularity !== undefined && s.granularity !== "tensor" && s.granularity !== "channel") {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `override for ${describeMatcher(o.match)}: granularity "${s.granularity}"`,
      );
    }
  }
}

function withBits(q: WeightQuantizer, bits: number, where: string): WeightQuantizer {
  if (q instanceof QuantizerBuilder) return q.config.signed ? q.int(bits) : q.uint(bits);
  throw new QuantlabError(
    "UNSUPPORTED",
    `${where}: a bits override needs a uniform weight quantizer; for ${q.kind} weights give the quantizer itself ` +
      `(overrides: [{ match, set: { weights: ... } }])`,
  );
}

function withActivationBits(q: QuantizerBuilder, bits: number): QuantizerBuilder {
  return q.config.signed ? q.int(bits) : q.uint(bits);
}

/**
 * Build the plan of a float model under a policy (see the module doc). The model should already be in its
 * final float form (BatchNorm folded, equalized): plans name tensors of that graph.
 *
 * @example
 * ```ts
 * import { buildPlan } from "./policy.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(13);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
 * p.graph.initializer.push(makeTensorProto("w", new Float32Array(4), [2, 2]));
 * p.graph.node.push({ input: ["x", "w"], output: ["h"], name: "fc", opType: "MatMul", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["h"], output: ["y"], name: "act", opType: "Relu", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const plan = buildPlan(OnnxModel.fromProto(p), { exclude: ["fc"] });
 * if (plan.has("w") || !plan.has("y")) throw new Error(plan.toString());
 * ```
 */
export function buildPlan(model: OnnxModel, policy: QuantPolicy = {}): QuantPlan {
  checkPolicy(policy);
  const g = model.graph;
  const ix = indexGraph(g);
  const types = inferElemTypes(model);
  const isFloat = (t: string) => types.get(t) === DataType.FLOAT;
  const infos: NodeInfo[] = g.node.map((n, i) => ({
    name: n.name || `${n.opType}#${i}`,
    opType: n.opType,
    index: i,
    inputs: n.input,
    outputs: n.output,
  }));
  const excluded = new Set<number>();
  for (const m of policy.exclude ?? []) infos.forEach((info) => matchesNode(info, m) && excluded.add(info.index));
  const opTypes = policy.opTypes ? new Set(policy.opTypes) : ACTIVATION_OPS;
  const quantizable = (i: number) =>
    !excluded.has(i) && isOp(g.node[i], ACTIVATION_OPS) && opTypes.has(g.node[i].opType);
  const overridesOf = (i: number): NodeOverride => {
    let o: NodeOverride = {};
    for (const r of policy.overrides ?? []) if (matchesNode(infos[i], r.match)) o = { ...o, ...r.set };
    return o;
  };
  const outputs = new Set(g.output.map((v) => v.name));
  const weightsOnly = policy.activations === false;
  const baseAct = policy.activations || defaultActivationQuantizer();
  const baseW = policy.weights ?? defaultWeightQuantizer();

  // 1. Weight layers, in graph order.
  const weightNodes: number[] = [];
  g.node.forEach((n, i) => {
    if (!isOp(n, WEIGHT_OPS) || excluded.has(i) || !opTypes.has(n.opType)) return;
    if (ix.initializers.get(n.input[1])?.dataType === DataType.FLOAT) weightNodes.push(i);
  });
  const firstLast = new Set<number>();
  if (policy.firstLast && weightNodes.length) {
    firstLast.add(weightNodes[0]);
    firstLast.add(weightNodes[weightNodes.length - 1]);
  }

  // 2. Activation candidates under the "all" rules.
  interface Cand {
    tensor: string;
    role: "input" | "activation" | "output" | "constant";
    node: number | undefined; // producer index
    fusedFrom?: number; // a Conv/Add fused into this Relu
    shares?: string;
  }
  const cands = new Map<string, Cand>();
  const root = (t: string): string => cands.get(t)?.shares ?? t;
  for (const name of ix.inputs) {
    if (!isFloat(name)) continue;
    if ((ix.consumers.get(name) ?? []).some(quantizable)) {
      cands.set(name, { tensor: name, role: "input", node: undefined });
    }
  }
  const fusedInto = new Map<number, number>(); // relu index -> fused producer index
  g.node.forEach((n, i) => {
    if (!quantizable(i)) return;
    if (n.opType === "Add" || n.opType === "Mul") {
      for (const x of n.input) {
        if (ix.initializers.get(x)?.dataType === DataType.FLOAT && !cands.has(x)) {
          cands.set(x, { tensor: x, role: "constant", node: undefined });
        }
      }
    }
    const y = n.output[0];
    if (!y || !isFloat(y)) return;
    const cons = ix.consumers.get(y) ?? [];
    if (
      RELU_FUSING_OPS.has(n.opType) && !outputs.has(y) && cons.length === 1 && g.node[cons[0]].opType === "Relu" &&
      quantizable(cons[0])
    ) {
      fusedInto.set(cons[0], i);
      return;
    }
    const role = outputs.has(y) ? "output" : "activation";
    if (DATA_MOVEMENT_OPS.has(n.opType) && cands.has(n.input[0])) {
      cands.set(y, { tensor: y, role, node: i, shares: root(n.input[0]) });
      return;
    }
    cands.set(y, { tensor: y, role, node: i, fusedFrom: n.opType === "Relu" ? fusedInto.get(i) : undefined });
  });

  // 3. Placement, input and output rules decide which roots stay.
  const readers = (t: string): string[] => {
    const out: string[] = [];
    const visit = (v: string, depth: number) => {
      for (const c of ix.consumers.get(v) ?? []) {
        const n = g.node[c];
        if (DATA_MOVEMENT_OPS.has(n.opType) && depth < 16) visit(n.output[0], depth + 1);
        else out.push(n.opType);
      }
    };
    visit(t, 0);
    return out;
  };
  const quantizedWeightReaders = (t: string): boolean => {
    const visit = (v: string, depth: number): boolean =>
      (ix.consumers.get(v) ?? []).some((c) => {
        const n = g.node[c];
        if (DATA_MOVEMENT_OPS.has(n.opType) && depth < 16) return visit(n.output[0], depth + 1);
        return weightNodes.includes(c) && n.input[0] === v;
      });
    return visit(t, 0);
  };
  const placement = policy.placement ?? "all";
  const keepRoot = (c: Cand): boolean => {
    if (weightsOnly) return false;
    if (c.role === "constant") return true;
    if (c.role === "input") return policy.input !== false;
    if (c.role === "output" && policy.outputs === false) return false;
    const opType = c.node === undefined ? "" : g.node[c.node].opType;
    if (placement === "all") return true;
    if (placement === "relu") return opType === "Relu";
    if (placement === "weight-inputs") return quantizedWeightReaders(c.tensor);
    return placement({ tensor: c.tensor, role: c.role, opType, consumers: readers(c.tensor) });
  };
  const kept = new Set<string>();
  for (const c of cands.values()) if (!c.shares && keepRoot(c)) kept.add(c.tensor);
  for (const c of cands.values()) {
    if (c.shares && kept.has(c.shares) && (c.role !== "output" || policy.outputs !== false)) kept.add(c.tensor);
  }

  // 4. Activation entries with overrides and first/last rules.
  const firstInputs = new Set<string>(), lastOutputs = new Set<string>();
  if (policy.firstLast && weightNodes.length) {
    firstInputs.add(g.node[weightNodes[0]].input[0]);
    const last = g.node[weightNodes[weightNodes.length - 1]];
    lastOutputs.add(last.output[0]);
    const cons = ix.consumers.get(last.output[0]) ?? [];
    if (cons.length === 1 && g.node[cons[0]].opType === "Relu") lastOutputs.add(g.node[cons[0]].output[0]);
  }
  const actEntries = new Map<string, ActivationEntry>();
  for (const c of cands.values()) {
    if (!kept.has(c.tensor)) continue;
    let q = c.role === "input" && policy.input instanceof QuantizerBuilder ? policy.input : baseAct;
    if (c.node !== undefined) {
      const o = { ...(c.fusedFrom !== undefined ? overridesOf(c.fusedFrom) : {}), ...overridesOf(c.node) };
      if (o.activations) q = o.activations;
      const bits = o.activationBits ?? o.bits;
      if (bits !== undefined) q = withActivationBits(q, bits);
      if (o.calibrator) q = q.calibrate(o.calibrator);
    }
    if (policy.firstLast && (firstInputs.has(c.tensor) || lastOutputs.has(c.tensor))) {
      q = withActivationBits(q, policy.firstLast.bits);
    }
    if (c.role === "constant") q = q.calibrate(baseAct.config.calibrator); // constants: min-max of their values
    checkActivationQuantizer(q);
    actEntries.set(c.tensor, {
      kind: "activation",
      tensor: c.tensor,
      role: c.role,
      producer: c.node === undefined ? undefined : infos[c.node].name,
      opType: c.node === undefined ? "" : g.node[c.node].opType,
      quantizer: q,
      bits: q.config.bits,
      ...(c.shares ? { sharesWith: c.shares } : {}),
    });
  }
  // A shared tensor carries its root's grid.
  for (const [t, e] of actEntries) {
    if (e.sharesWith) {
      const r = actEntries.get(e.sharesWith)!;
      actEntries.set(t, { ...e, quantizer: r.quantizer, bits: r.bits });
    }
  }

  // 5. Weight and bias entries.
  const weightEntries = new Map<number, WeightEntry>();
  const biasEntries = new Map<number, BiasEntry>();
  for (const i of weightNodes) {
    const n = g.node[i];
    const label = infos[i].name;
    const o = overridesOf(i);
    let q: WeightQuantizer = o.weights ?? baseW;
    if (firstLast.has(i) && policy.firstLast) {
      q = q instanceof QuantizerBuilder ? withBits(q, policy.firstLast.bits, label) : defaultWeightQuantizer().int(
        policy.firstLast.bits,
      );
    }
    const wb = o.weightBits ?? o.bits;
    if (wb !== undefined) q = withBits(q, wb, `override for ${label}`);
    if (o.granularity) {
      if (!(q instanceof QuantizerBuilder)) {
        throw new QuantlabError("UNSUPPORTED", `override for ${label}: granularity applies to uniform weights only`);
      }
      q = o.granularity === "tensor" ? q.perTensor() : q.perChannel();
    }
    const axis = weightAxis(n.opType, attrInt(n, "transB", 0) === 1);
    weightEntries.set(i, {
      kind: "weight",
      tensor: n.input[1],
      role: "weight",
      node: label,
      opType: n.opType,
      axis,
      quantizer: q,
      bits: q.nominalBits,
    });
    const b = n.input[2];
    const input = n.input[0];
    const inputEntry = actEntries.get(input);
    if (
      policy.quantizeBias !== false && (n.opType === "Conv" || n.opType === "Gemm") && b &&
      ix.initializers.get(b)?.dataType === DataType.FLOAT && ix.initializers.get(b)!.dims.length === 1 &&
      q.kind === "uniform" && inputEntry
    ) {
      biasEntries.set(i, { kind: "bias", tensor: b, role: "bias", node: label, weight: n.input[1], input, bits: 32 });
    }
  }

  // 6. Entries in graph order: inputs, then per node its weight, bias, constants and output.
  const entries: PlanEntry[] = [];
  const seen = new Set<string>();
  const push = (e: PlanEntry | undefined) => {
    if (e && !seen.has(e.tensor)) {
      seen.add(e.tensor);
      entries.push(e);
    }
  };
  for (const name of ix.inputs) push(actEntries.get(name));
  g.node.forEach((n: NodeProto, i) => {
    push(weightEntries.get(i));
    push(biasEntries.get(i));
    for (const x of n.input) if (actEntries.get(x)?.role === "constant") push(actEntries.get(x));
    for (const y of n.output) push(actEntries.get(y));
  });
  // Weight initializers shared by two nodes are planned once (the first); both read the same codes.
  return new QuantPlan(entries, { model: model.source, policy: describePolicy(policy) });
}
