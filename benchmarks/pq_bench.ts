/**
 * `deno bench -A benchmarks/pq_bench.ts`: nearest-centroid search (both backends), one k-means training and
 * PQ encoding at the sizes of the peer benchmark, scaled down to keep `deno bench` short.
 * The full-size comparison with faiss is `deno run -A benchmarks/pq_peer.ts`.
 *
 * @module
 */
import { Prng } from "../lib/tensor/prng.ts";
import { assignNearest, kmeans, prepareCentroids, productQuantizer } from "../lib/vq/mod.ts";

const d = 8, K = 256, n = 16384;
const x = new Prng(1).fillNormal(new Float32Array(n * d)) as Float32Array;
const cents = prepareCentroids(new Prng(2).fillNormal(new Float32Array(K * d)) as Float32Array, K, d);
const index = new Int32Array(n);

Deno.bench({ name: "nearest 16384 x 256 centroids, d=8 (simd)", group: "nearest", baseline: true }, () => {
  assignNearest(cents, { points: x, n, index, backend: "simd" });
});
Deno.bench({ name: "nearest 16384 x 256 centroids, d=8 (js)", group: "nearest" }, () => {
  assignNearest(cents, { points: x, n, index, backend: "js" });
});

Deno.bench("k-means k=256, d=8, 16384 points, 5 iterations (random init)", () => {
  kmeans().centroids(K).iterations(5).tolerance(0).init("random").maxPointsPerCentroid(64).fit(x, d);
});

const x64 = new Prng(3).fillNormal(new Float32Array(20000 * 64)) as Float32Array;
const pq = productQuantizer().subvectors(8).centroids(256).iterations(5).seed(0).maxPointsPerCentroid(40)
  .fit(x64, 64);
Deno.bench("PQ encode 20000 x 64, M=8, K=256", () => {
  pq.encode(x64, 64);
});
