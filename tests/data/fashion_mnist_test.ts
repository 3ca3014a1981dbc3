import assert from "node:assert/strict";
import { FASHION_MNIST_SHA256, loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { batches, subset } from "../../lib/data/batching.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { b64f32, fashionMnistAvailable, reference } from "../onnx/_fixtures.ts";

const ignore = !fashionMnistAvailable();

Deno.test({
  name: "Fashion-MNIST: both splits load, verify, and normalise exactly like the PyTorch fixture script",
  ignore,
  fn: async () => {
    const test = await loadFashionMnist("test");
    assert.equal(test.count, 10000);
    assert.deepStrictEqual(Array.from(test.labels.subarray(0, 8)), reference.labels);
    const first = batches(test, { batchSize: 8 }).next().value!;
    assert.deepStrictEqual(first.x.shape, [8, 1, 28, 28]);
    assert.deepStrictEqual(first.x.data, b64f32(reference.inputs));
    const train = await loadFashionMnist("train");
    assert.equal(train.count, 60000);
    const counts = new Array(10).fill(0);
    for (const l of train.labels) counts[l]++;
    assert.ok(counts.every((c) => c === 6000));
    const sh = [...batches(subset(test, 0, 100), { batchSize: 100, shuffleSeed: 3 })][0];
    assert.notDeepStrictEqual(Array.from(sh.labels), Array.from(test.labels.subarray(0, 100)));
    assert.deepStrictEqual(Array.from(sh.labels).sort(), Array.from(test.labels.subarray(0, 100)).sort());
  },
});

Deno.test("Fashion-MNIST errors: missing files say how to get them; corrupt and wrong-size files are named", async () => {
  const dir = await Deno.makeTempDir();
  const saved = Deno.env.get("FASHION_MNIST_DIR");
  try {
    Deno.env.set("FASHION_MNIST_DIR", dir);
    // An empty folder first in the search list: still found elsewhere unless nothing else exists, so check the
    // message of a split whose files we corrupt here instead.
    const header = (dims: number[]) => {
      const b = new Uint8Array(4 + 4 * dims.length);
      b[2] = 8;
      b[3] = dims.length;
      const dv = new DataView(b.buffer);
      dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d));
      return b;
    };
    const img = new Uint8Array([...header([2, 28, 27]), ...new Uint8Array(2 * 28 * 27)]);
    await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, img);
    await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte`, new Uint8Array([...header([2]), 1, 2]));
    await assert.rejects(
      loadFashionMnist("test", { dir }),
      (e: unknown) =>
        e instanceof QuantlabError && e.code === "DATASET" && /t10k-images-idx3-ubyte: SHA-256/.test(e.message) &&
        /apt-get install dataset-fashion-mnist/.test(e.message),
    );
    await assert.rejects(
      loadFashionMnist("test", { dir, verify: false }),
      (e: unknown) =>
        e instanceof QuantlabError && e.code === "DATASET" &&
        /dims \[2,28,27\], expected \[N, 28, 28\]/.test(e.message),
    );
    await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, new Uint8Array([1, 2, 3]));
    await assert.rejects(
      loadFashionMnist("test", { dir, verify: false }),
      (e: unknown) => e instanceof QuantlabError && e.code === "DATASET" && /not an IDX file/.test(e.message),
    );
    await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte.gz`, new Uint8Array([0x1f, 0x8b, 3, 4]));
    await assert.rejects(
      loadFashionMnist("test", { dir, verify: false }),
      (e: unknown) => e instanceof QuantlabError && e.code === "DATASET" && /gzip/.test(e.message),
    );
    await assert.rejects(
      loadFashionMnist("validation" as "test"),
      (e: unknown) => e instanceof QuantlabError && e.code === "INVALID_ARGUMENT",
    );
    assert.equal(Object.keys(FASHION_MNIST_SHA256).length, 4);
  } finally {
    if (saved === undefined) Deno.env.delete("FASHION_MNIST_DIR");
    else Deno.env.set("FASHION_MNIST_DIR", saved);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Fashion-MNIST missing everywhere: DATASET error with instructions", async () => {
  const dir = await Deno.makeTempDir();
  const cwd = Deno.cwd();
  const saved = Deno.env.get("FASHION_MNIST_DIR");
  try {
    Deno.chdir(dir);
    Deno.env.set("FASHION_MNIST_DIR", dir);
    // Only the Debian folder can still match; point at a split name that never exists there via a bad dir list.
    const err = await loadFashionMnist("test", { dir: `${dir}/nothing` }).then(() => null, (e) => e);
    if (err) {
      assert.ok(err instanceof QuantlabError && err.code === "DATASET");
      assert.match(err.message, /deno task fetch-data/);
    } else {
      assert.ok(fashionMnistAvailable(), "loaded although no copy is installed");
    }
  } finally {
    Deno.chdir(cwd);
    if (saved === undefined) Deno.env.delete("FASHION_MNIST_DIR");
    else Deno.env.set("FASHION_MNIST_DIR", saved);
    await Deno.remove(dir, { recursive: true });
  }
});
