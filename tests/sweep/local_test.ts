import assert from "node:assert/strict";
import { runSweep } from "../../lib/sweep/backend.ts";
import { expandGrid } from "../../lib/sweep/grid.ts";
import { LocalPool } from "../../lib/sweep/local.ts";
import { ResultStore } from "../../lib/sweep/store.ts";
import { fixtureValue } from "./fixture_experiment.ts";

const FIXTURE = new URL("./fixture_experiment.ts", import.meta.url).href;

async function countLines(path: string, word: string): Promise<number> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l.startsWith(word + " ")).length;
  } catch {
    return 0;
  }
}

Deno.test("local pool: runs a grid on 2 worker processes, results equal the pure function", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantlab_sweep_" });
  try {
    const items = await expandGrid({ experiment: "sweep-fixture", config: { ms: 10, k: ["a", "b"] }, seeds: 3 });
    const store = await ResultStore.open(dir);
    const s = await runSweep(items, {
      backend: new LocalPool({ workers: 2, modules: [FIXTURE] }),
      store,
      progress: "none",
    });
    assert.deepEqual([s.total, s.ran, s.skipped, Object.keys(s.failed).length], [6, 6, 0, 0]);
    for (const it of items) {
      const r = store.get(it.hash)!.result as { value: number; seed: number };
      assert.equal(r.value, fixtureValue(it.config, it.seed));
    }
    const workers = new Set(store.records().map((r) => r.worker));
    assert.ok(workers.size >= 1 && workers.size <= 2, [...workers].join());
    const lines = (await Deno.readTextFile(`${dir}/results.jsonl`)).trim().split("\n");
    assert.equal(lines.length, 6);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("local pool: an interrupted sweep resumes without rerunning finished items (counted)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantlab_sweep_" });
  const counter = `${dir}/counter.txt`;
  try {
    const items = await expandGrid({ experiment: "sweep-fixture", config: { ms: 150 }, seeds: 8 });
    const pool = new LocalPool({ workers: 2, modules: [FIXTURE], env: { QUANTLAB_SWEEP_COUNTER: counter } });
    // First run: interrupted (workers killed) once 3 results are stored.
    const ac = new AbortController();
    const store1 = await ResultStore.open(`${dir}/store`);
    const original = store1.append.bind(store1);
    store1.append = async (r) => {
      const ok = await original(r);
      if (store1.size >= 3) ac.abort();
      return ok;
    };
    const first = await runSweep(items, { backend: pool, store: store1, progress: "none", signal: ac.signal });
    assert.ok(first.ran >= 3 && first.ran < 8, `first run stored ${first.ran}`);
    const finishedFirst = await countLines(counter, "done");
    // Second run: a fresh process-level view of the store (as after a crash).
    const store2 = await ResultStore.open(`${dir}/store`);
    assert.equal(store2.size, first.ran);
    const startsBefore = await countLines(counter, "start");
    const second = await runSweep(items, { backend: pool, store: store2, progress: "none" });
    assert.equal(second.skipped, first.ran);
    assert.equal(second.ran, 8 - first.ran);
    // Counted: the second run executed exactly the items that were not stored.
    assert.equal((await countLines(counter, "start")) - startsBefore, 8 - first.ran);
    assert.ok(finishedFirst >= first.ran);
    assert.equal(store2.size, 8);
    const third = await runSweep(items, {
      backend: pool,
      store: await ResultStore.open(`${dir}/store`),
      progress: "none",
    });
    assert.deepEqual([third.ran, third.skipped], [0, 8]);
    assert.equal((await countLines(counter, "start")) - startsBefore, 8 - first.ran);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("local pool: a failing trial is retried, then reported failed; others still finish", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantlab_sweep_" });
  const counter = `${dir}/counter.txt`;
  try {
    const items = await expandGrid({ experiment: "sweep-fixture", config: { ms: 5, fail: [false, true] }, seeds: 1 });
    const pool = new LocalPool({
      workers: 1,
      retries: 1,
      modules: [FIXTURE],
      env: { QUANTLAB_SWEEP_COUNTER: counter },
    });
    const s = await runSweep(items, { backend: pool, store: await ResultStore.open(dir), progress: "none" });
    assert.equal(s.ran, 1);
    assert.deepEqual(Object.keys(s.failed), [items[1].hash]);
    assert.match(s.failed[items[1].hash], /fixture asked to fail/);
    assert.equal(await countLines(counter, "start"), 3); // 1 good + 2 attempts of the failing one
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
