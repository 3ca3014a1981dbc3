import assert from "node:assert/strict";
import { epochOrder, imageSet, tensorSet } from "../../lib/grad/train_data.ts";
import { batches, type ImageDataset } from "../../lib/data/batching.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { QuantlabError } from "../../lib/errors.ts";

function toyImages(n: number): ImageDataset {
  const rng = new Prng(4);
  const pixels = new Uint8Array(n * 2 * 3 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.nextInt(256);
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 3);
  return {
    name: "toy",
    pixels,
    labels,
    count: n,
    channels: 2,
    height: 3,
    width: 3,
    mean: 0.3,
    std: 0.4,
    classes: ["a", "b", "c"],
  };
}

Deno.test("imageSet gathers exactly what batches() yields, in any order", () => {
  const ds = toyImages(20);
  const set = imageSet(ds);
  const order = epochOrder(20, 9, 2);
  const mine = set.batch(order.subarray(0, 7));
  const ref = [...batches(ds, { batchSize: 20 })][0];
  assert.deepEqual(mine.x.shape, [7, 2, 3, 3]);
  for (let k = 0; k < 7; k++) {
    const i = order[k];
    assert.deepEqual([...mine.x.data.subarray(k * 18, k * 18 + 18)], [...ref.x.data.subarray(i * 18, i * 18 + 18)]);
    assert.equal(mine.labels.data[k], ds.labels[i]);
  }
  assert.equal(set.classes, 3);
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

Deno.test("tensorSet validates shapes and indices", () => {
  const s = tensorSet(new Tensor(new Float32Array(6), [3, 2]), new Uint8Array([0, 4, 1]));
  assert.equal(s.classes, 5);
  assert.throws(() => s.batch([3]), (e) => e instanceof QuantlabError && /index 3/.test(e.message));
  assert.throws(
    () => tensorSet(new Tensor(new Float32Array(6), [3, 2]), new Uint8Array(2)),
    (e) => e instanceof QuantlabError && e.code === "SHAPE_MISMATCH",
  );
  assert.throws(() => imageSet(toyImages(2)).batch([-1]), (e) => e instanceof QuantlabError);
});
