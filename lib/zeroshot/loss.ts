/**
 * ZeroQ's BatchNorm-statistics loss, as a graph ({@link zeroqLoss}, for the gradient compiler) and on the CPU
 * ({@link zeroqTerms}, {@link channelStatistics}, for reports and checks). For every tapped value `x`
 * (`[N, C, ...spatial]`, see `findBatchNormTaps`) with `S` spatial elements per channel:
 *
 * ```
 * mu[n, c]    = mean_s x[n, c, s]
 * sigma[n, c] = sqrt(sum_s (x[n, c, s] - mu[n, c])^2 / (S - 1) + 1e-6)      (torch.var is unbiased)
 * loss       += sum_{n,c} (mu_BN[c] - mu[n, c])^2 / N + sum_{n,c} (sigma_BN[c] - sigma[n, c])^2 / N
 * ```
 *
 * with `sigma_BN = sqrt(running_var + 1e-6)`, plus the same two terms for the input image against a target
 * mean (0) and standard deviation (1) per channel: exactly `own_loss` summed in ZeroQ's `distill_data.py`.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { LossTerm } from "../grad/losses.ts";
import type { Emitter } from "../grad/emitter.ts";
import { type BatchNormTap, ZEROQ_EPS } from "./bn_taps.ts";

/** A value whose per-sample channel statistics are pulled toward targets. */
export interface StatisticsTarget {
  /** Value name in the graph, `[N, C, ...spatial]`. */
  readonly value: string;
  /** Target mean per channel. */
  readonly mean: Float32Array;
  /** Target standard deviation per channel. */
  readonly std: Float32Array;
  /** Spatial elements per channel (product of the dims after C; must be >= 2). */
  readonly spatial: number;
  /** Rank of the value (4 for images). */
  readonly rank: number;
}

function statTerm(e: Emitter, t: StatisticsTarget): string {
  const C = t.mean.length;
  const axes = Array.from({ length: t.rank - 2 }, (_, i) => i + 2);
  const muK = e.reduceMean(t.value, axes, true);
  const mu = e.op("Flatten", [muK], { axis: 1 }); // [N, C]
  const d = e.sub(t.value, muK);
  const ss = e.reduceSum(e.mul(d, d), axes, false); // [N, C]
  const variance = e.mul(ss, e.scalar(1 / (t.spatial - 1)));
  const sigma = e.op("Sqrt", [e.add(variance, e.scalar(ZEROQ_EPS))]);
  const dm = e.sub(mu, e.constF(t.mean, [C]));
  const ds = e.sub(sigma, e.constF(t.std, [C]));
  // sum over (n, c) / N = mean over n of the sum over c
  const lm = e.reduceMean(e.reduceSum(e.mul(dm, dm), [1], false), null, false);
  const ls = e.reduceMean(e.reduceSum(e.mul(ds, ds), [1], false), null, false);
  return e.add(lm, ls);
}

/**
 * The loss term (for `buildGradientGraph`) summing ZeroQ's mean and standard-deviation terms over `targets`
 * (the BatchNorm taps and the input; see {@link statisticsTargets}).
 *
 * @example
 * ```ts
 * import { zeroqLoss } from "./loss.ts";
 * const term = zeroqLoss([{ value: "x", mean: new Float32Array([0]), std: new Float32Array([1]), spatial: 4, rank: 4 }]);
 * if (typeof term !== "function") throw new Error("bad");
 * ```
 */
export function zeroqLoss(targets: readonly StatisticsTarget[]): LossTerm {
  if (targets.length === 0) throw new QuantlabError("INVALID_ARGUMENT", "zeroqLoss: no statistics targets");
  for (const t of targets) {
    if (!(t.spatial >= 2) || t.rank < 3 || t.mean.length !== t.std.length) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `zeroqLoss: "${t.value}" needs rank >= 3, >= 2 spatial elements and as many means as stds ` +
          `(rank ${t.rank}, spatial ${t.spatial}, ${t.mean.length} means, ${t.std.length} stds)`,
      );
    }
  }
  return (ctx) => ctx.e.sum(targets.map((t) => statTerm(ctx.e, { ...t, value: ctx.value(t.value) })));
}

/**
 * The statistics targets of a model: each BatchNorm tap (with its spatial size from `shapes`), then the input
 * against `inputMean` / `inputStd` per channel (ZeroQ: 0 and 1).
 *
 * @example
 * ```ts
 * import { statisticsTargets } from "./loss.ts";
 * const taps = [{ node: "bn", value: "c", producer: "Conv", channels: 1, mean: new Float32Array([0]), std: new Float32Array([1]) }];
 * const t = statisticsTargets(taps, { input: "x", inputShape: [1, 4, 4], shapes: new Map([["c", [2, 1, 3, 3]]]) });
 * if (t.length !== 2 || t[0].spatial !== 9 || t[1].value !== "x" || t[1].spatial !== 16) throw new Error("bad");
 * ```
 */
export function statisticsTargets(
  taps: readonly BatchNormTap[],
  o: {
    input: string;
    inputShape: readonly number[];
    shapes: ReadonlyMap<string, readonly number[]>;
    inputMean?: number;
    inputStd?: number;
  },
): StatisticsTarget[] {
  const out: StatisticsTarget[] = [];
  for (const t of taps) {
    const s = o.shapes.get(t.value);
    if (!s) throw new QuantlabError("MALFORMED_MODEL", `no captured shape for BatchNorm input "${t.value}"`);
    if (s[1] !== t.channels) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `BatchNorm ${t.node}: its input "${t.value}" has ${s[1]} channels, the statistics ${t.channels}`,
      );
    }
    out.push({ value: t.value, mean: t.mean, std: t.std, spatial: prod(s.slice(2)), rank: s.length });
  }
  const C = o.inputShape[0];
  out.push({
    value: o.input,
    mean: new Float32Array(C).fill(o.inputMean ?? 0),
    std: new Float32Array(C).fill(o.inputStd ?? 1),
    spatial: prod(o.inputShape.slice(1)),
    rank: o.inputShape.length + 1,
  });
  return out;
}

function prod(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}

/** Per-sample, per-channel statistics of a `[N, C, ...]` value (float64 accumulation). */
export interface ChannelStatistics {
  /** Means, `N * C` (row-major `[n][c]`). */
  readonly mean: Float64Array;
  /** `sqrt(unbiased variance + 1e-6)`, `N * C`. */
  readonly std: Float64Array;
  /** Samples. */
  readonly n: number;
  /** Channels. */
  readonly c: number;
}

/**
 * Per-sample channel means and standard deviations (unbiased variance plus ZeroQ's 1e-6, as the loss).
 *
 * @example
 * ```ts
 * import { channelStatistics } from "./loss.ts";
 * const s = channelStatistics(new Float32Array([1, 3, 0, 0]), [1, 2, 2]); // n=1, c=2, 2 elements each
 * if (s.mean[0] !== 2 || Math.abs(s.std[0] - Math.sqrt(2 + 1e-6)) > 1e-12 || s.mean[1] !== 0) throw new Error("bad");
 * ```
 */
export function channelStatistics(x: Float32Array, shape: readonly number[]): ChannelStatistics {
  const n = shape[0], c = shape[1];
  const s = prod(shape.slice(2));
  if (x.length !== n * c * s || s < 2) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `channelStatistics: ${x.length} values for shape [${shape}] (need >= 2 spatial elements)`,
    );
  }
  const mean = new Float64Array(n * c), std = new Float64Array(n * c);
  for (let r = 0; r < n * c; r++) {
    const o = r * s;
    let m = 0;
    for (let i = 0; i < s; i++) m += x[o + i];
    m /= s;
    let v = 0;
    for (let i = 0; i < s; i++) {
      const d = x[o + i] - m;
      v += d * d;
    }
    mean[r] = m;
    std[r] = Math.sqrt(v / (s - 1) + ZEROQ_EPS);
  }
  return { mean, std, n, c };
}

/**
 * ZeroQ's two terms for one value: `[sum (mu_t - mu)^2 / N, sum (sigma_t - sigma)^2 / N]` (float64).
 *
 * @example
 * ```ts
 * import { channelStatistics, zeroqTerms } from "./loss.ts";
 * const s = channelStatistics(new Float32Array([1, 3, 1, 3]), [2, 1, 2]);
 * const [lm] = zeroqTerms(s, new Float32Array([0]), new Float32Array([1]));
 * if (lm !== 4) throw new Error(String(lm)); // (0 - 2)^2 * 2 samples / 2
 * ```
 */
export function zeroqTerms(s: ChannelStatistics, mean: Float32Array, std: Float32Array): [number, number] {
  let lm = 0, ls = 0;
  for (let n = 0; n < s.n; n++) {
    for (let c = 0; c < s.c; c++) {
      const dm = mean[c] - s.mean[n * s.c + c], ds = std[c] - s.std[n * s.c + c];
      lm += dm * dm;
      ls += ds * ds;
    }
  }
  return [lm / s.n, ls / s.n];
}
