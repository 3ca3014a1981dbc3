/**
 * BatchNorm folded with batch statistics for QAT (Jacob et al. 2018, Section 3.2 and Appendix C, Figure C.8): every
 * `Conv -> BatchNormalization` pair the PTQ state folded with running statistics is trained as
 *
 * ```
 * y0 = conv(x, W)                      (float weights, no bias: batch statistics)
 * mu_B = mean(y0), var_B = mean((y0 - mu_B)^2)   over N and the spatial axes
 * W_fold = W * gamma / sqrt(var_B + eps)        -> weight fake quantizer -> conv(x, .)
 * b_fold = beta - gamma * mu_B / sqrt(var_B + eps)   (-> bias fake quantizer)
 * ```
 *
 * differentiated through `mu_B` and `var_B` (PyTorch's BN training-mode backward), with the running statistics
 * updated after each step as `torch.nn.BatchNorm2d` does (`running = m * running + (1 - m) * batch`, ONNX momentum
 * `m`, unbiased batch variance for `running_var`). When BN is frozen the running statistics are folded in
 * (`W_f = W * gamma / sqrt(running_var + eps)`, `b_f = beta - gamma * running_mean / sqrt(running_var + eps)`, the
 * conv bias merged into the running mean) and training continues on the folded form the export uses.
 *
 * Where this departs from torch.ao (`torch/ao/nn/intrinsic/qat/modules/conv_fused.py`, `_ConvBnNd`): torch.ao
 * follows Krishnamoorthi (2018, Section 3.2.1) rather than the paper quoted here: it fake-quantizes
 * `W * gamma / sqrt(running_var + eps)` (the running statistics) and multiplies the conv output by
 * `running_std / batch_std` (`_forward_slow`; its default `_forward_approximate` divides by the running-stat scale
 * factor and applies a training-mode BN), so the weight grid sees stable scales while BN is unfrozen. Here the
 * quantizer sees the batch-folded weights (Jacob et al.'s Figure C.8), as the issue asks. Both compute the batch
 * statistics from a float conv of the same (fake-quantized) input. After freezing, torch.ao keeps `W`, `gamma` and
 * `beta` as separate parameters folded on the fly; here the folded `W_f`, `b_f` become the parameters (the same
 * function class; Adam's per-parameter steps differ). Gemm -> BatchNormalization pairs stay folded with running
 * statistics.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Emitter } from "../grad/emitter.ts";
import { attrFloat, GraphBuilder, indexGraph, matchChains, topologicalOrder } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { tensorValues } from "../onnx/tensor_data.ts";
import type { QuantParams } from "../quant/params.ts";

/** One Conv + BatchNormalization pair trained with batch statistics. */
export interface BatchFold {
  /** The conv's output (the BN's output in the source model). */
  readonly output: string;
  /** Folded weight initializer of the export form (replaced in the training graph). */
  readonly weight: string;
  /** Folded bias initializer of the export form (replaced in the training graph). */
  readonly bias: string;
  /** Learnable unfolded weight `W` (`<weight>_bn_raw`). */
  readonly raw: string;
  /** Learnable BN scale. */
  readonly gamma: string;
  /** Learnable BN shift. */
  readonly beta: string;
  /** Batch mean of the bias-free conv output (a kept output, `[C]`). */
  readonly batchMean: string;
  /** Biased batch variance (a kept output, `[C]`). */
  readonly batchVar: string;
  /** BN epsilon. */
  readonly eps: number;
  /** ONNX momentum (`running = m * running + (1 - m) * batch`). */
  readonly momentum: number;
  /** Running mean of the bias-free conv output (updated in place). */
  readonly runningMean: Float64Array;
  /** Running variance (updated in place). */
  readonly runningVar: Float64Array;
}

/** The training graph with batch-statistics BN and what the loop needs to drive it. */
export interface BatchFolded {
  /** The rewritten model (nodes in topological order). */
  readonly model: OnnxModel;
  /** The folds, one per Conv + BN pair. */
  readonly folds: readonly BatchFold[];
  /** Learnable names removed (the folded weights and biases) and added (raw weights, gammas, betas). */
  readonly removed: readonly string[];
  /** Added learnable names. */
  readonly added: readonly string[];
}

/**
 * Rewrite a fold-mode training graph (`trainable`, built over `folded`, the state's BN-folded float model) so that
 * every Conv whose BatchNormalization (in `source`) was folded uses batch statistics. Initial values are derived
 * from the folded tensors of `folded` (so passes that changed them, e.g. equalization, carry over):
 * `W = W_f / k`, `running_mean = (beta - b_f) / k` with `k = gamma / sqrt(running_var + eps)` from `source`.
 * Throws `INVALID_ARGUMENT` naming the BN when `gamma` is 0 for a channel (the fold cannot be inverted).
 *
 * @example
 * ```ts ignore
 * const r = foldWithBatchStatistics(trainable.model, state.model, state.source);
 * ```
 */
export function foldWithBatchStatistics(
  trainable: OnnxModel,
  folded: OnnxModel,
  source: OnnxModel,
  grids: ReadonlyMap<string, { readonly params: QuantParams }> = new Map(),
): BatchFolded {
  const m = trainable.clone();
  const g = m.graph;
  const b = new GraphBuilder(g);
  const e = new Emitter(g, m.opset(), b);
  const srcInits = indexGraph(source.graph).initializers;
  const foldedInits = indexGraph(folded.graph).initializers;
  const foldedByOutput = new Map(folded.graph.node.filter((n) => n.opType === "Conv").map((n) => [n.output[0], n]));
  const original = g.node.slice();
  const folds: BatchFold[] = [];
  const rename = new Map<string, string>();
  const removed: string[] = [], added: string[] = [];
  for (const [, bi] of matchChains(source.graph, ["Conv", "BatchNormalization"])) {
    const bn = source.graph.node[bi];
    const out = bn.output[0];
    const fconv = foldedByOutput.get(out);
    const tconv = original.find((n) => n.opType === "Conv" && n.output[0] === out);
    if (!fconv || !tconv || !fconv.input[2]) continue;
    const label = `BatchNormalization ${bn.name ? `"${bn.name}"` : `-> "${out}"`}`;
    const vals = (name: string) => {
      const t = srcInits.get(name);
      if (!t) throw new QuantlabError("INVALID_ARGUMENT", `${label}: "${name}" is not a constant`);
      return Float64Array.from(tensorValues(t) as Float32Array);
    };
    const [gamma, beta, var0] = [1, 2, 4].map((k) => vals(bn.input[k]));
    const eps = attrFloat(bn, "epsilon", 1e-5), momentum = attrFloat(bn, "momentum", 0.9);
    const wT = foldedInits.get(fconv.input[1])!, bT = foldedInits.get(fconv.input[2])!;
    const wf = tensorValues(wT) as Float32Array, bf = tensorValues(bT) as Float32Array;
    const C = wT.dims[0], inner = wf.length / C;
    const k = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      k[c] = gamma[c] / Math.sqrt(var0[c] + eps);
      if (!(Math.abs(k[c]) > 0) || !Number.isFinite(k[c])) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `${label}: scale "${bn.input[1]}" is ${gamma[c]} at channel ${c}; batch-statistics folding needs it non-zero`,
        );
      }
    }
    const raw = new Float32Array(wf.length);
    for (let i = 0; i < wf.length; i++) raw[i] = wf[i] / k[Math.floor(i / inner)];
    const runningMean = new Float64Array(C);
    for (let c = 0; c < C; c++) runningMean[c] = (beta[c] - bf[c]) / k[c];
    const rawName = b.initializer(`${fconv.input[1]}_bn_raw`, raw, wT.dims);
    const gName = b.initializer(`${fconv.input[1]}_bn_gamma`, Float32Array.from(gamma), [C]);
    const bName = b.initializer(`${fconv.input[1]}_bn_beta`, Float32Array.from(beta), [C]);
    const rank = wT.dims.length;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const bshape = [1, C, ...Array<number>(rank - 2).fill(1)];
    const y0 = e.op("Conv", [tconv.input[0], rawName], {});
    g.node[g.node.length - 1].attribute = structuredClone(tconv.attribute);
    const mu = e.reduceMean(y0, axes, true);
    const d = e.sub(y0, mu);
    const v = e.reduceMean(e.mul(d, d), axes, true);
    const sd = e.op("Sqrt", [e.add(v, e.scalar(eps))]);
    const kk = e.div(e.reshape(gName, bshape), sd);
    let wFold = e.mul(rawName, e.reshape(kk, [C, ...Array<number>(rank - 1).fill(1)]));
    const grid = grids.get(fconv.input[1])?.params;
    if (grid) {
      // STE weights (QuantizeLinear at int8 storage saturates only at its storage range): clip the batch-folded
      // weight to the grid first, so the gradient mask is the grid's (as for sub-8-bit activations).
      const lo = new Float32Array(C), hi = new Float32Array(C);
      for (let c = 0; c < C; c++) {
        const j = grid.scale.length === 1 ? 0 : c;
        lo[c] = (grid.qmin - grid.zeroPoint[j]) * grid.scale[j];
        hi[c] = (grid.qmax - grid.zeroPoint[j]) * grid.scale[j];
      }
      const dims = [C, ...Array<number>(rank - 1).fill(1)];
      const loN = e.constF(lo, dims), hiN = e.constF(hi, dims);
      wFold = e.where(e.op("Less", [wFold, loN]), loN, e.where(e.op("Greater", [wFold, hiN]), hiN, wFold));
    }
    const bFold = e.sub(bName, e.reshape(e.mul(mu, kk), [C]));
    const batchMean = e.reshape(mu, [C]), batchVar = e.reshape(v, [C]);
    rename.set(fconv.input[1], wFold);
    rename.set(fconv.input[2], bFold);
    removed.push(fconv.input[1], fconv.input[2]);
    added.push(rawName, gName, bName);
    folds.push({
      output: out,
      weight: fconv.input[1],
      bias: fconv.input[2],
      raw: rawName,
      gamma: gName,
      beta: bName,
      batchMean,
      batchVar,
      eps,
      momentum,
      runningMean,
      runningVar: Float64Array.from(var0),
    });
  }
  for (const n of original) n.input = n.input.map((x) => rename.get(x) ?? x);
  g.initializer = g.initializer.filter((t) => !rename.has(t.name));
  g.node = topologicalOrder(g);
  m.validate();
  return { model: m, folds, removed, added };
}

/**
 * Update each fold's running statistics from a step's batch statistics (`outputs`: the kept batch means and
 * variances), PyTorch's rule: `running_var` takes the unbiased variance (`count / (count - 1)`, `count` = batch size
 * times spatial size).
 *
 * @example
 * ```ts
 * import { updateRunningStatistics } from "./bn_fold.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const f = { batchMean: "m", batchVar: "v", momentum: 0.9, runningMean: new Float64Array([0]),
 *   runningVar: new Float64Array([1]) };
 * updateRunningStatistics([f], { m: new Tensor(new Float32Array([1]), [1]), v: new Tensor(new Float32Array([2]), [1]) }, () => 3);
 * if (Math.abs(f.runningMean[0] - 0.1) > 1e-9 || Math.abs(f.runningVar[0] - (0.9 + 0.1 * 3)) > 1e-9) throw new Error("bad");
 * ```
 */
export function updateRunningStatistics(
  folds: readonly Pick<BatchFold, "batchMean" | "batchVar" | "momentum" | "runningMean" | "runningVar">[],
  outputs: Readonly<Record<string, { readonly data: ArrayLike<number> | unknown }>>,
  count: (fold: number) => number,
): void {
  folds.forEach((f, i) => {
    const mu = outputs[f.batchMean]?.data as Float32Array | undefined;
    const v = outputs[f.batchVar]?.data as Float32Array | undefined;
    if (!mu || !v) throw new QuantlabError("INVALID_ARGUMENT", `batch statistics "${f.batchMean}" were not kept`);
    const n = count(i), m = f.momentum, unbias = n > 1 ? n / (n - 1) : 1;
    for (let c = 0; c < mu.length; c++) {
      f.runningMean[c] = m * f.runningMean[c] + (1 - m) * mu[c];
      f.runningVar[c] = m * f.runningVar[c] + (1 - m) * v[c] * unbias;
    }
  });
}

/**
 * The folded weights and biases (export form) of the current parameters and running statistics:
 * `W_f = W * gamma / sqrt(running_var + eps)`, `b_f = beta - gamma * running_mean / sqrt(running_var + eps)`.
 *
 * @example
 * ```ts
 * import { foldRunning } from "./bn_fold.ts";
 * const f = { weight: "wf", bias: "bf", raw: "w", gamma: "g", beta: "b", eps: 0, runningMean: new Float64Array([1]),
 *   runningVar: new Float64Array([4]) };
 * const p = new Map([["w", new Float32Array([3, 5])], ["g", new Float32Array([2])], ["b", new Float32Array([1])]]);
 * const o = foldRunning([f], p);
 * if (o.get("wf")!.join() !== "3,5" || o.get("bf")![0] !== 0) throw new Error("bad");
 * ```
 */
export function foldRunning(
  folds: readonly Pick<
    BatchFold,
    "weight" | "bias" | "raw" | "gamma" | "beta" | "eps" | "runningMean" | "runningVar"
  >[],
  params: ReadonlyMap<string, Float32Array>,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const f of folds) {
    const w = params.get(f.raw), gamma = params.get(f.gamma), beta = params.get(f.beta);
    if (!w || !gamma || !beta) {
      throw new QuantlabError("INVALID_ARGUMENT", `no parameters for the fold of "${f.weight}"`);
    }
    const C = gamma.length, inner = w.length / C;
    const wf = new Float32Array(w.length), bf = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      const k = gamma[c] / Math.sqrt(f.runningVar[c] + f.eps);
      for (let i = c * inner; i < (c + 1) * inner; i++) wf[i] = w[i] * k;
      bf[c] = beta[c] - k * f.runningMean[c];
    }
    out.set(f.weight, wf);
    out.set(f.bias, bf);
  }
  return out;
}
