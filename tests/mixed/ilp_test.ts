// The integer program of lib/mixed/ilp.ts against brute force on random instances (size and BOPs budgets
// together, ties), and its speed at 30 layers x 4 widths.
import assert from "node:assert/strict";
import {
  type BitProblem,
  bruteForceBitProblem,
  evaluateAllocation,
  paretoFrontier,
  solveBitProblem,
} from "../../lib/mixed/ilp.ts";
import { Prng } from "../../lib/tensor/prng.ts";

const BITS = [2, 3, 4, 8];

/** A HAWQ-like random instance: sensitivity ~ trace * 4^-b, size ~ n b, BOPs ~ macs b 8. */
function instance(rng: Prng, layers: number, tie: boolean): BitProblem {
  const ls = Array.from({ length: layers }, (_, i) => {
    const n = 100 + Math.floor(rng.nextFloat() * 5000);
    const macs = n * (1 + Math.floor(rng.nextFloat() * 50));
    const tr = Math.exp(4 * rng.nextFloat() - 2);
    return {
      name: `l${i}`,
      bits: BITS,
      cost: BITS.map((b) => tr * n * Math.pow(4, -b) * (0.8 + 0.4 * rng.nextFloat())),
      resources: { size: BITS.map((b) => n * b / 8), bops: BITS.map((b) => macs * b * 8) },
    };
  });
  const lo = (r: "size" | "bops", b: number) => ls.reduce((s, l) => s + l.resources[r][BITS.indexOf(b)], 0);
  const size = lo("size", 2) + rng.nextFloat() * (lo("size", 8) - lo("size", 2));
  const bops = lo("bops", 2) + rng.nextFloat() * (lo("bops", 8) - lo("bops", 2));
  return { layers: ls, budgets: { size, bops }, ties: tie ? [["l1", "l3"], ["l4", "l6"]] : [] };
}

Deno.test("integer program equals brute force on 40 random 8-layer x 4-width instances (size + BOPs, ties)", async () => {
  const rng = new Prng(13);
  let feasible = 0;
  for (let t = 0; t < 40; t++) {
    const p = instance(rng, 8, t % 2 === 1);
    const want = bruteForceBitProblem(p);
    const got = await solveBitProblem(p);
    assert.equal(got.status, want.status, `instance ${t}`);
    if (want.status !== "optimal") continue;
    feasible++;
    assert.ok(
      Math.abs(got.objective - want.objective) <= 1e-9 * Math.abs(want.objective),
      `instance ${t}: solver ${got.objective} vs brute force ${want.objective}`,
    );
    assert.ok(got.usage.size <= p.budgets.size * (1 + 1e-9) && got.usage.bops <= p.budgets.bops * (1 + 1e-9));
    if (t % 2 === 1) assert.equal(got.bits.l1, got.bits.l3);
  }
  assert.ok(feasible >= 20, `only ${feasible} feasible instances`);
});

Deno.test("integer program: 30 layers x 4 widths solve in under a second; infeasible budgets say so", async () => {
  const p = instance(new Prng(5), 30, true);
  const s = await solveBitProblem(p); // warm: module load
  const t0 = performance.now();
  const again = await solveBitProblem(p);
  const ms = performance.now() - t0;
  assert.equal(s.status, "optimal");
  assert.equal(again.objective, s.objective);
  assert.ok(ms < 1000, `${ms} ms`);
  const none = await solveBitProblem({ ...p, budgets: { size: 1 } });
  assert.equal(none.status, "infeasible");
});

Deno.test("Pareto frontier: objective never rises as the budget grows; evaluateAllocation agrees", async () => {
  const p = instance(new Prng(2), 6, false);
  const lo = evaluateAllocation(p, Object.fromEntries(p.layers.map((l) => [l.name, 2]))).usage.size;
  const hi = evaluateAllocation(p, Object.fromEntries(p.layers.map((l) => [l.name, 8]))).usage.size;
  const budgets = Array.from({ length: 8 }, (_, k) => lo + (hi - lo) * k / 7);
  const f = await paretoFrontier({ ...p, budgets: {} }, "size", budgets);
  for (let k = 1; k < f.length; k++) assert.ok(f[k].objective <= f[k - 1].objective + 1e-12);
  assert.ok(f.every((s) => s.status === "optimal"));
  assert.ok(Object.values(f[f.length - 1].bits).every((b) => b === 8));
  assert.ok(Object.values(f[0].bits).every((b) => b === 2));
  for (const s of f) assert.ok(Math.abs(evaluateAllocation(p, s.bits).objective - s.objective) < 1e-12);
});
