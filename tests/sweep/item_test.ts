import assert from "node:assert/strict";
import { canonicalJson, QUANTLAB_VERSION, sweepItem } from "../../lib/sweep/item.ts";
import { expandConfig, expandGrid, seedsOf } from "../../lib/sweep/grid.ts";
import { ResultStore } from "../../lib/sweep/store.ts";

Deno.test("the hash is SHA-256 of the canonical JSON of (experiment, config, seed, version)", async () => {
  const it = await sweepItem("calibration", { quick: true, b: [1, 2] }, 3);
  assert.equal(it.version, QUANTLAB_VERSION);
  const text = canonicalJson({
    experiment: "calibration",
    config: { b: [1, 2], quick: true },
    seed: 3,
    version: QUANTLAB_VERSION,
  });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  assert.equal(it.hash, Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
  // Each field changes the identity; key order does not.
  const base = await sweepItem("e", { a: 1, b: 2 }, 0, "1");
  assert.equal((await sweepItem("e", { b: 2, a: 1 }, 0, "1")).hash, base.hash);
  for (
    const other of [
      sweepItem("f", { a: 1, b: 2 }, 0, "1"),
      sweepItem("e", { a: 1, b: 3 }, 0, "1"),
      sweepItem("e", { a: 1, b: 2 }, 1, "1"),
      sweepItem("e", { a: 1, b: 2 }, 0, "2"),
    ]
  ) {
    assert.notEqual((await other).hash, base.hash);
  }
  await assert.rejects(() => sweepItem("e", {}, -1), /seed/);
  assert.throws(() => canonicalJson({ a: NaN }), /non-finite/);
});

Deno.test("grids expand axes x seeds and drop duplicates", async () => {
  assert.equal(expandConfig({ a: [1, 2, 3], b: [true, false], c: "x" }).length, 6);
  assert.deepEqual(expandConfig({ v: [[4, 8]] }), [{ v: [4, 8] }]);
  assert.throws(() => expandConfig({ a: [] }), /no values/);
  assert.throws(() => seedsOf(0), /seeds/);
  const items = await expandGrid({
    sweeps: [
      { experiment: "x", config: { a: [1, 2] }, seeds: 2 },
      { experiment: "x", config: { a: 1 }, seeds: [0, 5] },
    ],
  });
  assert.equal(items.length, 5); // (a=1, seed 0) appears twice
});

Deno.test("the store keeps the first record per hash and survives a torn last line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await sweepItem("x", {}, 0), b = await sweepItem("x", {}, 1);
    const rec = (i: typeof a, v: number) => ({ ...i, result: v, seconds: 0, worker: "w", finishedAt: "t" });
    const s = await ResultStore.open(dir);
    await s.append(rec(a, 1));
    assert.equal(await s.append(rec(a, 2)), false);
    await Deno.writeTextFile(s.path, '{"hash":"torn', { append: true }); // a crash mid-write
    const s2 = await ResultStore.open(dir);
    assert.equal(s2.size, 1);
    assert.equal(s2.get(a.hash)!.result, 1);
    await s2.append(rec(b, 3));
    const s3 = await ResultStore.open(dir);
    assert.deepEqual(s3.records().map((r) => r.result), [1, 3]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
