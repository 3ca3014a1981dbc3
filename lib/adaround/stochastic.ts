/**
 * Stochastic rounding of weights as a post-training baseline (the AdaRound paper's Table 1: ResNet-18 with only the
 * first layer at 4 bits, nearest 52.29 %, stochastic 52.06 +- 5.52 % over draws, best stochastic 63.06 %; the survey's
 * "stochastic rounding" row). Each planned uniform affine weight (per tensor or per channel) is fitted as the plan
 * says, then every element is rounded up with probability equal to its fractional part,
 * `q = clamp(floor(w / s) + [u < frac] + zp, qmin, qmax)` with `u` uniform from a seeded PRNG, and written into the
 * state as `weightValues` + `weightFits` exactly as AdaRound's result is, so materialization stores those codes.
 * Draw `k` of {@link stochasticRoundingTrials} uses seed `seed + k`; evaluate each and report mean, spread and best.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { indexGraph } from "../onnx/graph.ts";
import { tensorValues } from "../onnx/tensor_data.ts";
import { fitPlannedWeights } from "../ptq/materialize.ts";
import { type PassContext, type PtqPass, type PtqState, registerPass, timedPass } from "../ptq/pass.ts";
import type { FittedWeights } from "../quant/weight_quantizer.ts";
import { Prng } from "../tensor/prng.ts";
import { slotIndex, splitWeights } from "./layer_graph.ts";

/** Options of {@link stochasticRounding} and {@link stochasticRoundingTrials}. */
export interface StochasticRoundingOptions {
  /** Seed (default 0). */
  readonly seed?: number;
  /** Round only the layers (plan labels) this accepts (default all). */
  readonly layers?: (label: string) => boolean;
}

/**
 * One seeded stochastic rounding of every planned uniform weight of `state` (plan required). Returns the new state
 * fields (not a pass record).
 *
 * @example
 * ```ts ignore
 * const { weightValues, weightFits } = stochasticRoundState(state, { seed: 3 });
 * ```
 */
export function stochasticRoundState(
  state: PtqState,
  options: StochasticRoundingOptions = {},
): { weightValues: Map<string, Float32Array>; weightFits: Map<string, FittedWeights>; rounded: number } {
  const plan = state.plan;
  if (!plan) throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: stochastic rounding needs a plan`);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `stochastic rounding seed must be an integer >= 0, got ${seed}`);
  }
  const rng = new Prng(seed);
  const fitted = fitPlannedWeights(state);
  const inits = indexGraph(state.model.graph).initializers;
  const weightValues = new Map(state.weightValues);
  const weightFits = new Map(state.weightFits);
  let rounded = 0;
  for (const e of plan.weights) {
    const f = fitted.get(e.tensor)!;
    const p = f.affine;
    if (!p || p.granularity.kind === "group" || (options.layers && !options.layers(e.node))) continue;
    const t = inits.get(e.tensor)!;
    const w = state.weightValues.get(e.tensor) ?? (tensorValues(t) as Float32Array);
    const { base, fraction } = splitWeights(w, t.dims, e.axis, p);
    const slot = slotIndex(t.dims, e.axis, p.scale.length);
    const out = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) {
      const c = slot[i];
      let q = base[i] + (rng.nextFloat() < fraction[i] ? 1 : 0);
      q = q < p.qmin ? p.qmin : q > p.qmax ? p.qmax : q;
      out[i] = Math.fround((q - p.zeroPoint[c]) * p.scale[c]);
    }
    weightValues.set(e.tensor, out);
    weightFits.set(e.tensor, f);
    rounded++;
  }
  return { weightValues, weightFits, rounded };
}

/**
 * `draws` states, draw k stochastically rounded with seed `seed + k` (evaluate each: mean, spread, best of N).
 *
 * @example
 * ```ts ignore
 * const states = stochasticRoundingTrials(await run.state(), { draws: 20, seed: 0 });
 * const accs = await Promise.all(states.map(async (s) => (await evaluateAccuracy(materializeQdq(s).model, test)).top1));
 * ```
 */
export function stochasticRoundingTrials(
  state: PtqState,
  options: StochasticRoundingOptions & { draws: number },
): PtqState[] {
  if (!Number.isInteger(options.draws) || options.draws < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `stochastic rounding draws must be a positive integer`);
  }
  const seed = options.seed ?? 0;
  return Array.from({ length: options.draws }, (_, k) => {
    const r = stochasticRoundState(state, { ...options, seed: seed + k });
    return { ...state, weightValues: r.weightValues, weightFits: r.weightFits };
  });
}

/**
 * The stochastic-rounding pass (stage `calibrated`): one seeded draw.
 *
 * @example
 * ```ts
 * import { stochasticRounding } from "./stochastic.ts";
 * const p = stochasticRounding({ seed: 7 });
 * if (p.stage !== "calibrated" || p.toString() !== "stochasticRounding(seed=7)") throw new Error(p.toString());
 * ```
 */
export function stochasticRounding(options: StochasticRoundingOptions = {}): PtqPass {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `stochastic rounding seed must be an integer >= 0, got ${seed}`);
  }
  return {
    name: "stochasticRounding",
    stage: "calibrated",
    run(state: PtqState, _ctx: PassContext): Promise<PtqState> {
      return timedPass("stochasticRounding", state, () => {
        const r = stochasticRoundState(state, options);
        return Promise.resolve({
          patch: { weightValues: r.weightValues, weightFits: r.weightFits },
          summary: `${r.rounded} weights rounded stochastically (seed ${seed})`,
          details: { seed, rounded: r.rounded },
        });
      });
    },
    toString: () => `stochasticRounding(seed=${seed})`,
  };
}

registerPass("stochasticRounding", (o) => stochasticRounding(o as StochasticRoundingOptions));
