import assert from "node:assert/strict";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import type { NearestBackend } from "../../lib/vq/nearest.ts";
import { ProductQuantizer, productQuantizer } from "../../lib/vq/product_quantizer.ts";
import { fixtures } from "./fixtures.ts";

for (const backend of ["simd", "js"] as NearestBackend[]) {
  for (const c of fixtures.pq) {
    Deno.test(`PQ with faiss's codebooks encodes exactly like faiss compute_codes: ${c.name} (${backend})`, () => {
      const pq = new ProductQuantizer(Float32Array.from(c.codebooks), c.M, c.K, c.d, [], backend);
      const enc = pq.encode(Float32Array.from(c.x), c.d);
      assert.ok(c.K <= 256 ? enc.codes instanceof Uint8Array : enc.codes instanceof Uint16Array);
      assert.deepEqual([...enc.codes], c.codes);
      const dec = pq.decode(enc).data;
      assert.deepEqual([...dec.subarray(0, c.decoded.length)], [...Float32Array.from(c.decoded)]);
    });
  }
}

Deno.test("PQ distance tables match faiss compute_distance_tables", () => {
  for (const c of fixtures.pq.filter((p) => p.tableQueries > 0)) {
    const pq = ProductQuantizer.fromCodebooks(Float32Array.from(c.codebooks), c.M, c.K, c.d);
    for (let q = 0; q < c.tableQueries; q++) {
      const t = pq.distanceTable(Float32Array.from(c.x.slice(q * c.d, (q + 1) * c.d)));
      for (let i = 0; i < t.length; i++) {
        const ref = c.tables[q * c.M * c.K + i];
        assert.ok(Math.abs(t[i] - ref) <= 1e-5 * (1 + ref), `${c.name} query ${q} entry ${i}: ${t[i]} vs ${ref}`);
      }
    }
  }
});

function data(seed: number, n: number, d: number): Float32Array {
  return new Prng(seed).fillNormal(new Float32Array(n * d)) as Float32Array;
}

Deno.test("PQ decode(encode(x)) is the nearest codeword of every sub-vector (brute force)", () => {
  const d = 12, M = 3, K = 32, n = 400;
  const x = data(1, n, d);
  const pq = productQuantizer().subvectors(M).centroids(K).iterations(8).seed(3).fit(x, d);
  const rec = pq.decode(pq.encode(x, d)).data;
  const dsub = d / M;
  for (let i = 0; i < n; i++) {
    for (let m = 0; m < M; m++) {
      const cb = pq.codebook(m);
      let best = Infinity, second = Infinity;
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let j = 0; j < dsub; j++) s += (x[i * d + m * dsub + j] - cb[k * dsub + j]) ** 2;
        if (s < best) (second = best), (best = s);
        else if (s < second) second = s;
      }
      let got = 0;
      for (let j = 0; j < dsub; j++) got += (x[i * d + m * dsub + j] - rec[i * d + m * dsub + j]) ** 2;
      assert.ok(Math.abs(got - best) <= 1e-5 * (1 + best), `vector ${i} sub-space ${m}: ${got} vs nearest ${best}`);
    }
  }
});

Deno.test("PQ: asymmetric distances are table sums; reconstruction error is the direct one", () => {
  const d = 8, n = 300;
  const x = data(2, n, d);
  const pq = productQuantizer().subvectors(4).centroids(16).seed(0).fit(Tensor.from(x, [n, d]));
  const codes = pq.encode(x, d);
  const q = x.subarray(0, d);
  const adc = pq.asymmetricDistances(q, codes);
  const rec = pq.decode(codes).data;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += (q[j] - rec[i * d + j]) ** 2;
    assert.ok(Math.abs(adc[i] - s) <= 1e-4 * (1 + s));
  }
  let err = 0, norm = 0;
  for (let i = 0; i < n * d; i++) (err += (x[i] - rec[i]) ** 2), (norm += x[i] ** 2);
  const e = pq.reconstructionError(x, codes);
  assert.ok(Math.abs(e.mse - err / (n * d)) < 1e-9);
  assert.ok(Math.abs(e.squaredErrorPerVector - err / n) < 1e-9);
  assert.ok(Math.abs(e.relative - err / norm) < 1e-9);
  assert.ok(e.mse > 0 && e.relative < 1);
  // more centroids, lower error
  const fine = productQuantizer().subvectors(4).centroids(64).seed(0).fit(x, d);
  assert.ok(fine.reconstructionError(x).mse < e.mse);
});

Deno.test("PQ training objectives never increase; training is seeded and deterministic", () => {
  const x = data(3, 1500, 8);
  const a = productQuantizer().subvectors(2).centroids(24).seed(5).maxPointsPerCentroid(50).fit(x, 8);
  const b = productQuantizer().subvectors(2).centroids(24).seed(5).maxPointsPerCentroid(50).fit(x, 8);
  assert.deepEqual([...a.codebooks], [...b.codebooks]);
  assert.equal(a.objectives.length, 2);
  for (const obj of a.objectives) {
    for (let i = 1; i < obj.length; i++) assert.ok(obj[i] <= obj[i - 1] * (1 + 1e-6));
  }
  const c = productQuantizer().subvectors(2).centroids(24).seed(6).maxPointsPerCentroid(50).fit(x, 8);
  assert.notDeepEqual([...a.codebooks], [...c.codebooks]);
});

Deno.test("PQ with K > 256 trains and stores Uint16 codes", () => {
  const x = data(4, 700, 4);
  const pq = productQuantizer().subvectors(2).centroids(300).iterations(3).seed(0).fit(x, 4);
  const codes = pq.encode(x, 4);
  assert.ok(codes.codes instanceof Uint16Array);
  assert.ok(Math.max(...codes.codes) >= 256);
  assert.equal(pq.compression(700).codeBits, 700 * 2 * Math.log2(300));
});

Deno.test("PQ typed errors: M not dividing d, K > n, NaN, K out of range, bad codes", () => {
  const code = (c: string) => (e: Error & { code?: string }) => e.name === "QuantlabError" && e.code === c;
  const x = data(5, 100, 6);
  assert.throws(() => productQuantizer().subvectors(4).centroids(4).fit(x, 6), code("SHAPE_MISMATCH"));
  assert.throws(() => productQuantizer().subvectors(4).centroids(4).fit(x, 6), /must divide the dimension/);
  assert.throws(() => productQuantizer().subvectors(2).centroids(101).fit(x, 6), code("INVALID_ARGUMENT"));
  assert.throws(() => productQuantizer().subvectors(2).centroids(101).fit(x, 6), /exceeds the number of training/);
  const bad = x.slice();
  bad[17] = NaN;
  assert.throws(() => productQuantizer().subvectors(2).centroids(4).fit(bad, 6), code("NON_FINITE"));
  assert.throws(() => productQuantizer().centroids(65537), code("INVALID_ARGUMENT"));
  assert.throws(() => productQuantizer().centroids(0), code("INVALID_ARGUMENT"));
  assert.throws(() => productQuantizer().subvectors(0), code("INVALID_ARGUMENT"));
  assert.throws(() => productQuantizer().init("kmeans" as "random"), code("INVALID_ARGUMENT"));
  const pq = productQuantizer().subvectors(2).centroids(4).fit(x, 6);
  assert.throws(() => pq.encode(x, 3), code("SHAPE_MISMATCH"));
  assert.throws(() => pq.decode(new Uint8Array([0, 9])), code("INVALID_ARGUMENT"));
  assert.throws(() => pq.decode(new Uint8Array([0, 1, 2])), code("SHAPE_MISMATCH"));
  assert.throws(() => pq.distanceTable([1, 2]), code("SHAPE_MISMATCH"));
  assert.throws(() => ProductQuantizer.fromCodebooks(new Float32Array(10), 2, 4, 6), code("SHAPE_MISMATCH"));
});

Deno.test("PQ builder is immutable and prints", () => {
  const b = productQuantizer().subvectors(4);
  const c = b.centroids(16).iterations(5).seed(9);
  assert.equal(b.config.centroids, 256);
  assert.match(c.toString(), /M=4, K=16, iterations=5.*seed=9/);
  assert.match(productQuantizer().subvectors(2).centroids(4).fit(data(6, 20, 4), 4).toString(), /d=4, M=2, K=4/);
});
