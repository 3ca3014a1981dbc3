/**
 * One layer's AdaRound optimisation (AIMET `AdaroundOptimizer._optimize_rounding`): Adam on V alone, each iteration
 * on `batchSize` examples drawn without replacement from the cached layer inputs and float targets (AIMET's
 * `torch.randperm(n)[:32]`), the rounding term off for the first `warmStart` fraction of iterations and beta
 * annealed by the cosine rule, hard rounding `V >= 0` at the end. The reconstruction error of hard rounding is
 * measured before (V as initialised: round-to-nearest) and after on the first examples of the cache, as AIMET's
 * `_compute_recons_metrics` does on its first batch (mean over elements, `functional.mse_loss`).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { adam } from "../grad/optim.ts";
import { GradientSession } from "../grad/session.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { ROUNDING_NAMES, roundingGradientGraph, type RoundingLayer, splitWeights } from "./layer_graph.ts";
import { annealedBeta, hardRoundCodes, initialRoundingVariable, roundingRegularizer } from "./rectified_sigmoid.ts";

/** Cached activations of many examples: `data` holds `count` samples of `sampleDims` each, contiguous. */
export interface CachedActivations {
  /** Values, sample-major. */
  readonly data: Float32Array;
  /** Dims of one sample (without the batch axis). */
  readonly sampleDims: readonly number[];
  /** Number of samples. */
  readonly count: number;
}

/** Hyperparameters of one layer's optimisation (AIMET `AdaroundHyperParameters` plus Adam and batching). */
export interface LayerRoundingOptions {
  /** Adam iterations. */
  readonly iterations: number;
  /** Examples per iteration. */
  readonly batchSize: number;
  /** Weight of the rounding regulariser. */
  readonly regWeight: number;
  /** Beta annealed from `[0]` to `[1]`. */
  readonly betaRange: readonly [number, number];
  /** Fraction of iterations without the rounding term. */
  readonly warmStart: number;
  /** Adam learning rate. */
  readonly lr: number;
  /** Seed of the batch draws. */
  readonly seed: number;
  /** Record the loss every this many iterations (and the last one). */
  readonly curveEvery: number;
  /** Examples used to measure the reconstruction error before and after (the first ones of the cache). */
  readonly evalCount: number;
  /** ORT options. */
  readonly session: SessionOptions;
}

/** One point of a layer's loss curve. */
export interface LossPoint {
  /** Iteration (0-based). */
  readonly iteration: number;
  /** Total loss of that iteration's batch. */
  readonly loss: number;
  /** Reconstruction part. */
  readonly recon: number;
  /** Rounding part (`reg * sum(1 - |2h - 1|^beta)`, 0 during the warm start). */
  readonly round: number;
  /** Beta (0 during the warm start). */
  readonly beta: number;
}

/** What one layer's optimisation produced. */
export interface LayerRoundingResult {
  /** Layer label. */
  readonly label: string;
  /** Weight elements. */
  readonly elements: number;
  /** Hard-rounded integer codes (as floats, in `[qmin, qmax]`). */
  readonly codes: Float32Array;
  /** The on-grid weight values `(codes - zp) * s` (float32). */
  readonly values: Float32Array;
  /** Reconstruction MSE (mean over output elements) with round-to-nearest. */
  readonly mseNearest: number;
  /** Reconstruction MSE with the soft rounding at the end. */
  readonly mseSoft: number;
  /** Reconstruction MSE with the final hard rounding. */
  readonly mseAdaRound: number;
  /** Fraction of weights rounded differently from round-to-nearest. */
  readonly flipped: number;
  /** Fraction of h(V) values not yet at 0 or 1 when the optimisation stopped. */
  readonly undecided: number;
  /** The loss curve. */
  readonly curve: readonly LossPoint[];
  /** Wall time, seconds. */
  readonly seconds: number;
}

function gather(src: CachedActivations, idx: Int32Array | number[], n: number, out: Float32Array): void {
  const per = src.data.length / src.count;
  for (let k = 0; k < n; k++) out.set(src.data.subarray(idx[k] * per, (idx[k] + 1) * per), k * per);
}

/** Partial Fisher-Yates: the first `n` entries of `perm` become a uniform draw without replacement. */
function drawBatch(rng: Prng, perm: Int32Array, n: number): void {
  for (let k = 0; k < n; k++) {
    const j = k + rng.nextInt(perm.length - k);
    const t = perm[k];
    perm[k] = perm[j];
    perm[j] = t;
  }
}

/**
 * Optimise the rounding of one layer (see the module doc) on cached inputs `x` and float targets `t` (after the
 * following activation). Throws `SHAPE_MISMATCH` when the caches disagree and `NON_FINITE` if V diverges.
 *
 * @example
 * ```ts ignore
 * const r = await roundLayer(layer, inputs, targets, { iterations: 1000, batchSize: 32, ... });
 * console.log(r.mseNearest, "->", r.mseAdaRound);
 * ```
 */
export async function roundLayer(
  layer: RoundingLayer,
  x: CachedActivations,
  t: CachedActivations,
  o: LayerRoundingOptions,
): Promise<LayerRoundingResult> {
  const t0 = performance.now();
  if (x.count !== t.count || x.count < 2) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `AdaRound ${layer.label}: ${x.count} cached inputs and ${t.count} targets (need equal counts >= 2)`,
    );
  }
  const { params: p } = layer;
  const { base, fraction } = splitWeights(layer.weight, layer.dims, layer.axis, p);
  const v0 = initialRoundingVariable(fraction);
  const bs = Math.min(o.batchSize, x.count);
  const xPer = x.data.length / x.count, tPer = t.data.length / t.count;
  const xBuf = new Float32Array(bs * xPer), tBuf = new Float32Array(bs * tPer);
  const xT = new Tensor<"float32">(xBuf, [bs, ...x.sampleDims]);
  const tT = new Tensor<"float32">(tBuf, [bs, ...t.sampleDims]);
  const first = Int32Array.from({ length: bs }, (_, k) => k);
  gather(x, first, bs, xBuf);
  gather(t, first, bs, tBuf);
  const tg = await roundingGradientGraph(layer, base, v0, xT, tT, o.session);
  const gs = await GradientSession.create(tg, o.session);
  const N = ROUNDING_NAMES;
  const scalar = (v: number) => new Tensor<"float32">(new Float32Array([v]), []);
  const channels = t.sampleDims[layer.node.opType === "MatMul" ? t.sampleDims.length - 1 : 0] ?? 1;
  try {
    // Reconstruction MSE of a fixed V on the first evalCount examples (reg 0: the loss is the reconstruction).
    const ne = Math.min(o.evalCount, x.count);
    const ex = new Tensor<"float32">(x.data.subarray(0, ne * xPer), [ne, ...x.sampleDims]);
    const et = new Tensor<"float32">(t.data.subarray(0, ne * tPer), [ne, ...t.sampleDims]);
    const mse = async (v: Float32Array): Promise<number> => {
      const r = await gs.run(
        { [N.input]: ex, [N.target]: et, [N.beta]: scalar(2), [N.reg]: scalar(0) },
        new Map([[N.variable, v]]),
      );
      return r.loss / channels;
    };
    const hard = (v: Float32Array) => v.map((a) => (a >= 0 ? 1e4 : -1e4));
    const mseNearest = await mse(hard(v0));
    const v = v0.slice();
    const params = new Map([[N.variable, v]]);
    const opt = adam({ lr: o.lr });
    const rng = new Prng(o.seed);
    const perm = Int32Array.from({ length: x.count }, (_, k) => k);
    const curve: LossPoint[] = [];
    for (let it = 0; it < o.iterations; it++) {
      drawBatch(rng, perm, bs);
      gather(x, perm, bs, xBuf);
      gather(t, perm, bs, tBuf);
      const beta = annealedBeta(it, o.iterations, o.betaRange, o.warmStart);
      const reg = beta === 0 ? 0 : o.regWeight;
      const r = await gs.run(
        { [N.input]: xT, [N.target]: tT, [N.beta]: scalar(beta || 2), [N.reg]: scalar(reg) },
        params,
      );
      if (it % o.curveEvery === 0 || it === o.iterations - 1) {
        const round = reg === 0 ? 0 : reg * roundingRegularizer(v, beta);
        curve.push({ iteration: it, loss: r.loss, recon: r.loss - round, round, beta });
      }
      opt.step(params, r.grads);
    }
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i])) throw new QuantlabError("NON_FINITE", `AdaRound ${layer.label}: V diverged`);
    }
    const mseSoft = await mse(v);
    const mseAdaRound = await mse(hard(v));
    const codes = hardRoundCodes(base, v, p.qmin, p.qmax);
    const nearest = hardRoundCodes(base, v0, p.qmin, p.qmax);
    const slots = p.scale.length;
    let inner = 1;
    for (let k = layer.axis + 1; k < layer.dims.length; k++) inner *= layer.dims[k];
    const values = new Float32Array(codes.length);
    let flipped = 0, undecided = 0;
    const span = 1.2;
    for (let i = 0; i < codes.length; i++) {
      const c = slots === 1 ? 0 : Math.floor(i / inner) % layer.dims[layer.axis];
      values[i] = Math.fround((codes[i] - p.zeroPoint[c]) * p.scale[c]);
      if (codes[i] !== nearest[i]) flipped++;
      const h = 1 / (1 + Math.exp(-v[i])) * span - 0.1;
      if (h > 0 && h < 1) undecided++;
    }
    return {
      label: layer.label,
      elements: codes.length,
      codes,
      values,
      mseNearest,
      mseSoft,
      mseAdaRound,
      flipped: flipped / codes.length,
      undecided: undecided / codes.length,
      curve,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await gs.release();
  }
}
