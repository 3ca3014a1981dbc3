/**
 * Baselines for the HAWQ integer program at equal budgets: uniform widths and random allocations live on
 * {@link HawqAnalysis} (`uniform`, `random`); this module adds
 *
 * - {@link greedyAllocation}: start every layer at its widest candidate and repeatedly lower the group of tied
 *   layers whose next narrower width adds the least sensitivity per unit of budgeted resource saved, until every
 *   budget holds (the usual greedy for a multiple-choice knapsack; AIMET's greedy mixed precision is of this kind,
 *   with a measured accuracy curve per layer where this uses Omega);
 * - {@link hawqV2Fallback}: Intel Neural Compressor's `hawq_v2` strategy (`neural_compressor/strategy/hawq_v2.py`):
 *   quantize every op, rank ops by Hessian trace (its `op_to_traces`, the per-parameter trace `v^T H v / n`; sorted
 *   descending for a higher-is-better metric) and return them to higher precision one at a time, accumulating, and
 *   evaluating after each, until the accuracy target is met. INC falls back from int8 to fp32; here from the lowest
 *   candidate width to the highest, and (for comparisons at equal size) a layer whose fallback would break a budget
 *   is skipped (the next one in the order is tried). Like INC it ignores ties (the plan allows different weight
 *   widths on layers sharing an input).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { HawqAnalysis, MixedAllocation, MixedBudgets } from "./hawq.ts";
import { evaluateAllocation } from "./ilp.ts";

function budgetsHold(usage: Readonly<Record<string, number>>, budgets: MixedBudgets): boolean {
  return Object.entries(budgets).every(([r, b]) => b === undefined || usage[r] <= b + 1e-9 * Math.max(1, Math.abs(b)));
}

/** Searched layers grouped by ties (fixed layers left out), in graph order. */
function searchedGroups(analysis: HawqAnalysis): string[][] {
  const tieOf = new Map<string, number>();
  analysis.ties.forEach((g, i) => g.forEach((n) => tieOf.set(n, i)));
  const out: string[][] = [];
  const seen = new Map<number, string[]>();
  for (const l of analysis.layers) {
    if (l.fixed !== undefined) continue;
    const t = tieOf.get(l.node);
    if (t === undefined) out.push([l.node]);
    else if (seen.has(t)) seen.get(t)!.push(l.node);
    else {
      const g = [l.node];
      seen.set(t, g);
      out.push(g);
    }
  }
  return out;
}

/**
 * Greedy allocation by sensitivity under budgets (see the module doc). The resource saved by a step is the sum over
 * the budgeted resources of the saving divided by that budget. Throws `INVALID_ARGUMENT` when even the narrowest
 * widths break a budget.
 *
 * @example
 * ```ts
 * import { greedyAllocation } from "./baselines.ts";
 * import { HawqAnalysis } from "./hawq.ts";
 * import { QuantPlan } from "../ptq/plan.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const q = quantizer().int(8).perChannel();
 * const layer = (node: string, tr: number) => ({
 *   node, tensor: `${node}.w`, opType: "Gemm", params: 100, macs: 100, activationBits: 8, bits: [4, 8],
 *   trace: { tensor: `${node}.w`, params: 100, trace: tr * 100, tracePerParam: tr, stderr: 0, iterations: 1, converged: true },
 *   delta2: { 4: 1, 8: 0.01 }, sensitivity: { 4: tr, 8: tr * 0.01 },
 * });
 * const plan = new QuantPlan(["a", "b"].map((n) => ({ kind: "weight" as const, tensor: `${n}.w`, role: "weight" as const,
 *   node: n, opType: "Gemm", axis: 0, quantizer: q, bits: 8 })));
 * const a = new HawqAnalysis([layer("a", 1), layer("b", 5)], [], plan, (_e, b) => q.int(b));
 * const g = greedyAllocation(a, { size: 150 }); // room for one layer at 8 bits: the less sensitive one drops
 * if (g.bits.a !== 4 || g.bits.b !== 8 || g.method !== "greedy") throw new Error(JSON.stringify(g.bits));
 * ```
 */
export function greedyAllocation(analysis: HawqAnalysis, budgets: MixedBudgets): MixedAllocation {
  const problem = analysis.problem(budgets);
  const layerBy = new Map(analysis.layers.map((l) => [l.node, l]));
  const bits: Record<string, number> = {};
  for (const l of analysis.layers) bits[l.node] = l.fixed ?? Math.max(...l.bits);
  const groups = searchedGroups(analysis);
  const resources = Object.entries(budgets).filter(([, v]) => v !== undefined) as [string, number][];
  let state = evaluateAllocation(problem, bits);
  while (!budgetsHold(state.usage, budgets)) {
    let best: { group: string[]; to: number; score: number } | undefined;
    for (const g of groups) {
      const cur = bits[g[0]];
      const lower = layerBy.get(g[0])!.bits.filter((b) => b < cur);
      if (lower.length === 0) continue;
      const to = Math.max(...lower);
      const trial = { ...bits };
      for (const n of g) trial[n] = to;
      const next = evaluateAllocation(problem, trial);
      let saved = 0;
      for (const [r, b] of resources) saved += (state.usage[r] - next.usage[r]) / Math.max(Math.abs(b), 1e-12);
      if (!(saved > 0)) continue;
      const score = (next.objective - state.objective) / saved;
      if (!best || score < best.score) best = { group: g, to, score };
    }
    if (!best) {
      throw new QuantlabError("INVALID_ARGUMENT", `greedy allocation: no allocation meets ${JSON.stringify(budgets)}`);
    }
    for (const n of best.group) bits[n] = best.to;
    state = evaluateAllocation(problem, bits);
  }
  return analysis.allocation(bits, "greedy");
}

/** One step of {@link hawqV2Fallback}. */
export interface FallbackStep {
  /** The layer returned to higher precision at this step (none at step 0: everything at the low width). */
  readonly node?: string;
  /** The allocation after the step. */
  readonly allocation: MixedAllocation;
  /** Its accuracy as the callback measured it. */
  readonly accuracy: number;
}

/** Options of {@link hawqV2Fallback}. */
export interface FallbackOptions {
  /** Stop once the accuracy is at least this. */
  readonly target: number;
  /** Width every searched layer starts at (default the lowest candidate). */
  readonly low?: number;
  /** Width a layer falls back to (default the highest candidate). */
  readonly high?: number;
  /** Skip fallbacks that would break these budgets (default none, as INC). */
  readonly budgets?: MixedBudgets;
  /** Called after every evaluation. */
  readonly onStep?: (step: FallbackStep) => void;
}

/** Result of {@link hawqV2Fallback}. */
export interface FallbackResult {
  /** Every evaluated step, in order. */
  readonly steps: readonly FallbackStep[];
  /** The last step (the allocation returned). */
  readonly final: FallbackStep;
  /** Whether the target was met. */
  readonly met: boolean;
  /** The fallback order (by descending per-parameter trace). */
  readonly order: readonly string[];
}

/**
 * Intel Neural Compressor's hawq_v2 fallback (see the module doc): `evaluate` measures an allocation's accuracy
 * (e.g. PTQ with `allocation.apply(pipeline)` and a validation set).
 *
 * @example
 * ```ts
 * import { hawqV2Fallback } from "./baselines.ts";
 * import { HawqAnalysis } from "./hawq.ts";
 * import { QuantPlan } from "../ptq/plan.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const q = quantizer().int(8).perChannel();
 * const layer = (node: string, tr: number) => ({
 *   node, tensor: `${node}.w`, opType: "Gemm", params: 100, macs: 100, activationBits: 8, bits: [4, 8],
 *   trace: { tensor: `${node}.w`, params: 100, trace: tr * 100, tracePerParam: tr, stderr: 0, iterations: 1, converged: true },
 *   delta2: { 4: 1, 8: 0.01 }, sensitivity: { 4: tr, 8: tr * 0.01 },
 * });
 * const plan = new QuantPlan(["a", "b"].map((n) => ({ kind: "weight" as const, tensor: `${n}.w`, role: "weight" as const,
 *   node: n, opType: "Gemm", axis: 0, quantizer: q, bits: 8 })));
 * const a = new HawqAnalysis([layer("a", 1), layer("b", 5)], [], plan, (_e, b) => q.int(b));
 * // a toy "accuracy": 0.5 plus 0.2 per layer at 8 bits
 * const acc = (bits: Record<string, number>) => 0.5 + 0.2 * Object.values(bits).filter((b) => b === 8).length;
 * const r = await hawqV2Fallback(a, async (x) => acc({ ...x.bits }), { target: 0.65 });
 * if (!r.met || r.order[0] !== "b" || r.final.allocation.bits.b !== 8 || r.final.allocation.bits.a !== 4) {
 *   throw new Error(JSON.stringify(r.final.allocation.bits));
 * }
 * ```
 */
export async function hawqV2Fallback(
  analysis: HawqAnalysis,
  evaluate: (allocation: MixedAllocation) => Promise<number>,
  options: FallbackOptions,
): Promise<FallbackResult> {
  const searched = analysis.layers.filter((l) => l.fixed === undefined);
  if (searched.length === 0) throw new QuantlabError("INVALID_ARGUMENT", "hawq_v2 fallback: no searched layers");
  const low = options.low ?? Math.min(...searched[0].bits), high = options.high ?? Math.max(...searched[0].bits);
  for (const l of searched) {
    if (!l.bits.includes(low) || !l.bits.includes(high)) {
      throw new QuantlabError("INVALID_ARGUMENT", `hawq_v2 fallback: layer "${l.node}" has no width ${low} or ${high}`);
    }
  }
  const order = [...searched].sort((a, b) => b.trace.tracePerParam - a.trace.tracePerParam).map((l) => l.node);
  const bits: Record<string, number> = {};
  for (const l of analysis.layers) bits[l.node] = l.fixed ?? low;
  const budgets = options.budgets ?? {};
  const steps: FallbackStep[] = [];
  const step = async (node?: string) => {
    const allocation = analysis.allocation({ ...bits }, node ? `hawq_v2 fallback (+${node})` : "hawq_v2 fallback");
    const s: FallbackStep = { ...(node ? { node } : {}), allocation, accuracy: await evaluate(allocation) };
    steps.push(s);
    options.onStep?.(s);
    return s;
  };
  if (!budgetsHold(analysis.usage(bits), budgets)) {
    throw new QuantlabError("INVALID_ARGUMENT", `hawq_v2 fallback: all-${low}-bit breaks ${JSON.stringify(budgets)}`);
  }
  let last = await step();
  for (const node of order) {
    if (last.accuracy >= options.target) break;
    const trial = { ...bits, [node]: high };
    if (!budgetsHold(analysis.usage(trial), budgets)) continue;
    bits[node] = high;
    last = await step(node);
  }
  return { steps, final: last, met: last.accuracy >= options.target, order };
}
