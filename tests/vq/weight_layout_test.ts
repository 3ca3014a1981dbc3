import assert from "node:assert/strict";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { kmeans } from "../../lib/vq/kmeans.ts";
import { productQuantizer } from "../../lib/vq/product_quantizer.ts";
import { blocksToWeight, weightToBlocks } from "../../lib/vq/weight_layout.ts";

function weight(shape: number[], seed = 0): Tensor<"float32"> {
  let n = 1;
  for (const s of shape) n *= s;
  return Tensor.from(new Prng(seed).fillNormal(new Float32Array(n)) as Float32Array, shape);
}

Deno.test("weightToBlocks/blocksToWeight round-trip for linear and conv weights in both orders", () => {
  for (
    const [shape, d] of [[[6, 8], 4], [[4, 6, 3, 3], 9], [[4, 6, 3, 3], 3], [[2, 8, 1, 1], 4], [[3, 4, 5], 2]] as [
      number[],
      number,
    ][]
  ) {
    for (const order of ["flat", "channels"] as const) {
      if (order === "flat" && (shape.slice(1).reduce((a: number, b: number) => a * b, 1) % d) !== 0) continue;
      if (order === "channels" && shape[1] % d !== 0) continue;
      const w = weight([...shape]);
      const b = weightToBlocks(w, d, order);
      assert.equal(b.count * d, w.size);
      assert.equal(b.rows * b.rowLength, w.size);
      assert.deepEqual(blocksToWeight(b.vectors, b).toArray(), w.toArray(), `${shape} ${order}`);
    }
  }
});

Deno.test("channel blocks gather W[o, c:c+d, h, w]; flat blocks with d = kh*kw are spatial kernels", () => {
  const w = weight([2, 4, 3, 3], 1);
  const at = (o: number, c: number, h: number, x: number) => w.data[((o * 4 + c) * 3 + h) * 3 + x];
  const ch = weightToBlocks(w, 2, "channels");
  // block order: output channel, spatial position (h, w), channel block
  const idx = (o: number, s: number, b: number) => ((o * 9 + s) * 2 + b) * 2;
  assert.deepEqual([...ch.vectors.subarray(idx(1, 4, 1), idx(1, 4, 1) + 2)], [at(1, 2, 1, 1), at(1, 3, 1, 1)]);
  const flat = weightToBlocks(w, 9, "flat");
  assert.deepEqual([...flat.vectors.subarray(9 * 5, 9 * 6)], [...w.data.subarray(9 * 5, 9 * 6)]); // kernel (o=1, c=1)
});

Deno.test("PQ of a conv weight through the layout: one codebook per block position, or one shared (k-means)", () => {
  const w = weight([16, 8, 3, 3], 2);
  const b = weightToBlocks(w, 9, "flat");
  const pq = productQuantizer().subvectors(b.rowLength / 9).centroids(4).seed(0).fit(b.vectors, b.rowLength);
  const rec = blocksToWeight(pq.decode(pq.encode(b.vectors, b.rowLength)).data, b);
  assert.deepEqual(rec.shape, [16, 8, 3, 3]);
  const km = kmeans().centroids(16).seed(0).fit(b.vectors, 9);
  const shared = blocksToWeight(km.fakeQuantize(b.vectors, 9), b);
  let e1 = 0, e2 = 0, norm = 0;
  for (let i = 0; i < w.size; i++) {
    e1 += (rec.data[i] - w.data[i]) ** 2;
    e2 += (shared.data[i] - w.data[i]) ** 2;
    norm += w.data[i] ** 2;
  }
  assert.ok(e1 < norm && e2 < norm);
});

Deno.test("weight layout errors name the problem", () => {
  const code = (c: string) => (e: Error & { code?: string }) => e.name === "QuantlabError" && e.code === c;
  assert.throws(() => weightToBlocks(weight([10]), 2), code("SHAPE_MISMATCH"));
  assert.throws(() => weightToBlocks(weight([4, 6]), 4), /must divide the values per output channel/);
  assert.throws(() => weightToBlocks(weight([4, 6, 3, 3]), 4, "channels"), /must divide the input channels/);
  assert.throws(() => weightToBlocks(weight([4, 6]), 0), code("INVALID_ARGUMENT"));
  assert.throws(() => weightToBlocks(weight([4, 6]), 2, "rows" as "flat"), code("INVALID_ARGUMENT"));
  assert.throws(
    () => blocksToWeight(new Float32Array(5), { shape: [2, 4], blockSize: 2, order: "flat" }),
    code("SHAPE_MISMATCH"),
  );
});
