import assert from "node:assert/strict";
import { countParameters, digitsCnn, NetBuilder, resnet8 } from "../../lib/models/mod.ts";
import { initializerValues } from "../../lib/grad/checkpoint.ts";
import { evaluateModel } from "../../lib/grad/train.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { trainTestSplit } from "../../lib/data/batching.ts";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { sha256Hex } from "../../lib/data/idx.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { QuantlabError } from "../../lib/errors.ts";

// PyTorch's state_dict of the same ResNet-8 (benchmarks/train_step_peer.py, num_batches_tracked dropped).
const TORCH_RESNET8: [string, number[]][] = [["conv.weight", [16, 1, 3, 3]]];
const bn = (p: string, c: number): [string, number[]][] =>
  ["weight", "bias", "running_mean", "running_var"].map((k) => [`${p}.${k}`, [c]]);
TORCH_RESNET8.push(...bn("bn", 16));
for (const [l, cin, cout] of [["layer1", 16, 16], ["layer2", 16, 32], ["layer3", 32, 64]] as const) {
  TORCH_RESNET8.push([`${l}.conv1.weight`, [cout, cin, 3, 3]], ...bn(`${l}.bn1`, cout));
  TORCH_RESNET8.push([`${l}.conv2.weight`, [cout, cout, 3, 3]], ...bn(`${l}.bn2`, cout));
  if (cin !== cout) TORCH_RESNET8.push([`${l}.down.conv.weight`, [cout, cin, 1, 1]], ...bn(`${l}.down.bn`, cout));
}
TORCH_RESNET8.push(["fc.weight", [10, 64]], ["fc.bias", [10]]);

Deno.test("ResNet-8 has PyTorch's parameter names and shapes (77,754 parameters)", () => {
  const m = resnet8();
  const mine = m.graph.initializer.map((t) => [t.name, t.dims] as [string, number[]]);
  assert.deepEqual(new Map(mine), new Map(TORCH_RESNET8));
  assert.equal(countParameters(m).trainable, 77754);
  assert.equal(m.graph.node.filter((n) => n.opType === "Add").length, 3, "three residual additions");
});

Deno.test("initialisation is seeded and follows the documented distributions", () => {
  const a = initializerValues(resnet8({ seed: 1 })), b = initializerValues(resnet8({ seed: 1 }));
  const c = initializerValues(resnet8({ seed: 2 }));
  assert.deepEqual([...a.get("layer3.conv2.weight")!], [...b.get("layer3.conv2.weight")!]);
  assert.notDeepEqual([...a.get("layer3.conv2.weight")!], [...c.get("layer3.conv2.weight")!]);
  // Kaiming normal, fan-out: std sqrt(2 / (64 * 9)) = 0.0589 over 36,864 draws.
  const w = a.get("layer3.conv2.weight")!;
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
  assert.ok(Math.abs(mean) < 0.002 && Math.abs(std / Math.sqrt(2 / 576) - 1) < 0.02, `mean ${mean} std ${std}`);
  // Linear: U(-1/8, 1/8) for fan-in 64.
  const fc = a.get("fc.weight")!;
  assert.ok(Math.max(...fc) <= 0.125 && Math.min(...fc) >= -0.125 && Math.max(...fc) > 0.1);
  assert.deepEqual([...a.get("bn.running_var")!], new Array(16).fill(1));
});

Deno.test("the reference graphs run on ONNX Runtime with any batch size", async () => {
  for (const [m, hw] of [[digitsCnn(), 8], [resnet8(), 28]] as const) {
    const s = await createSession(m, { threads: 1, cache: false });
    for (const n of [1, 3]) {
      const out = await s.run({ input: new Tensor(new Float32Array(n * hw * hw).fill(0.5), [n, 1, hw, hw]) });
      assert.deepEqual(out.logits.shape, [n, 10]);
      assert.ok([...out.logits.data].every(Number.isFinite));
    }
    await s.release();
  }
});

Deno.test("NetBuilder rejects duplicate names and bad shapes", () => {
  assert.throws(() => new NetBuilder({ channels: 0, height: 1, width: 1, seed: 0 }), QuantlabError);
  const net = new NetBuilder({ channels: 1, height: 2, width: 2, seed: 0 });
  net.conv("c", net.input, 1, 2, {});
  assert.throws(
    () => net.conv("c", net.input, 1, 2, {}),
    (e) => e instanceof QuantlabError && /used twice/.test(e.message),
  );
  assert.throws(
    () => net.batchNorm("b", net.input),
    (e) => e instanceof QuantlabError && /give channels/.test(e.message),
  );
});

async function card(name: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(new URL(`../../datasets/models/${name}.json`, import.meta.url)));
  } catch {
    return undefined;
  }
}

Deno.test("the committed digits CNN reaches its card's accuracy (>= 97%)", async () => {
  const c = await card("digits_cnn");
  assert.ok(c, "datasets/models/digits_cnn.json is committed");
  const url = new URL("../../datasets/models/digits_cnn.onnx", import.meta.url);
  assert.equal(await sha256Hex(await Deno.readFile(url)), c.sha256);
  const { test } = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });
  const ev = await evaluateModel(await OnnxModel.load(url), test, {
    session: { threads: 2 },
  });
  assert.ok(ev.accuracy >= 0.97 && Math.abs(ev.accuracy - (c.testAccuracy as number)) < 1e-9, `${ev.accuracy}`);
});

Deno.test("the committed ResNet-8 reaches its card's accuracy on Fashion-MNIST", async (t) => {
  const c = await card("resnet8_fashion");
  let testSet;
  try {
    testSet = await loadFashionMnist("test");
  } catch {
    testSet = undefined;
  }
  if (!c || !testSet) {
    await t.step({ name: "skipped: model card or Fashion-MNIST missing", ignore: true, fn: () => {} });
    return;
  }
  const url = new URL("../../datasets/models/resnet8_fashion.onnx", import.meta.url);
  assert.equal(await sha256Hex(await Deno.readFile(url)), c.sha256);
  const ev = await evaluateModel(await OnnxModel.load(url), testSet, { batchSize: 1000, session: { threads: 2 } });
  assert.ok(Math.abs(ev.accuracy - (c.testAccuracy as number)) < 1e-3, `${ev.accuracy} vs card ${c.testAccuracy}`);
  assert.equal(c.meetsTarget, ev.accuracy >= 0.91);
});
