/**
 * The exact integer program of HAWQ-v3 (`Zhen-Dong/HAWQ`, `ILP.ipynb`): one bit width per layer, minimising the
 * summed sensitivity subject to budgets on any additive resources (model size, BOPs, measured latency), with tied
 * layers (HAWQ-v3 ties the residual branch's downsample conv to the conv that reads the same input) forced to the
 * same width.
 *
 * Formulation (a multiple-choice knapsack): a binary `x[g][k]` per group `g` of tied layers and candidate width
 * `k`; `sum_k x[g][k] = 1` per group; `sum_{g,k} r[g][k] x[g][k] <= budget_r` per resource; minimise
 * `sum_{g,k} c[g][k] x[g][k]`. HAWQ's notebook has two widths and one integer variable per layer (`x in {1, 2}`);
 * one-hot binaries are the same program for any number of widths. Every row is scaled by its budget and the
 * objective by its largest magnitude before solving (the simplex works in float64 with a 1e-8 precision), and
 * the budgets get a relative slack of 1e-9 so a budget equal to an allocation's exact cost admits it.
 *
 * The solver is YALPS (`npm:yalps@0.6.4`, MIT, pure TypeScript: simplex plus branch and bound; with its default
 * `tolerance: 0` it returns the optimal integer solution), loaded on first use. {@link bruteForceBitProblem}
 * enumerates every allocation and is the reference the tests hold the solver to.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** The npm specifier of the solver (loaded on first use). */
export const YALPS_SPEC = "npm:yalps@0.6.4";

/** One layer of a {@link BitProblem}. */
export interface BitLayer {
  /** Layer name (a node label). */
  readonly name: string;
  /** Candidate bit widths. */
  readonly bits: readonly number[];
  /** Objective per candidate (e.g. the sensitivity Omega(b)), aligned with `bits`. */
  readonly cost: readonly number[];
  /** Resource use per candidate (e.g. `{ size: [...bytes], bops: [...] }`), aligned with `bits`. */
  readonly resources?: Readonly<Record<string, readonly number[]>>;
}

/** A per-layer bit-allocation problem. */
export interface BitProblem {
  /** The layers. */
  readonly layers: readonly BitLayer[];
  /** Upper bounds on summed resources (names as in the layers' `resources`; a missing entry is unbounded). */
  readonly budgets: Readonly<Record<string, number>>;
  /** Groups of layer names that must get the same width (their candidate lists must be equal). */
  readonly ties?: readonly (readonly string[])[];
}

/** A solved allocation. */
export interface BitSolution {
  /** `"optimal"` or `"infeasible"` (no allocation meets the budgets; `bits` is then empty). */
  readonly status: "optimal" | "infeasible";
  /** Width per layer. */
  readonly bits: Readonly<Record<string, number>>;
  /** The objective of the allocation. */
  readonly objective: number;
  /** Summed resources of the allocation. */
  readonly usage: Readonly<Record<string, number>>;
  /** Solver wall time, milliseconds. */
  readonly ms: number;
}

interface Group {
  readonly names: string[];
  readonly bits: readonly number[];
  readonly cost: number[];
  readonly resources: Record<string, number[]>;
}

/** Merge tied layers into groups and validate the problem. */
function groups(p: BitProblem): Group[] {
  if (!p || !(p.layers?.length > 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", "bit problem: no layers");
  }
  const byName = new Map<string, BitLayer>();
  const resourceNames = new Set(Object.keys(p.budgets ?? {}));
  for (const l of p.layers) {
    if (byName.has(l.name)) throw new QuantlabError("INVALID_ARGUMENT", `bit problem: layer "${l.name}" twice`);
    if (l.bits.length === 0 || l.cost.length !== l.bits.length) {
      throw new QuantlabError("INVALID_ARGUMENT", `bit problem: layer "${l.name}" needs one cost per candidate width`);
    }
    if (new Set(l.bits).size !== l.bits.length) {
      throw new QuantlabError("INVALID_ARGUMENT", `bit problem: layer "${l.name}" lists a width twice`);
    }
    for (const c of l.cost) {
      if (!Number.isFinite(c)) throw new QuantlabError("NON_FINITE", `bit problem: layer "${l.name}" cost ${c}`);
    }
    for (const r of resourceNames) {
      const v = l.resources?.[r];
      if (!v || v.length !== l.bits.length || !v.every(Number.isFinite)) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `bit problem: layer "${l.name}" needs finite "${r}" use per candidate (a budget names it)`,
        );
      }
    }
    byName.set(l.name, l);
  }
  for (const [r, b] of Object.entries(p.budgets ?? {})) {
    if (!Number.isFinite(b)) throw new QuantlabError("NON_FINITE", `bit problem: budget "${r}" is ${b}`);
  }
  // union-find over ties
  const parent = new Map<string, string>([...byName.keys()].map((n) => [n, n]));
  const find = (n: string): string => {
    let r = n;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(n, r);
    return r;
  };
  for (const t of p.ties ?? []) {
    for (const n of t) {
      if (!byName.has(n)) throw new QuantlabError("INVALID_ARGUMENT", `bit problem: tie names unknown layer "${n}"`);
    }
    for (let k = 1; k < t.length; k++) parent.set(find(t[k]), find(t[0]));
  }
  const out = new Map<string, Group>();
  for (const l of p.layers) {
    const root = find(l.name);
    let g = out.get(root);
    if (!g) {
      g = {
        names: [],
        bits: l.bits,
        cost: l.bits.map(() => 0),
        resources: Object.fromEntries([...resourceNames].map((r) => [r, l.bits.map(() => 0)])),
      };
      out.set(root, g);
    }
    if (g.bits.length !== l.bits.length || g.bits.some((b, k) => b !== l.bits[k])) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `bit problem: tied layers "${g.names[0]}" and "${l.name}" have different candidate widths`,
      );
    }
    const grp: Group = g;
    grp.names.push(l.name);
    l.cost.forEach((c, k) => grp.cost[k] += c);
    for (const r of resourceNames) l.resources![r].forEach((v, k) => grp.resources[r][k] += v);
  }
  return [...out.values()];
}

function evaluate(
  p: BitProblem,
  bits: Readonly<Record<string, number>>,
): { objective: number; usage: Record<string, number> } {
  let objective = 0;
  // every resource all layers state (budgeted ones are checked to exist by groups())
  const names = Object.keys(p.layers[0].resources ?? {}).filter((r) => p.layers.every((l) => l.resources?.[r]));
  const usage: Record<string, number> = Object.fromEntries(names.map((r) => [r, 0]));
  for (const l of p.layers) {
    const k = l.bits.indexOf(bits[l.name]);
    if (k < 0) {
      throw new QuantlabError("INVALID_ARGUMENT", `allocation: layer "${l.name}" has no width ${bits[l.name]}`);
    }
    objective += l.cost[k];
    for (const r of Object.keys(usage)) usage[r] += l.resources![r][k];
  }
  return { objective, usage };
}

/**
 * The objective and resource use (every resource all layers state) of a given allocation, e.g. a uniform or random
 * one.
 *
 * @example
 * ```ts
 * import { evaluateAllocation } from "./ilp.ts";
 * const r = evaluateAllocation({
 *   layers: [{ name: "a", bits: [4, 8], cost: [3, 1], resources: { size: [2, 4] } }],
 *   budgets: { size: 10 },
 * }, { a: 8 });
 * if (r.objective !== 1 || r.usage.size !== 4) throw new Error(JSON.stringify(r));
 * ```
 */
export function evaluateAllocation(
  problem: BitProblem,
  bits: Readonly<Record<string, number>>,
): { objective: number; usage: Record<string, number> } {
  groups(problem);
  return evaluate(problem, bits);
}

const SLACK = 1e-9;

function feasible(usage: Record<string, number>, budgets: Readonly<Record<string, number>>): boolean {
  return Object.entries(budgets).every(([r, b]) => usage[r] <= b + SLACK * Math.max(1, Math.abs(b)));
}

/**
 * Solve a bit-allocation problem exactly with YALPS (see the module doc).
 *
 * @example
 * ```ts
 * import { solveBitProblem } from "./ilp.ts";
 * const s = await solveBitProblem({
 *   layers: [
 *     { name: "a", bits: [4, 8], cost: [5, 1], resources: { size: [4, 8] } },
 *     { name: "b", bits: [4, 8], cost: [3, 0], resources: { size: [2, 4] } },
 *   ],
 *   budgets: { size: 10 },
 * });
 * if (s.bits.a !== 8 || s.bits.b !== 4 || s.objective !== 4) throw new Error(JSON.stringify(s));
 * ```
 */
export async function solveBitProblem(
  problem: BitProblem,
  options: { timeoutMs?: number } = {},
): Promise<BitSolution> {
  const t0 = performance.now();
  const gs = groups(problem);
  const budgets = problem.budgets ?? {};
  const spec = YALPS_SPEC;
  const { solve } = await import(spec) as typeof import("npm:yalps@0.6.4");
  let scale = 0;
  for (const g of gs) for (const c of g.cost) scale = Math.max(scale, Math.abs(c));
  scale = scale > 0 ? 1 / scale : 1;
  const constraints = new Map<string, { equal?: number; max?: number }>();
  const resourceScale: Record<string, number> = {};
  for (const [r, b] of Object.entries(budgets)) {
    // Rows scaled by the budget; a non-positive budget keeps unit scale.
    resourceScale[r] = b > 0 ? 1 / b : 1;
    constraints.set(`r:${r}`, { max: b * resourceScale[r] + SLACK * Math.max(1, Math.abs(b * resourceScale[r])) });
  }
  const variables = new Map<string, Map<string, number>>();
  gs.forEach((g, i) => {
    constraints.set(`g${i}`, { equal: 1 });
    g.bits.forEach((_, k) => {
      const coef = new Map<string, number>([["obj", g.cost[k] * scale], [`g${i}`, 1]]);
      for (const r of Object.keys(budgets)) coef.set(`r:${r}`, g.resources[r][k] * resourceScale[r]);
      variables.set(`x${i}_${k}`, coef);
    });
  });
  const sol = solve({
    direction: "minimize",
    objective: "obj",
    constraints,
    variables,
    binaries: true,
  }, { timeout: options.timeoutMs ?? 60_000 });
  const ms = performance.now() - t0;
  if (sol.status === "infeasible") return { status: "infeasible", bits: {}, objective: NaN, usage: {}, ms };
  if (sol.status !== "optimal") {
    throw new QuantlabError("SOLVER_FAILED", `bit allocation: YALPS returned status "${sol.status}"`);
  }
  const bits: Record<string, number> = {};
  for (const [v, x] of sol.variables) {
    if (x < 0.5) continue;
    const [i, k] = v.slice(1).split("_").map(Number);
    for (const n of gs[i].names) bits[n] = gs[i].bits[k];
  }
  for (const l of problem.layers) {
    if (bits[l.name] === undefined) {
      throw new QuantlabError("SOLVER_FAILED", `bit allocation: no width chosen for layer "${l.name}"`);
    }
  }
  const { objective, usage } = evaluate(problem, bits);
  if (!feasible(usage, budgets)) {
    throw new QuantlabError(
      "SOLVER_FAILED",
      `bit allocation: solver's allocation breaks a budget (${JSON.stringify(usage)})`,
    );
  }
  return { status: "optimal", bits, objective, usage, ms };
}

/**
 * Enumerate every allocation (product of the groups' candidate counts; refused above `limit`, default 2^20) and
 * return the cheapest feasible one (the first found among equals): the reference for {@link solveBitProblem}.
 *
 * @example
 * ```ts
 * import { bruteForceBitProblem } from "./ilp.ts";
 * const s = bruteForceBitProblem({
 *   layers: [
 *     { name: "a", bits: [4, 8], cost: [5, 1], resources: { size: [4, 8] } },
 *     { name: "b", bits: [4, 8], cost: [3, 0], resources: { size: [2, 4] } },
 *   ],
 *   budgets: { size: 10 },
 * });
 * if (s.bits.a !== 8 || s.objective !== 4) throw new Error(JSON.stringify(s));
 * ```
 */
export function bruteForceBitProblem(problem: BitProblem, limit = 1 << 20): BitSolution {
  const t0 = performance.now();
  const gs = groups(problem);
  const budgets = problem.budgets ?? {};
  let total = 1;
  for (const g of gs) total *= g.bits.length;
  if (total > limit) {
    throw new QuantlabError("INVALID_ARGUMENT", `brute force: ${total} allocations exceed the limit ${limit}`);
  }
  const pick = new Array<number>(gs.length).fill(0);
  let best: number[] | undefined, bestCost = Infinity;
  const rs = Object.keys(budgets);
  for (let it = 0; it < total; it++) {
    let rem = it;
    for (let i = 0; i < gs.length; i++) {
      pick[i] = rem % gs[i].bits.length;
      rem = Math.floor(rem / gs[i].bits.length);
    }
    let cost = 0;
    for (let i = 0; i < gs.length; i++) cost += gs[i].cost[pick[i]];
    if (cost >= bestCost) continue;
    const usage: Record<string, number> = {};
    for (const r of rs) {
      let u = 0;
      for (let i = 0; i < gs.length; i++) u += gs[i].resources[r][pick[i]];
      usage[r] = u;
    }
    if (!feasible(usage, budgets)) continue;
    best = [...pick];
    bestCost = cost;
  }
  const ms = performance.now() - t0;
  if (!best) return { status: "infeasible", bits: {}, objective: NaN, usage: {}, ms };
  const bits: Record<string, number> = {};
  gs.forEach((g, i) => {
    for (const n of g.names) bits[n] = g.bits[best![i]];
  });
  const { objective, usage } = evaluate(problem, bits);
  return { status: "optimal", bits, objective, usage, ms };
}

/**
 * The Pareto frontier of objective against one resource: solve the problem once per budget of `resource` (other
 * budgets kept), returning the solutions in budget order (infeasible budgets included with that status).
 *
 * @example
 * ```ts
 * import { paretoFrontier } from "./ilp.ts";
 * const f = await paretoFrontier({
 *   layers: [
 *     { name: "a", bits: [4, 8], cost: [5, 1], resources: { size: [4, 8] } },
 *     { name: "b", bits: [4, 8], cost: [3, 0], resources: { size: [2, 4] } },
 *   ],
 *   budgets: {},
 * }, "size", [5, 6, 10, 12]);
 * if (f.map((s) => s.objective).join() !== "NaN,8,4,1") throw new Error(f.map((s) => s.objective).join());
 * ```
 */
export async function paretoFrontier(
  problem: BitProblem,
  resource: string,
  budgets: readonly number[],
): Promise<(BitSolution & { readonly budget: number })[]> {
  const out: (BitSolution & { readonly budget: number })[] = [];
  for (const b of budgets) {
    const s = await solveBitProblem({ ...problem, budgets: { ...problem.budgets, [resource]: b } });
    out.push({ ...s, budget: b });
  }
  return out;
}
