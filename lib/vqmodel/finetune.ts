/**
 * Codebook fine-tuning with frozen codes, and BatchNorm re-estimation.
 *
 * How the gradient is computed (the choice the issue leaves open): the existing gradient compiler
 * (lib/grad) differentiates the float model with respect to the quantized weights, fed as parameters with the
 * reconstructions `w = C[codes]`; the weight gradients are then scatter-added into the codebooks
 * ({@link VqLayer.centroidGradient}: sum over members for Deep Compression, mean for kill-the-bits). This is the
 * chain rule through the gather, so it equals autograd through `C[codes]` (tests/vqmodel checks it against
 * PyTorch), and the graph stays the model's own (no Gather in the backward graph).
 *
 * @module
 */
import { batches, type ImageDataset } from "../data/batching.ts";
import { QuantlabError } from "../errors.ts";
import { applyParams, buildGradientGraph } from "../grad/compiler.ts";
import { crossEntropyLoss, klDivLoss } from "../grad/losses.ts";
import { adam, type Optimizer, sgd } from "../grad/optim.ts";
import { GradientSession } from "../grad/session.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import { Tensor } from "../tensor/tensor.ts";
import { captureValues } from "./activations.ts";
import type { CentroidReduce, VqLayer } from "./layer.ts";

/**
 * The model with every layer's weight replaced by its reconstruction `C[codes]`.
 *
 * @example
 * ```ts
 * import { reconstructedModel } from "./finetune.ts";
 * import { fitKMeansLayer, initializerValues, weightSites } from "./fit.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const site = weightSites(model)[3];
 * const layer = fitKMeansLayer(site, initializerValues(model, site.weight), { k: 2 });
 * const m = reconstructedModel(model, [layer]);
 * if (new Set(initializerValues(m, "fc.weight")).size !== 2) throw new Error("two shared values");
 * ```
 */
export function reconstructedModel(model: OnnxModel, layers: readonly VqLayer[]): OnnxModel {
  return applyParams(model, new Map(layers.map((l) => [l.weight, l.reconstruct()])));
}

/** Options of {@link finetuneCodebooks}. */
export interface FinetuneOptions {
  /** Training images. */
  readonly data: ImageDataset;
  /** Optimizer steps (batches). */
  readonly steps: number;
  /** Images per batch (default 32). */
  readonly batchSize?: number;
  /** Learning rate (default 1e-3 for Adam, 0.01 for SGD). */
  readonly lr?: number;
  /** `"adam"` (default) or `"sgd"` (momentum 0.9, kill-the-bits' CentroidSGD). */
  readonly optimizer?: "adam" | "sgd";
  /** `"distill"` (default: KL to the teacher's softmax, as kill-the-bits) or `"labels"` (cross-entropy). */
  readonly loss?: "distill" | "labels";
  /** The teacher for `"distill"` (default: `model`, the float model the layers were fitted on). */
  readonly teacher?: OnnxModel;
  /** Reduction of member gradients per layer method (default: k-means `"sum"`, PQ `"mean"`). */
  readonly reduce?: CentroidReduce;
  /**
   * BatchNorm from running statistics (`"eval"`, default) or batch statistics (`"train"`, kill-the-bits' global
   * fine-tuning; re-estimate the statistics afterwards with {@link reestimateBatchNorm}).
   */
  readonly batchNorm?: "train" | "eval";
  /** Only these weights' codebooks move (default: all layers). */
  readonly only?: readonly string[];
  /** Shuffle seed (default 0). */
  readonly seed?: number;
  /** ORT options. */
  readonly session?: SessionOptions;
  /** Called after each step. */
  readonly onStep?: (step: number, loss: number) => void;
}

/** Result of {@link finetuneCodebooks}. */
export interface Finetuned {
  /** Layers with the fine-tuned codebooks (codes unchanged). */
  readonly layers: VqLayer[];
  /** Loss per step. */
  readonly losses: Float64Array;
}

/** Batches of `ds` forever, reshuffled each pass. */
function* cycle(ds: ImageDataset, batchSize: number, seed: number) {
  for (let epoch = 0;; epoch++) {
    for (const b of batches(ds, { batchSize, shuffleSeed: seed + epoch })) if (b.labels.length >= 2) yield b;
  }
}

/**
 * Fine-tune the codebooks of `layers` (codes frozen) on `data`: each step runs the float model with the
 * reconstructed weights, takes the weight gradients and moves each codebook by its members' summed or averaged
 * gradient. BatchNorm runs from its running statistics unless `batchNorm: "train"`.
 *
 * @example
 * ```ts ignore
 * const { layers: tuned } = await finetuneCodebooks(model, layers, { data: train, steps: 200 });
 * ```
 */
export async function finetuneCodebooks(
  model: OnnxModel,
  layers: readonly VqLayer[],
  options: FinetuneOptions,
): Promise<Finetuned> {
  const steps = options.steps;
  if (!Number.isInteger(steps) || steps < 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `finetune steps must be a non-negative integer, got ${steps}`);
  }
  if (steps === 0 || layers.length === 0) return { layers: [...layers], losses: new Float64Array(0) };
  const bs = options.batchSize ?? 32, lossKind = options.loss ?? "distill";
  if (!Number.isInteger(bs) || bs < 2 || options.data.count < 2) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `codebook fine-tuning needs batches of >= 2 images (batch size ${bs}, ${options.data.name} has ${options.data.count})`,
    );
  }
  const only = options.only ? new Set(options.only) : undefined;
  const trainable = layers.filter((l) => !only || only.has(l.weight));
  const input = model.graph.input.find((i) => !model.graph.initializer.some((t) => t.name === i.name))!.name;
  const output = model.graph.output[0].name;
  const it = cycle(options.data, bs, options.seed ?? 0);
  const first = it.next().value!;
  const teacher = lossKind === "distill" ? await createSession(options.teacher ?? model, options.session) : undefined;
  const targets = async (x: Tensor<"float32">, labels: Uint8Array): Promise<Record<string, Tensor>> =>
    teacher
      ? { teacher_logits: (await teacher.run({ [input]: x }))[teacher.outputNames[0]] }
      : { labels: new Tensor<"int32">(Int32Array.from(labels), [labels.length]) };
  const base = reconstructedModel(model, layers);
  const tg = await buildGradientGraph(base, {
    loss: lossKind === "distill" ? klDivLoss(output, "teacher_logits") : crossEntropyLoss(output, "labels"),
    wrt: trainable.map((l) => l.weight),
    feeds: { [input]: first.x, ...(await targets(first.x, first.labels)) },
    batchNorm: options.batchNorm ?? "eval",
    session: options.session,
  });
  const gs = await GradientSession.create(tg, options.session);
  const params = tg.initialParams();
  const codebooks = new Map(trainable.map((l) => [l.weight, l.codebook.slice()]));
  const opt: Optimizer = options.optimizer === "sgd"
    ? sgd({ lr: options.lr ?? 0.01, momentum: 0.9 })
    : adam({ lr: options.lr ?? 1e-3 });
  const losses = new Float64Array(steps);
  let batch = first;
  try {
    for (let s = 0; s < steps; s++) {
      if (s > 0) batch = it.next().value!;
      const r = await gs.run({ [input]: batch.x, ...(await targets(batch.x, batch.labels)) }, params);
      const cg = new Map<string, Float32Array>();
      for (const l of trainable) {
        cg.set(
          l.weight,
          l.centroidGradient(r.grads.get(l.weight)!, options.reduce ?? (l.method === "pq" ? "mean" : "sum")),
        );
      }
      opt.step(codebooks, cg);
      for (const l of trainable) params.set(l.weight, l.reconstruct(codebooks.get(l.weight)!));
      losses[s] = r.loss;
      if (!Number.isFinite(r.loss)) throw new QuantlabError("NON_FINITE", `codebook fine-tuning diverged at step ${s}`);
      options.onStep?.(s + 1, r.loss);
    }
  } finally {
    await gs.release();
  }
  const out = layers.map((l) => codebooks.has(l.weight) ? l.withCodebook(codebooks.get(l.weight)!) : l);
  return { layers: out, losses };
}

/**
 * Re-estimate every BatchNormalization's running mean and variance on `inputs` (population statistics over all
 * the images; variance unbiased as PyTorch stores it). Returns a new model.
 *
 * @example
 * ```ts ignore
 * const fixed = await reestimateBatchNorm(quantized, xs);
 * ```
 */
export async function reestimateBatchNorm(
  model: OnnxModel,
  inputs: readonly Tensor<"float32">[],
  session: SessionOptions = {},
): Promise<OnnxModel> {
  const bns = model.graph.node.filter((n) => n.opType === "BatchNormalization");
  if (bns.length === 0 || inputs.length === 0) return model;
  const names = [...new Set(bns.map((n) => n.input[0]))];
  const values = await captureValues(model, names, inputs, session);
  const stats = new Map<string, { mean: Float32Array; var: Float32Array }>();
  names.forEach((name, i) => {
    const ts = values[i];
    const C = ts[0].shape[1];
    const sum = new Float64Array(C), sq = new Float64Array(C);
    let count = 0;
    for (const t of ts) {
      const [N] = t.shape, inner = t.size / (N * C), d = t.data;
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          const o = (n * C + c) * inner;
          let s = 0, q = 0;
          for (let k = 0; k < inner; k++) {
            const v = d[o + k];
            s += v;
            q += v * v;
          }
          sum[c] += s;
          sq[c] += q;
        }
      }
      count += N * inner;
    }
    const mean = new Float32Array(C), vr = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      const m = sum[c] / count;
      mean[c] = m;
      vr[c] = Math.max(0, (sq[c] / count - m * m) * count / Math.max(count - 1, 1));
    }
    stats.set(name, { mean, var: vr });
  });
  const m = model.clone();
  const init = new Map(m.graph.initializer.map((t, i) => [t.name, i]));
  for (const n of m.graph.node) {
    if (n.opType !== "BatchNormalization") continue;
    const s = stats.get(n.input[0])!;
    for (const [slot, v] of [[3, s.mean], [4, s.var]] as const) {
      const i = init.get(n.input[slot]);
      if (i === undefined) {
        throw new QuantlabError("UNSUPPORTED", `${n.name}: BatchNorm statistics must be initializers to re-estimate`);
      }
      const t = m.graph.initializer[i];
      if (!(tensorValues(t) instanceof Float32Array)) continue;
      m.graph.initializer[i] = makeTensorProto(t.name, v, t.dims);
    }
  }
  return m;
}
