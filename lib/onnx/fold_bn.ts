/**
 * Graph simplifications before quantization: inline `Identity` copies of constants (PyTorch's exporter emits
 * them for shared initializers) and fold inference-mode `BatchNormalization` into the preceding `Conv` or
 * `Gemm`.
 *
 * Folding: `s = gamma / sqrt(var + eps)`, `W'[c] = W[c] * s[c]`, `b'[c] = (b[c] - mean[c]) * s[c] + beta[c]`,
 * computed in float64 and stored as float32. The input model is never modified: BN statistics stay available
 * on the unfolded model (ZeroQ needs them).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { attrFloat, attrInt, GraphBuilder, indexGraph, matchChains, nodeLabel, removeDeadNodes } from "./graph.ts";
import type { OnnxModel } from "./model.ts";
import type { GraphProto, TensorProto } from "./proto.ts";
import { makeTensorProto, tensorValues } from "./tensor_data.ts";

/**
 * Replace `Identity` nodes (and chains of them) whose input is an initializer with a copy of that initializer
 * under the output name. Mutates `g`; returns how many were replaced.
 *
 * @example
 * ```ts
 * import { inlineConstantIdentities } from "./fold_bn.ts";
 * import { makeTensorProto } from "./tensor_data.ts";
 * const g = { name: "g", input: [], output: [{ name: "y" }], valueInfo: [],
 *   initializer: [makeTensorProto("a", new Float32Array([1]), [1])],
 *   node: [{ input: ["a"], output: ["b"], name: "", opType: "Identity", domain: "", attribute: [] },
 *     { input: ["b"], output: ["y"], name: "", opType: "Relu", domain: "", attribute: [] }] };
 * if (inlineConstantIdentities(g) !== 1 || g.node.length !== 1 || g.initializer.length !== 2) throw new Error("bad");
 * ```
 */
export function inlineConstantIdentities(g: GraphProto): number {
  let count = 0;
  const outputs = new Set(g.output.map((v) => v.name));
  for (let changed = true; changed;) {
    changed = false;
    const inits = new Map(g.initializer.map((t) => [t.name, t]));
    for (let i = 0; i < g.node.length; i++) {
      const n = g.node[i];
      const src = n.opType === "Identity" && n.domain === "" ? inits.get(n.input[0]) : undefined;
      if (!src || outputs.has(n.output[0])) continue;
      g.initializer.push({ ...structuredClone(src), name: n.output[0] });
      g.node.splice(i, 1);
      count++;
      changed = true;
      break;
    }
  }
  return count;
}

function floats(t: TensorProto | undefined): Float64Array | undefined {
  if (!t) return undefined;
  const v = tensorValues(t);
  return v instanceof Float32Array || v instanceof Float64Array ? Float64Array.from(v) : undefined;
}

/** Result of {@link foldBatchNorm}. */
export interface FoldResult {
  /** The folded model (a new object). */
  readonly model: OnnxModel;
  /** Names of the BatchNormalization nodes folded (or their outputs when unnamed). */
  readonly folded: string[];
  /** BatchNormalization nodes left in place, with the reason. */
  readonly skipped: { node: string; reason: string }[];
}

/**
 * Fold every inference-mode BatchNormalization that directly follows a Conv or Gemm (whose output feeds only
 * the BN) into that node's weight and bias. Returns a new model; the input model is unchanged. Throws
 * `NON_FINITE` naming the node and tensor when a statistic or weight is NaN/Inf, a running variance plus epsilon
 * is not positive, or the folded values overflow float32 (they would be NaN or Inf in the exported model).
 *
 * @example
 * ```ts
 * import { foldBatchNorm } from "./fold_bn.ts";
 * import { OnnxModel } from "./model.ts";
 * import { emptyModel } from "./proto.ts";
 * import { makeTensorProto } from "./tensor_data.ts";
 * const p = emptyModel(13);
 * const f = (name: string, v: number[]) => makeTensorProto(name, new Float32Array(v), [v.length]);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 1 }, { value: 1 }, { value: 1 }, { value: 1 }] } } });
 * p.graph.initializer.push(makeTensorProto("w", new Float32Array([2]), [1, 1, 1, 1]), f("g", [3]), f("b", [1]), f("m", [0.5]), f("v", [1]));
 * p.graph.node.push({ input: ["x", "w"], output: ["c"], name: "conv", opType: "Conv", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["c", "g", "b", "m", "v"], output: ["y"], name: "bn", opType: "BatchNormalization", domain: "",
 *   attribute: [{ name: "epsilon", type: 1, f: 0 }] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const { model, folded } = foldBatchNorm(OnnxModel.fromProto(p));
 * const conv = model.graph.node[0];
 * if (folded.join() !== "bn" || model.graph.node.length !== 1 || conv.output[0] !== "y" || conv.input.length !== 3) throw new Error("bad");
 * ```
 */
export function foldBatchNorm(model: OnnxModel): FoldResult {
  const m = model.clone();
  const g = m.graph;
  inlineConstantIdentities(g);
  const b = new GraphBuilder(g);
  const folded: string[] = [];
  const skipped: { node: string; reason: string }[] = [];
  const remove = new Set<number>();
  const chains = [...matchChains(g, ["Conv", "BatchNormalization"]), ...matchChains(g, ["Gemm", "BatchNormalization"])];
  const inits = indexGraph(g).initializers;
  for (const [pi, bi] of chains) {
    const prod = g.node[pi], bn = g.node[bi];
    const label = bn.name || bn.output[0];
    if (attrInt(bn, "training_mode", 0) !== 0 || bn.output.length > 1) {
      skipped.push({ node: label, reason: "training-mode BatchNormalization" });
      continue;
    }
    const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((k) => floats(inits.get(bn.input[k])));
    const wT = inits.get(prod.input[1]);
    const w = floats(wT);
    const bias = prod.input[2] ? floats(inits.get(prod.input[2])) : undefined;
    if (!gamma || !beta || !mean || !variance || !w || !wT || (prod.input[2] && !bias)) {
      skipped.push({ node: label, reason: "weights or statistics are not float constants" });
      continue;
    }
    const eps = attrFloat(bn, "epsilon", 1e-5);
    const c = gamma.length;
    let outer: number, inner: number, axisFirst: boolean;
    if (prod.opType === "Conv") {
      if (wT.dims[0] !== c) {
        skipped.push({ node: label, reason: `Conv has ${wT.dims[0]} output channels, BN has ${c}` });
        continue;
      }
      outer = c, inner = w.length / c, axisFirst = true;
    } else {
      if (attrInt(prod, "transA", 0) !== 0 || attrFloat(prod, "alpha", 1) !== 1 || attrFloat(prod, "beta", 1) !== 1) {
        skipped.push({ node: label, reason: "Gemm with transA, alpha or beta is not folded" });
        continue;
      }
      const transB = attrInt(prod, "transB", 0) === 1;
      const n = transB ? wT.dims[0] : wT.dims[1];
      if (n !== c || (bias && bias.length !== c)) {
        skipped.push({ node: label, reason: `Gemm has ${n} outputs (or a broadcast bias), BN has ${c}` });
        continue;
      }
      axisFirst = transB;
      outer = transB ? c : w.length / c;
      inner = transB ? w.length / c : c;
    }
    const where = `BatchNormalization ${bn.name ? `"${bn.name}"` : `-> "${bn.output[0]}"`}`;
    for (
      const [what, v, name] of [
        ["scale", gamma, bn.input[1]],
        ["bias", beta, bn.input[2]],
        ["running mean", mean, bn.input[3]],
        ["running variance", variance, bn.input[4]],
        ["weight", w, prod.input[1]],
        ["bias", bias, prod.input[2]],
      ] as const
    ) {
      for (let k = 0; v && k < v.length; k++) {
        if (!Number.isFinite(v[k])) {
          throw new QuantlabError(
            "NON_FINITE",
            `${where}: ${what} "${name}" holds ${v[k]} at index ${k}; folding needs finite values`,
          );
        }
      }
    }
    const s = new Float64Array(c);
    for (let k = 0; k < c; k++) {
      if (!(variance[k] + eps > 0)) {
        throw new QuantlabError(
          "NON_FINITE",
          `${where}: running variance "${bn.input[4]}" is ${variance[k]} at channel ${k} (epsilon ${eps}); ` +
            `variance + epsilon must be > 0, else the folded weights are NaN`,
        );
      }
      s[k] = gamma[k] / Math.sqrt(variance[k] + eps);
    }
    const nw = new Float32Array(w.length);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const idx = o * inner + i;
        nw[idx] = w[idx] * s[axisFirst ? o : i];
      }
    }
    const nb = new Float32Array(c);
    for (let k = 0; k < c; k++) nb[k] = ((bias ? bias[k] : 0) - mean[k]) * s[k] + beta[k];
    for (const [what, v] of [["weights", nw], ["bias", nb]] as const) {
      for (let k = 0; k < v.length; k++) {
        if (!Number.isFinite(v[k])) {
          throw new QuantlabError(
            "NON_FINITE",
            `${where}: folded ${what} of ${nodeLabel(prod, pi)} overflow float32 (${v[k]} at index ${k}); ` +
              `the statistics scale the weights beyond float32`,
          );
        }
      }
    }
    const wName = b.fresh(`${prod.input[1]}_folded`);
    const bName = b.fresh(`${prod.name || prod.output[0]}_bias_folded`);
    g.initializer.push(makeTensorProto(wName, nw, wT.dims), makeTensorProto(bName, nb, [c]));
    prod.input = [prod.input[0], wName, bName];
    prod.output = [bn.output[0]];
    remove.add(bi);
    folded.push(label);
  }
  g.node = g.node.filter((_, i) => !remove.has(i));
  removeDeadNodes(g);
  m.validate();
  return { model: m, folded, skipped };
}
