import assert from "node:assert/strict";
import {
  DEBIAN_FASHION_MNIST_DIR,
  describeFashionMnistSources,
  FASHION_MNIST_SUBSET_TRAIN,
  fashionMnistSources,
  loadFashionMnist,
} from "../../lib/data/fashion_mnist.ts";

const debian = (() => {
  try {
    return Deno.statSync(`${DEBIAN_FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`).isFile;
  } catch {
    return false;
  }
})();

Deno.test("Fashion-MNIST embedded subset: full test set and the first training images, verified", async () => {
  const test = await loadFashionMnist("test", { source: "embedded" });
  const train = await loadFashionMnist("train", { source: "embedded" });
  assert.equal(test.count, 10000);
  assert.equal(test.name, "fashion-mnist/test");
  assert.equal(train.count, FASHION_MNIST_SUBSET_TRAIN);
  assert.equal(train.name, `fashion-mnist/train[0:${FASHION_MNIST_SUBSET_TRAIN}]`);
  assert.equal(train.pixels.length, FASHION_MNIST_SUBSET_TRAIN * 784);
  const counts = new Array(10).fill(0);
  for (const l of train.labels) counts[l]++;
  assert.ok(counts.every((c) => c > 150), `every class present: ${counts}`);
  assert.equal(fashionMnistSources().train?.kind, "embedded");
  assert.ok(describeFashionMnistSources().includes("train: embedded subset (2,000 images of 60,000)"));
});

Deno.test("Fashion-MNIST embedded subset: FASHION_MNIST_SOURCE=embedded skips the folders", async () => {
  const saved = Deno.env.get("FASHION_MNIST_SOURCE");
  try {
    Deno.env.set("FASHION_MNIST_SOURCE", "embedded");
    const train = await loadFashionMnist("train");
    assert.equal(train.count, FASHION_MNIST_SUBSET_TRAIN);
  } finally {
    if (saved === undefined) Deno.env.delete("FASHION_MNIST_SOURCE");
    else Deno.env.set("FASHION_MNIST_SOURCE", saved);
  }
});

Deno.test({
  name: "Fashion-MNIST embedded subset: byte-identical to the first images of Debian's package",
  ignore: !debian,
  fn: async () => {
    const full = await loadFashionMnist("train", { dir: DEBIAN_FASHION_MNIST_DIR });
    const sub = await loadFashionMnist("train", { source: "embedded" });
    assert.equal(full.count, 60000);
    assert.deepEqual(sub.pixels, full.pixels.subarray(0, sub.pixels.length));
    assert.deepEqual(sub.labels, full.labels.subarray(0, sub.count));
    const fullTest = await loadFashionMnist("test", { dir: DEBIAN_FASHION_MNIST_DIR });
    const subTest = await loadFashionMnist("test", { source: "embedded" });
    assert.deepEqual(subTest.pixels, fullTest.pixels);
    assert.equal(fashionMnistSources().test?.kind, "embedded");
  },
});
