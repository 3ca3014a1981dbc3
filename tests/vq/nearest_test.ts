import assert from "node:assert/strict";
import { Prng } from "../../lib/tensor/prng.ts";
import { assignNearest, type NearestBackend, prepareCentroids } from "../../lib/vq/nearest.ts";
import { nearestModuleBytes, simdKernel } from "../../lib/vq/simd_kernel.ts";

/** Brute force: exact float64 sum of squared differences, first minimum wins. */
function bruteForce(x: Float32Array, n: number, d: number, c: Float32Array, k: number) {
  const index = new Int32Array(n), dist = new Float64Array(n), second = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let b = Infinity, s = Infinity, bi = 0;
    for (let q = 0; q < k; q++) {
      let t = 0;
      for (let j = 0; j < d; j++) t += (x[i * d + j] - c[q * d + j]) ** 2;
      if (t < b) (s = b), (b = t), (bi = q);
      else if (t < s) s = t;
    }
    index[i] = bi;
    dist[i] = b;
    second[i] = s;
  }
  return { index, dist, second };
}

const backends: NearestBackend[] = ["simd", "js"];

Deno.test("the SIMD kernel assembles, validates and instantiates", () => {
  assert.ok(WebAssembly.validate(nearestModuleBytes()));
  assert.notEqual(simdKernel(), null);
});

for (const backend of backends) {
  Deno.test(`assignNearest (${backend}) matches brute force on odd sizes and several centroid blocks`, () => {
    const prng = new Prng(3);
    for (const [n, d, k] of [[1, 1, 1], [7, 3, 5], [101, 8, 256], [33, 64, 600], [64, 2, 1000], [9, 300, 40]]) {
      const x = prng.fillNormal(new Float32Array(n * d)) as Float32Array;
      const c = prng.fillNormal(new Float32Array(k * d)) as Float32Array;
      const p = prepareCentroids(c, k, d);
      const index = new Int32Array(n), distance = new Float64Array(n);
      const sum = assignNearest(p, { points: x, n, index, distance, backend });
      const ref = bruteForce(x, n, d, c, k);
      let total = 0;
      for (let i = 0; i < n; i++) {
        total += ref.dist[i];
        const gap = ref.second[i] - ref.dist[i];
        // Where the two nearest differ by more than float32 rounding the answer must be the same.
        if (gap > 1e-4 * (1 + ref.dist[i])) assert.equal(index[i], ref.index[i], `n=${n} d=${d} k=${k} i=${i}`);
        assert.ok(Math.abs(distance[i] - ref.dist[i]) <= 1e-4 * (1 + ref.dist[i]), `distance ${i}`);
      }
      assert.ok(Math.abs(sum - total) <= 1e-4 * (1 + total));
    }
  });

  Deno.test(`assignNearest (${backend}): ties go to the lowest index, strided input and output`, () => {
    // Centroid 3 duplicates centroid 1; centroid 17 (second block lane) duplicates centroid 2.
    const d = 2, k = 20;
    const c = new Float32Array(k * d);
    for (let q = 0; q < k; q++) (c[q * d] = 10 * q), (c[q * d + 1] = -q);
    c.set([10, -1], 3 * d);
    c.set([20, -2], 17 * d);
    const p = prepareCentroids(c, k, d);
    // points interleaved with junk: stride 3, offset 1
    const pts = new Float32Array([9, 10, -1, 9, 20, -2, 9, 190, -19]);
    const index = new Uint16Array(6).fill(999);
    assignNearest(p, { points: pts, n: 3, stride: 3, offset: 1, index, indexStride: 2, indexOffset: 1, backend });
    assert.deepEqual([...index], [999, 1, 999, 2, 999, 19]);
  });
}

Deno.test("SIMD and JS backends agree away from float32 near-ties", () => {
  const prng = new Prng(11);
  const n = 2000, d = 8, k = 256;
  const x = prng.fillNormal(new Float32Array(n * d)) as Float32Array;
  const c = prng.fillNormal(new Float32Array(k * d)) as Float32Array;
  const p = prepareCentroids(c, k, d);
  const a = new Int32Array(n), b = new Int32Array(n);
  const da = new Float64Array(n), db = new Float64Array(n);
  assignNearest(p, { points: x, n, index: a, distance: da, backend: "simd" });
  assignNearest(p, { points: x, n, index: b, distance: db, backend: "js" });
  const ref = bruteForce(x, n, d, c, k);
  for (let i = 0; i < n; i++) {
    if (ref.second[i] - ref.dist[i] > 1e-4) assert.equal(a[i], b[i]);
    assert.ok(Math.abs(da[i] - db[i]) < 1e-4 * (1 + db[i]));
  }
});

Deno.test("prepareCentroids rejects a wrong size", () => {
  assert.throws(() => prepareCentroids(new Float32Array(5), 2, 3), { name: "QuantlabError", code: "SHAPE_MISMATCH" });
});
