import assert from "node:assert/strict";
import { epochOrder, labelledBatch } from "../../lib/grad/train_data.ts";
import { batches } from "../../lib/data/batching.ts";
import { type ImageDataset, imageDataset } from "../../lib/data/images.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { QuantlabError } from "../../lib/errors.ts";

function toyImages(n: number): ImageDataset {
  const rng = new Prng(4);
  const pixels = new Uint8Array(n * 2 * 3 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.nextInt(256);
  return imageDataset({
    name: "toy",
    pixels,
    labels: Uint8Array.from({ length: n }, (_, i) => i % 3),
    channels: 2,
    height: 3,
    width: 3,
    normalization: { mean: [0.3, 0.6], std: [0.4, 0.2] },
    classes: ["a", "b", "c"],
  });
}

Deno.test("labelledBatch gathers exactly what batches() yields, in any order", () => {
  const ds = toyImages(20);
  const order = epochOrder(20, 9, 2);
  const mine = labelledBatch(ds, order.subarray(0, 7));
  const ref = [...batches(ds, { batchSize: 20 })][0];
  assert.deepEqual(mine.x.shape, [7, 2, 3, 3]);
  assert.equal(mine.labels.dtype, "int32");
  for (let k = 0; k < 7; k++) {
    const i = order[k];
    assert.deepEqual([...mine.x.data.subarray(k * 18, k * 18 + 18)], [...ref.x.data.subarray(i * 18, i * 18 + 18)]);
    assert.equal(mine.labels.data[k], ds.labels[i]);
  }
});

Deno.test("epochOrder is a seeded permutation that differs per epoch and seed", () => {
  const seen = new Set<string>();
  for (const seed of [0, 1]) {
    for (let e = 0; e < 4; e++) {
      const o = epochOrder(50, seed, e);
      assert.deepEqual([...o].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
      assert.deepEqual([...o], [...epochOrder(50, seed, e)]);
      seen.add(o.join());
    }
  }
  assert.equal(seen.size, 8);
  assert.equal(epochOrder(0, 1, 0).length, 0);
});

Deno.test("labelledBatch validates indices", () => {
  assert.throws(
    () => labelledBatch(toyImages(2), [-1]),
    (e) => e instanceof QuantlabError && /index -1/.test(e.message),
  );
  assert.throws(() => labelledBatch(toyImages(2), [2]), (e) => e instanceof QuantlabError && /index 2/.test(e.message));
});
