// Baselines of lib/mixed/baselines.ts on synthetic HAWQ analyses: the greedy allocation meets its budgets, never
// beats the exact integer program and matches brute force where the greedy exchange argument holds; the hawq_v2
// fallback ranks by Tr/n, accumulates, stops at the target and skips steps that would break the budget.
import assert from "node:assert/strict";
import { greedyAllocation, hawqV2Fallback } from "../../lib/mixed/baselines.ts";
import { HawqAnalysis, type HawqLayer } from "../../lib/mixed/hawq.ts";
import { bruteForceBitProblem } from "../../lib/mixed/ilp.ts";
import { QuantPlan } from "../../lib/ptq/plan.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";

const BITS = [2, 3, 4, 8];
const q = quantizer().int(8).perChannel();

function analysis(seed: number, layers: number, ties: string[][] = []): HawqAnalysis {
  const rng = new Prng(seed);
  const ls: HawqLayer[] = Array.from({ length: layers }, (_, i) => {
    const params = 100 + Math.floor(rng.nextFloat() * 5000);
    const tr = Math.exp(4 * rng.nextFloat() - 2) / params;
    const delta2 = Object.fromEntries(BITS.map((b) => [b, params * Math.pow(4, -b) * (0.8 + 0.4 * rng.nextFloat())]));
    return {
      node: `l${i}`,
      tensor: `l${i}.w`,
      opType: "Conv",
      params,
      macs: params * 10,
      activationBits: 8,
      bits: BITS,
      trace: {
        tensor: `l${i}.w`,
        params,
        trace: tr * params,
        tracePerParam: tr,
        stderr: 0,
        iterations: 1,
        converged: true,
      },
      delta2,
      sensitivity: Object.fromEntries(BITS.map((b) => [b, tr * delta2[b]])),
    };
  });
  const plan = new QuantPlan(ls.map((l) => ({
    kind: "weight" as const,
    tensor: l.tensor,
    role: "weight" as const,
    node: l.node,
    opType: "Conv",
    axis: 0,
    quantizer: q,
    bits: 8,
  })));
  return new HawqAnalysis(ls, ties, plan, (_e, b) => q.int(b));
}

Deno.test("greedy: meets the budget, ties kept, never below the exact optimum; optimal on some instances", async () => {
  let equal = 0;
  for (let t = 0; t < 20; t++) {
    const a = analysis(t, 7, t % 2 ? [["l1", "l2"]] : []);
    const budget = a.budgetAt("size", 2, 8, 0.1 + 0.8 * (t / 20));
    const g = greedyAllocation(a, { size: budget });
    assert.ok(g.usage.size <= budget * (1 + 1e-9));
    if (t % 2) assert.equal(g.bits.l1, g.bits.l2);
    const exact = bruteForceBitProblem(a.problem({ size: budget }));
    const ilp = await a.allocate({ size: budget });
    assert.ok(Math.abs(ilp.objective - exact.objective) <= 1e-9 * exact.objective);
    assert.ok(g.objective >= exact.objective * (1 - 1e-9), `instance ${t}: greedy ${g.objective} < ${exact.objective}`);
    if (Math.abs(g.objective - exact.objective) <= 1e-9 * exact.objective) equal++;
  }
  assert.ok(equal >= 2 && equal < 20, `greedy optimal on ${equal} of 20`);
  assert.throws(() => greedyAllocation(analysis(1, 3), { size: 1 }), /no allocation meets/);
});

Deno.test("hawq_v2 fallback: order by Tr/n, accumulate until the target, skip steps that break the budget", async () => {
  const a = analysis(3, 5);
  const byTrace = [...a.layers].sort((x, y) => y.trace.tracePerParam - x.trace.tracePerParam).map((l) => l.node);
  // accuracy = number of layers at 8 bits: target 3 needs exactly three fallbacks
  const acc = (x: { bits: Readonly<Record<string, number>> }) =>
    Promise.resolve(Object.values(x.bits).filter((b) => b === 8).length);
  const seen: (string | undefined)[] = [];
  const r = await hawqV2Fallback(a, acc, { target: 3, onStep: (s) => seen.push(s.node) });
  assert.deepEqual(r.order, byTrace);
  assert.deepEqual(seen, [undefined, ...byTrace.slice(0, 3)]);
  assert.ok(r.met && r.final.accuracy === 3 && r.steps.length === 4);
  for (const n of byTrace.slice(3)) assert.equal(r.final.allocation.bits[n], 2);
  // A budget that the most sensitive layer's fallback would break: it is skipped, smaller ones are taken.
  const top = a.layers.find((l) => l.node === byTrace[0])!;
  const all2 = a.usage(a.uniform(2)).size;
  const budget = all2 + top.params * 6 / 8 - 1;
  const b = await hawqV2Fallback(a, acc, { target: 99, budgets: { size: budget } });
  assert.equal(b.final.allocation.bits[byTrace[0]], 2);
  assert.ok(!b.met && b.final.allocation.usage.size <= budget);
  assert.ok(b.steps.length >= 2);
});
