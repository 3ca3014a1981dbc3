/**
 * `deno task train`: train quantlab's reference models with quantlab's own gradient compiler and trainer, and
 * write them under `datasets/models/` with a card each (`<name>.json`: architecture, data, training
 * configuration, seeds, per-epoch history, test accuracy, time, backend).
 *
 * - `digits_cnn`: the small CNN with BatchNorm on the embedded 8x8 digits (seeded stratified 80/20 split).
 * - `resnet8_fashion`: ResNet-8 (16/32/64 channels, BatchNorm) on Fashion-MNIST (60k train / 10k test).
 *
 * Usage: `deno run -A scripts/train.ts [--model digits|resnet8|all] [--backend auto|node|web] [--threads 2]
 * [--epochs N] [--out datasets/models]`. While training, the inference model of the last finished epoch is
 * kept at `<out>/<name>.checkpoint.onnx` (written atomically); the final model replaces it at the end.
 *
 * @module
 */
import { loadDigits } from "../lib/data/digits.ts";
import { type ImageDataset, trainTestSplit } from "../lib/data/batching.ts";
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { sha256Hex } from "../lib/data/idx.ts";
import { Trainer, type TrainingEpoch } from "../lib/grad/train.ts";
import { labelledBatch } from "../lib/grad/train_data.ts";
import { sgd } from "../lib/grad/optim.ts";
import { oneCycleLr } from "../lib/grad/schedule.ts";
import { saveCheckpoint } from "../lib/grad/checkpoint.ts";
import { ORT_VERSION } from "../lib/onnx/session.ts";
import type { OnnxModel } from "../lib/onnx/model.ts";
import { digitsCnn } from "../lib/models/digits_cnn.ts";
import { resnet8 } from "../lib/models/resnet8.ts";
import { countParameters } from "../lib/models/layers.ts";
import { progress } from "../lib/notebook/progress.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

/** A reference recipe: everything that determines the trained model. */
interface Recipe {
  name: string;
  description: string;
  dataset: string;
  build: (seed: number) => OnnxModel;
  modelSeed: number;
  shuffleSeed: number;
  epochs: number;
  batchSize: number;
  optimizer: { kind: "sgd"; lr: number; momentum: number; nesterov: boolean; weightDecay: number };
  schedule: { kind: "oneCycle"; maxLr: number; pctStart: number };
  target: number;
  data: () => Promise<{ train: ImageDataset; test: ImageDataset; split: string }>;
}

const RECIPES: Record<string, Recipe> = {
  digits: {
    name: "digits_cnn",
    description:
      "conv3x3 1->16, BN, ReLU; conv3x3 16->32, BN, ReLU; MaxPool 2; conv3x3 32->32, BN, ReLU; GAP; fc 32->10",
    dataset: "UCI 8x8 digits (scikit-learn copy, datasets/digits.csv.gz), pixels / 16",
    build: (seed) => digitsCnn({ seed }),
    modelSeed: 0,
    shuffleSeed: 0,
    epochs: 8,
    batchSize: 32,
    optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    schedule: { kind: "oneCycle", maxLr: 0.1, pctStart: 0.3 },
    target: 0.97,
    data: async () => {
      const { train, test } = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });
      return {
        train,
        test,
        split: "trainTestSplit(loadDigits(), { testFraction: 0.2, seed: 0 }): stratified, 1438 train / 359 test",
      };
    },
  },
  resnet8: {
    name: "resnet8_fashion",
    description: "ResNet-8: conv3x3 1->16, BN, ReLU; 3 stages of one basic block (16, 32, 64 channels; stride 2 " +
      "and 1x1 conv + BN projection entering stages 2 and 3); GAP; fc 64->10",
    dataset: "Fashion-MNIST (IDX), normalised (x/255 - 0.2860) / 0.3530",
    build: (seed) => resnet8({ seed }),
    modelSeed: 0,
    shuffleSeed: 0,
    epochs: 10,
    batchSize: 128,
    optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    schedule: { kind: "oneCycle", maxLr: 0.1, pctStart: 0.3 },
    target: 0.91,
    data: async () => ({
      train: await loadFashionMnist("train"),
      test: await loadFashionMnist("test"),
      split: "the official split: 60,000 train / 10,000 test",
    }),
  },
};

/** Train one recipe and write `<out>/<name>.onnx` and `<out>/<name>.json`; returns the card. */
export async function trainReference(
  recipe: Recipe,
  o: { out: string; backend: "auto" | "node" | "web"; threads: number; epochs?: number },
): Promise<Record<string, unknown>> {
  const epochs = o.epochs ?? recipe.epochs;
  const { train, test, split } = await recipe.data();
  const model = recipe.build(recipe.modelSeed);
  const opt = sgd(recipe.optimizer);
  const stepsPerEpoch = Math.ceil(train.count / recipe.batchSize);
  const schedule = oneCycleLr({
    maxLr: recipe.schedule.maxLr,
    pctStart: recipe.schedule.pctStart,
    totalSteps: epochs * stepsPerEpoch,
  });
  const t0 = performance.now();
  const trainer = await Trainer.create({
    model,
    optimizer: opt,
    sample: labelledBatch(train, [0, 1, 2, 3]),
    session: { backend: o.backend, threads: o.threads },
  });
  const config = {
    epochs,
    batchSize: recipe.batchSize,
    optimizer: recipe.optimizer,
    schedule: { ...recipe.schedule, totalSteps: epochs * stepsPerEpoch, unit: "step" },
    loss: "softmax cross-entropy (mean over the batch)",
    batchNorm: "training mode from batch statistics; running stats with PyTorch momentum 0.1, unbiased variance",
    shuffle: "epochOrder(count, shuffleSeed, epoch) (xoshiro128** Fisher-Yates)",
    augmentation: "none",
  };
  await Deno.mkdir(o.out, { recursive: true });
  const ckpt = `${o.out}/${recipe.name}.checkpoint.onnx`;
  const history: TrainingEpoch[] = [];
  const r = await trainer.fit({
    train,
    test,
    epochs,
    batchSize: recipe.batchSize,
    seed: recipe.shuffleSeed,
    schedule,
    checkpoint: ckpt,
    metadata: { recipe: recipe.name, modelSeed: recipe.modelSeed, shuffleSeed: recipe.shuffleSeed, config },
    label: recipe.name,
    progress: (total, label) => progress(total, { label }),
    onEpoch: (rec) => {
      history.push(rec);
      console.log(
        `${recipe.name} epoch ${rec.epoch}/${epochs}: train loss ${rec.trainLoss.toFixed(4)} acc ${
          rec.trainAccuracy.toFixed(4)
        }, ` +
          `test loss ${rec.testLoss?.toFixed(4)} acc ${rec.testAccuracy?.toFixed(4)}, ${rec.seconds.toFixed(1)} s`,
      );
    },
  });
  await trainer.release();
  const seconds = (performance.now() - t0) / 1000;
  const last = history[history.length - 1];
  const card = {
    name: recipe.name,
    file: `${recipe.name}.onnx`,
    architecture: recipe.description,
    parameters: countParameters(model),
    input: { name: "input", shape: ["N", ...model.declaredShape("input")!.slice(1)], dtype: "float32" },
    output: { name: "logits", shape: ["N", 10] },
    dataset: recipe.dataset,
    split,
    modelSeed: recipe.modelSeed,
    shuffleSeed: recipe.shuffleSeed,
    init: "Kaiming normal (fan_out, ReLU) convs; PyTorch default Linear; BN scale 1, bias 0 (lib/models/layers.ts)",
    training: config,
    testAccuracy: last.testAccuracy,
    testLoss: last.testLoss,
    target: recipe.target,
    meetsTarget: (last.testAccuracy ?? 0) >= recipe.target,
    trainSeconds: Number(seconds.toFixed(1)),
    timingNote: "wall time including per-epoch evaluation and checkpoints; depends on the machine's load",
    backend: r.backend,
    threads: o.threads,
    onnxruntime: ORT_VERSION,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
    history: history.map((h) => ({
      epoch: h.epoch,
      trainLoss: Number(h.trainLoss.toFixed(5)),
      trainAccuracy: Number(h.trainAccuracy.toFixed(5)),
      testLoss: Number(h.testLoss?.toFixed(5)),
      testAccuracy: h.testAccuracy,
      lr: Number(h.lr.toPrecision(6)),
      seconds: Number(h.seconds.toFixed(2)),
    })),
    sha256: "",
  };
  const path = `${o.out}/${recipe.name}.onnx`;
  await saveCheckpoint(path, r.model, {
    quantlab_card: JSON.stringify({ ...card, history: undefined, sha256: undefined }),
    testAccuracy: last.testAccuracy,
  });
  card.sha256 = await sha256Hex(await Deno.readFile(path));
  await Deno.writeTextFile(`${o.out}/${recipe.name}.json`, JSON.stringify(card, null, 2) + "\n");
  await Deno.remove(ckpt).catch(() => {});
  console.log(
    `${recipe.name}: test accuracy ${last.testAccuracy} in ${seconds.toFixed(1)} s on ${r.backend} -> ${path}`,
  );
  return card;
}

if (import.meta.main) {
  const which = arg("model", "all");
  const names = which === "all" ? ["digits", "resnet8"] : which.split(",");
  for (const n of names) {
    if (!RECIPES[n]) throw new Error(`unknown --model ${n}; expected digits, resnet8 or all`);
  }
  const epochs = Deno.args.includes("--epochs") ? Number(arg("epochs", "0")) : undefined;
  for (const n of names) {
    await trainReference(RECIPES[n], {
      out: arg("out", "datasets/models"),
      backend: arg("backend", "auto") as "auto" | "node" | "web",
      threads: Number(arg("threads", "2")),
      epochs,
    });
  }
}

export { RECIPES };
export type { Recipe };
