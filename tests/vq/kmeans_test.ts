import assert from "node:assert/strict";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { kmeans } from "../../lib/vq/kmeans.ts";
import type { NearestBackend } from "../../lib/vq/nearest.ts";
import { fixtures } from "./fixtures.ts";

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

for (const backend of ["simd", "js"] as NearestBackend[]) {
  for (const c of fixtures.kmeans) {
    Deno.test(`k-means matches ${c.reference} on ${c.name} from the same initial centroids (${backend})`, () => {
      const m = kmeans().centroids(c.k).init(Float32Array.from(c.init)).iterations(c.iterations).tolerance(0)
        .maxPointsPerCentroid(Infinity).backend(backend).fit(Float32Array.from(c.x), c.d);
      close(m.centroids, c.centroids, 1e-5, "centroids");
      assert.deepEqual([...m.assignments], c.assignments);
      if (c.objective) {
        // faiss runs all iterations; we stop once the assignment is stable (later objectives are equal).
        assert.ok(m.objective.length >= 1 && m.objective.length <= c.objective.length);
        for (let i = 0; i < c.objective.length; i++) {
          const ours = m.objective[Math.min(i, m.objective.length - 1)];
          assert.ok(
            Math.abs(ours - c.objective[i]) <= 1e-5 * c.objective[i],
            `objective ${i}: ${ours} vs ${c.objective[i]}`,
          );
        }
      }
      if (c.inertia !== undefined) assert.ok(Math.abs(m.inertia - c.inertia) <= 1e-5 * c.inertia);
    });
  }
}

function gaussianMixture(seed: number, n: number, d: number): Float32Array {
  const prng = new Prng(seed);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const center = prng.nextInt(5) * 3;
    for (let j = 0; j < d; j++) x[i * d + j] = center + prng.nextNormal();
  }
  return x;
}

Deno.test("the k-means objective never increases across Lloyd iterations", () => {
  for (const [seed, init] of [[1, "random"], [2, "kmeans++"], [3, "random"]] as const) {
    const x = gaussianMixture(seed, 600, 3);
    const m = kmeans().centroids(12).iterations(40).tolerance(0).init(init).seed(seed).fit(x, 3);
    assert.ok(m.objective.length > 2);
    assert.ok(m.splits.every((s) => s === 0), "no empty-cluster repair in these runs");
    for (let i = 1; i < m.objective.length; i++) {
      assert.ok(
        m.objective[i] <= m.objective[i - 1] * (1 + 1e-6),
        `iteration ${i}: ${m.objective[i]} > ${m.objective[i - 1]}`,
      );
    }
    // inertia w.r.t. the final centroids is at most the last objective
    assert.ok(m.inertia <= m.objective[m.objective.length - 1] * (1 + 1e-6));
  }
});

Deno.test("k-means is deterministic for a seed and changes with it", () => {
  const x = gaussianMixture(5, 500, 4);
  const a = kmeans().centroids(10).seed(7).fit(x, 4);
  const b = kmeans().centroids(10).seed(7).fit(x, 4);
  const c = kmeans().centroids(10).seed(8).fit(x, 4);
  assert.deepEqual([...a.centroids], [...b.centroids]);
  assert.deepEqual([...a.assignments], [...b.assignments]);
  assert.notDeepEqual([...a.centroids], [...c.centroids]);
});

Deno.test("k-means: assignments are the nearest final centroid; quantize replaces points by centroids", () => {
  const x = gaussianMixture(9, 300, 2);
  const m = kmeans().centroids(6).seed(1).fit(x, 2);
  for (let i = 0; i < 300; i++) {
    let best = Infinity, bi = -1;
    for (let q = 0; q < 6; q++) {
      const e = (x[2 * i] - m.centroids[2 * q]) ** 2 + (x[2 * i + 1] - m.centroids[2 * q + 1]) ** 2;
      if (e < best) (best = e), (bi = q);
    }
    assert.equal(m.assignments[i], bi);
  }
  assert.deepEqual([...m.assign(x, 2)], [...m.assignments]);
  const q = m.fakeQuantize(Tensor.from(x, [300, 2]));
  assert.deepEqual([...q.subarray(0, 2)], [...m.centroids.subarray(m.assignments[0] * 2, m.assignments[0] * 2 + 2)]);
  assert.deepEqual(m.centroidsTensor().shape, [6, 2]);
});

Deno.test("k-means subsamples k * maxPointsPerCentroid training points, seeded", () => {
  const x = gaussianMixture(4, 1000, 2);
  const m = kmeans().centroids(5).maxPointsPerCentroid(40).seed(2).fit(x, 2);
  assert.equal(m.trainingPoints, 200);
  assert.equal(m.assignments.length, 1000);
  const all = kmeans().centroids(5).maxPointsPerCentroid(Infinity).seed(2).fit(x, 2);
  assert.equal(all.trainingPoints, 1000);
});

Deno.test("k-means with k = n returns the points; tolerance stops early", () => {
  const x = new Float32Array([3, 1, 2]);
  const m = kmeans().centroids(3).fit(x, 1);
  assert.deepEqual([...m.centroids], [3, 1, 2]);
  assert.equal(m.inertia, 0);
  const y = gaussianMixture(6, 400, 2);
  const loose = kmeans().centroids(8).tolerance(0.5).iterations(100).seed(0).fit(y, 2);
  const strict = kmeans().centroids(8).tolerance(0).iterations(100).seed(0).fit(y, 2);
  assert.ok(loose.converged && loose.objective.length < strict.objective.length);
});

Deno.test("k-means builder is immutable, validates eagerly and prints", () => {
  const b = kmeans().centroids(4);
  const c = b.iterations(3).seed(2).init("random");
  assert.equal(b.config.iterations, 25);
  assert.equal(c.config.iterations, 3);
  assert.match(c.toString(), /k=4, iterations=3.*init=random, seed=2/);
  const bad: [() => unknown, string][] = [
    [() => kmeans().centroids(0), "INVALID_ARGUMENT"],
    [() => kmeans().centroids(2.5), "INVALID_ARGUMENT"],
    [() => kmeans().iterations(-1), "INVALID_ARGUMENT"],
    [() => kmeans().tolerance(NaN), "INVALID_ARGUMENT"],
    [() => kmeans().seed(0.5), "INVALID_ARGUMENT"],
    [() => kmeans().maxPointsPerCentroid(0), "INVALID_ARGUMENT"],
    [() => kmeans().init("kmeans" as "random"), "INVALID_ARGUMENT"],
    [() => kmeans().centroids(5).fit(new Float32Array(8), 2), "INVALID_ARGUMENT"], // k > n
    [() => kmeans().centroids(2).fit(new Float32Array([1, NaN, 3, 4]), 1), "NON_FINITE"],
    [() => kmeans().centroids(2).fit(new Float32Array(4)), "INVALID_ARGUMENT"], // no dimension
    [() => kmeans().centroids(2).fit(new Float32Array(5), 2), "SHAPE_MISMATCH"],
    [() => kmeans().centroids(2).fit(new Float32Array(0), 2), "EMPTY_TENSOR"],
    [() => kmeans().centroids(2).init(new Float32Array(3)).fit(new Float32Array(8), 2), "SHAPE_MISMATCH"],
  ];
  for (const [f, code] of bad) {
    assert.throws(f, (e: Error & { code?: string }) => e.name === "QuantlabError" && e.code === code);
  }
  assert.throws(() => kmeans().centroids(5).fit(new Float32Array(8), 2), /exceeds the number of points/);
});
