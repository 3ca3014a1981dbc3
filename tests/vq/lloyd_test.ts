import assert from "node:assert/strict";
import { Prng } from "../../lib/tensor/prng.ts";
import { kmeansPlusPlus, randomInit, samplePoints } from "../../lib/vq/init.ts";
import { lloyd, meanVariance, splitClusters } from "../../lib/vq/lloyd.ts";

Deno.test("empty clusters are split like faiss: copy + symmetric 1/1024 perturbation, counts halved", () => {
  const d = 3, k = 3, n = 10;
  const c = new Float32Array([1, 2, 4, 0, 0, 0, 5, 5, 5]);
  const counts = new Float64Array([9, 0, 1]); // cluster 1 empty; only cluster 0 has p > 0
  assert.equal(splitClusters(c, counts, n, k, d, 0), 1);
  const e = 1 / 1024;
  assert.deepEqual([...c.subarray(3, 6)], [...new Float32Array([1 * (1 + e), 2 * (1 - e), 4 * (1 + e)])]);
  assert.deepEqual([...c.subarray(0, 3)], [...new Float32Array([1 * (1 - e), 2 * (1 + e), 4 * (1 - e)])]);
  assert.deepEqual([...counts], [4.5, 4.5, 1]);
});

Deno.test("Lloyd repairs an empty cluster (a far initial centroid) and ends with none empty", () => {
  const prng = new Prng(1);
  const n = 200, d = 2, k = 4;
  const x = prng.fillNormal(new Float32Array(n * d)) as Float32Array;
  const init = new Float32Array([0, 0, 1, 1, -1, -1, 1000, 1000]);
  const r = lloyd(x, n, d, k, init, { iterations: 10, tolerance: 0, seed: 0 });
  assert.ok(r.splits[0] >= 1);
  assert.ok(r.centroids.every((v) => Math.abs(v) < 10));
});

Deno.test("Lloyd stops on a stable assignment; meanVariance is the closed form", () => {
  const x = new Float32Array([0, 0, 2, 2]); // d = 2: coordinates (0, 0) and (2, 2), variance 1 each
  assert.equal(meanVariance(x, 2, 2), 1);
  const r = lloyd(new Float32Array([0, 1, 10, 11]), 4, 1, 2, new Float32Array([0, 10]), {
    iterations: 50,
    tolerance: 0,
    seed: 0,
  });
  assert.ok(r.converged);
  assert.equal(r.objective.length, 2);
  assert.deepEqual([...r.centroids], [0.5, 10.5]);
  assert.deepEqual(r.objective, [2, 1]);
});

Deno.test("seeded initialisation: distinct samples, deterministic, k-means++ spreads out", () => {
  const s = samplePoints(1000, 300, 4);
  assert.equal(new Set(s).size, 300);
  assert.ok(s.every((v) => v >= 0 && v < 1000));
  assert.deepEqual([...samplePoints(1000, 300, 4)], [...s]);
  const x = new Float32Array(400);
  for (let i = 0; i < 400; i++) x[i] = (i % 4) * 100 + (i % 7) * 0.01; // 4 tight groups
  const c = kmeansPlusPlus(x, 400, 1, 4, 0);
  assert.deepEqual([...c].map((v) => Math.round(v / 100)).sort(), [0, 1, 2, 3]);
  assert.deepEqual([...kmeansPlusPlus(x, 400, 1, 4, 0)], [...c]);
  const r = randomInit(x, 400, 1, 4, 2);
  assert.equal(r.length, 4);
  assert.deepEqual([...randomInit(x, 400, 1, 4, 2)], [...r]);
});
