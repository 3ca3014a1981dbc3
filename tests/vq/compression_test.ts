import assert from "node:assert/strict";
import { pqCompression } from "../../lib/vq/compression.ts";

Deno.test("compression accounting: closed-form bits for PQ and k-means", () => {
  // 100,000 x 64 vectors, M=8, K=256: codes 100000*8*8 bits, codebooks 8*256*8*32 bits
  const r = pqCompression({ vectors: 100000, subvectors: 8, centroids: 256, dimension: 64 });
  assert.equal(r.codeBits, 6_400_000);
  assert.equal(r.codebookBits, 524_288);
  assert.equal(r.totalBits, 6_924_288);
  assert.equal(r.weights, 6_400_000);
  assert.equal(r.bitsPerWeight, 6_924_288 / 6_400_000);
  assert.equal(r.ratio, (32 * 6_400_000) / 6_924_288);
  assert.equal(r.storedBits, r.totalBits);
  // k-means (M = 1) on 9-value blocks, K = 100 (not a power of two): log2 vs stored ceil(log2)
  const k = pqCompression({ vectors: 1000, subvectors: 1, centroids: 100, dimension: 9, codebookBits: 16 });
  assert.equal(k.codeBits, 1000 * Math.log2(100));
  assert.equal(k.codebookBits, 100 * 9 * 16);
  assert.equal(k.storedBits, 1000 * 7 + 100 * 9 * 16);
});

Deno.test("compression accounting rejects bad shapes", () => {
  const code = (c: string) => (e: Error & { code?: string }) => e.name === "QuantlabError" && e.code === c;
  assert.throws(
    () => pqCompression({ vectors: 10, subvectors: 3, centroids: 4, dimension: 8 }),
    code("SHAPE_MISMATCH"),
  );
  assert.throws(
    () => pqCompression({ vectors: -1, subvectors: 1, centroids: 4, dimension: 8 }),
    code("INVALID_ARGUMENT"),
  );
  assert.throws(
    () => pqCompression({ vectors: 1, subvectors: 1, centroids: 0, dimension: 8 }),
    code("INVALID_ARGUMENT"),
  );
});
