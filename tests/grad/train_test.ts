import assert from "node:assert/strict";
import { loadDigits } from "../../lib/data/digits.ts";
import { subset, trainTestSplit } from "../../lib/data/batching.ts";
import { imageDataset } from "../../lib/data/images.ts";
import { evaluateModel, train, Trainer } from "../../lib/grad/train.ts";
import { labelledBatch } from "../../lib/grad/train_data.ts";
import { sgd } from "../../lib/grad/optim.ts";
import { oneCycleLr, ReduceLROnPlateau, stepLr } from "../../lib/grad/schedule.ts";
import { initializerValues } from "../../lib/grad/checkpoint.ts";
import { digitsCnn } from "../../lib/models/digits_cnn.ts";
import { NetBuilder } from "../../lib/models/layers.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { attrInt } from "../../lib/onnx/graph.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { QuantlabError } from "../../lib/errors.ts";

const session = { backend: "auto" as const, threads: 2 };

async function digitsSets() {
  const { train, test } = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });
  return { trainSet: train, testSet: test };
}

/** input [N, 3, 2, 2] -> BN(3) -> Flatten -> Gemm(12 -> 2): running statistics can be checked by hand. */
function bnModel(): OnnxModel {
  const net = new NetBuilder({ channels: 3, height: 2, width: 2, seed: 3 });
  const y = net.flatten(net.batchNorm("bn", net.input, 3));
  return net.finish(net.linear("fc", y, 12, 2), "bn_toy");
}

function toyBatch(n: number, seed: number) {
  const rng = new Prng(seed);
  const x = new Float32Array(n * 12);
  for (let i = 0; i < x.length; i++) x[i] = 2 + 3 * rng.nextNormal() + (i % 12);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = i % 2;
  return { x: new Tensor<"float32">(x, [n, 3, 2, 2]), labels: new Tensor<"int32">(y, [n]) };
}

Deno.test("BatchNorm running statistics follow PyTorch's update (momentum 0.1, unbiased variance)", async () => {
  const t = await Trainer.create({ model: bnModel(), optimizer: sgd({ lr: 0.01 }), sample: toyBatch(4, 1), session });
  const mean = new Float64Array([0, 0, 0]), rvar = new Float64Array([1, 1, 1]);
  for (let step = 0; step < 3; step++) {
    const b = toyBatch(6, 10 + step);
    await t.step(b);
    // Per channel over N and the 2x2 spatial positions: count = 6 * 4.
    for (let c = 0; c < 3; c++) {
      const vals: number[] = [];
      for (let i = 0; i < 6; i++) for (let s = 0; s < 4; s++) vals.push(b.x.data[i * 12 + c * 4 + s]);
      const m = vals.reduce((a, v) => a + v, 0) / vals.length;
      const unbiased = vals.reduce((a, v) => a + (v - m) ** 2, 0) / (vals.length - 1);
      mean[c] = 0.9 * mean[c] + 0.1 * m;
      rvar[c] = 0.9 * rvar[c] + 0.1 * unbiased;
    }
    const rm = t.runningStats.get("bn.running_mean")!, rv = t.runningStats.get("bn.running_var")!;
    for (let c = 0; c < 3; c++) {
      assert.ok(
        Math.abs(rm[c] - mean[c]) < 1e-4 * (1 + Math.abs(mean[c])),
        `step ${step} mean[${c}] ${rm[c]} vs ${mean[c]}`,
      );
      assert.ok(Math.abs(rv[c] - rvar[c]) < 1e-4 * rvar[c], `step ${step} var[${c}] ${rv[c]} vs ${rvar[c]}`);
    }
  }
  // The inference model carries the running statistics and the updated parameters.
  const inf = initializerValues(t.inferenceModel());
  assert.deepEqual([...inf.get("bn.running_var")!], [...t.runningStats.get("bn.running_var")!]);
  assert.deepEqual([...inf.get("fc.weight")!], [...t.params.get("fc.weight")!]);
  assert.notDeepEqual([...inf.get("fc.weight")!], [...initializerValues(bnModel()).get("fc.weight")!]);
  await t.release();
});

Deno.test("the digits CNN trains from scratch to >= 97% test accuracy", async () => {
  const { trainSet, testSet } = await digitsSets();
  const epochs = 8, bs = 32;
  const dir = await Deno.makeTempDir();
  const seen: number[] = [];
  const r = await train(digitsCnn({ seed: 0 }), {
    train: trainSet,
    test: testSet,
    epochs,
    batchSize: bs,
    seed: 0,
    schedule: oneCycleLr({ maxLr: 0.1, totalSteps: epochs * Math.ceil(trainSet.count / bs) }),
    checkpoint: `${dir}/digits.onnx`,
    metadata: { seed: 0 },
    progress: "none",
    onEpoch: (rec) => {
      seen.push(rec.epoch);
    },
  }, { optimizer: sgd({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }), session });
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
  const last = r.history[epochs - 1];
  assert.ok(last.testAccuracy! >= 0.97, `test accuracy ${last.testAccuracy}`);
  assert.ok(last.trainLoss < r.history[0].trainLoss / 10);
  assert.ok(last.lr < 1e-5, "one-cycle ends near zero");
  // The checkpoint is a plain inference model (BN in inference form) that reproduces the accuracy.
  const ck = await OnnxModel.load(`${dir}/digits.onnx`);
  const meta = Object.fromEntries(ck.proto.metadataProps.map((e) => [e.key, e.value]));
  assert.equal(meta.epoch, String(epochs));
  assert.equal(meta.seed, "0");
  for (const n of ck.graph.node.filter((m) => m.opType === "BatchNormalization")) {
    assert.equal(attrInt(n, "training_mode", 0), 0);
    assert.equal(n.output.length, 1);
  }
  const ev = await evaluateModel(ck, testSet, { session });
  assert.equal(ev.accuracy, last.testAccuracy);
  assert.ok(Math.abs(ev.loss - last.testLoss!) < 1e-9);
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
    ["digits.onnx"],
    "no temp files left",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("training is deterministic for a seed (single thread)", async () => {
  const { trainSet } = await digitsSets();
  const run = async (seed: number) => {
    const t = await Trainer.create({
      model: digitsCnn({ seed: 1 }),
      optimizer: sgd({ lr: 0.05, momentum: 0.9 }),
      sample: labelledBatch(trainSet, [0, 1]),
      session: { backend: "auto", threads: 1 },
    });
    await t.fit({ train: subset(trainSet, 0, 256), epochs: 1, batchSize: 64, seed, progress: "none" });
    const w = t.params.get("fc.weight")!.slice();
    await t.release();
    return w;
  };
  const a = await run(5), b = await run(5), c = await run(6);
  assert.deepEqual([...a], [...b]);
  assert.notDeepEqual([...a], [...c]);
});

Deno.test("fit steps per-epoch schedules and plateau schedulers, drops a last batch of one", async () => {
  const rng = new Prng(2);
  const n = 33; // batches of 8: 4 full + 1 of one (dropped)
  const x = new Uint8Array(n * 12);
  for (let i = 0; i < x.length; i++) x[i] = rng.nextInt(256);
  const set = imageDataset({
    name: "noise",
    pixels: x,
    labels: Uint8Array.from({ length: n }, (_, i) => i % 2),
    channels: 3,
    height: 2,
    width: 2,
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.29, 0.29, 0.29] },
  });
  const opt = sgd({ lr: 1 });
  const t = await Trainer.create({ model: bnModel(), optimizer: opt, sample: labelledBatch(set, [0, 1]), session });
  const r = await t.fit({
    train: set,
    epochs: 3,
    batchSize: 8,
    seed: 0,
    schedule: stepLr({ lr: 0.1, stepSize: 1, gamma: 0.5 }),
    progress: "none",
  });
  assert.deepEqual(r.history.map((h) => h.lr), [0.1, 0.05, 0.025]);
  assert.equal(t.steps, 12);
  assert.equal(r.history[0].testAccuracy, undefined);
  const plateau = new ReduceLROnPlateau(opt, { patience: 0, factor: 0.5, mode: "max", threshold: 10 });
  opt.lr = 0.2;
  await t.fit({ train: set, epochs: 2, batchSize: 8, seed: 0, plateau, progress: "none" });
  // mode "max" with a huge relative threshold: the first epoch improves on -inf, the second cannot.
  assert.equal(opt.lr, 0.1);
  await t.release();
});

Deno.test("trainer rejects bad settings", async () => {
  const { trainSet } = await digitsSets();
  const bad = async (f: () => Promise<unknown>, re: RegExp) =>
    await assert.rejects(f, (e) => e instanceof QuantlabError && re.test(e.message));
  await bad(
    () =>
      Trainer.create({
        model: digitsCnn(),
        optimizer: sgd({ lr: 0.1 }),
        sample: labelledBatch(trainSet, [0]),
        session,
      }),
    /at least 2/,
  );
  const t = await Trainer.create({
    model: digitsCnn(),
    optimizer: sgd({ lr: 0.1 }),
    sample: labelledBatch(trainSet, [0, 1]),
    session,
  });
  await bad(() => t.fit({ train: trainSet, epochs: 0, seed: 0, progress: "none" }), /epochs/);
  await bad(() => t.fit({ train: trainSet, epochs: 1, batchSize: 1, seed: 0, progress: "none" }), /batchSize/);
  await bad(() => t.step(labelledBatch(trainSet, [3])), />= 2/);
  t.optimizer.lr = 1e30;
  await bad(async () => {
    for (let i = 0; i < 5; i++) await t.step(labelledBatch(trainSet, [0, 1, 2, 3]));
  }, /loss is/);
  await t.release();
});
