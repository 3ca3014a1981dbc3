/**
 * Model-level vector quantization, fluent and immutable:
 *
 * ```ts ignore
 * // Deep Compression: k-means weight sharing per layer (linear init, k = 2^bits), centroid fine-tuning
 * const dc = await vqModel(model).kmeans({ bits: 4 }).data(train).finetune({ steps: 200 }).quantize();
 * // "And the Bit Goes Down": PQ of blocks, activation-aware EM layer by layer with per-layer fine-tuning,
 * // global codebook fine-tuning, BatchNorm re-estimated
 * const pq = await vqModel(model).pq({ centroids: 256 }).data(train).layerwise({ steps: 50 })
 *   .finetune({ steps: 200 }).batchNorm({ images: 512 }).quantize();
 * await pq.save("resnet8_pq.onnx"); // Gather(codebook, codes), written atomically
 * ```
 *
 * Order of work in `quantize()`: for each quantized weight in graph order: (PQ with data) capture its inputs on
 * the model as quantized so far and build the block Gram matrix, fit, then (`layerwise`) fine-tune that layer's
 * codebook with the earlier ones fixed; then (`batchNorm`) re-estimate BatchNorm statistics; then (`finetune`)
 * fine-tune all codebooks together with those statistics. Fine-tuning distils from the float model (KL with
 * temperature 1, as kill-the-bits) unless `loss: "labels"`; BatchNorm runs from running statistics while tuning
 * unless `batchNorm({ at: "end" })` asks for kill-the-bits' order (see {@link VqModelBuilder.batchNorm}).
 *
 * @module
 */
import { batches, type ImageDataset } from "../data/batching.ts";
import { QuantlabError } from "../errors.ts";
import { applyParams } from "../grad/compiler.ts";
import { writeModelAtomic } from "../onnx/io.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { checkSeed } from "../tensor/prng.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { blockGram, captureValues, layerInputName } from "./activations.ts";
import { exportCompressed, type ExportedLayer, type ExportOptions } from "./export.ts";
import {
  allocateCentroids,
  defaultBlockSize,
  fitKMeansLayer,
  fitPqLayer,
  initializerValues,
  pqCentroids,
  weightSites,
} from "./fit.ts";
import { finetuneCodebooks, reconstructedModel, reestimateBatchNorm } from "./finetune.ts";
import type { VqLayer, WeightSite } from "./layer.ts";

/** Options of {@link VqModelBuilder.kmeans}. */
export interface KMeansModelOptions {
  /** Code bits: `2^bits` centroids per layer (1..8). */
  readonly bits: number;
  /** Lloyd iterations (default 30). */
  readonly iterations?: number;
  /** Codebook precision: 32 (default) or 16 bits a value (float16, counted and exported as such). */
  readonly codebookBits?: 16 | 32;
}

/** Options of {@link VqModelBuilder.pq}. */
export interface PqModelOptions {
  /** Centroids per layer before kill-the-bits' small-layer rule (default 256). */
  readonly centroids?: number;
  /**
   * A model-wide budget instead of kill-the-bits' per-layer rule: bits per quantized weight (codes plus float32
   * codebooks over all quantized layers), shared out by {@link allocateCentroids} (each layer's k at most the
   * per-layer rule's, `centroids` capped by blocks / 4).
   */
  readonly targetBits?: number;
  /** Large blocks: 18 for 3x3 convs and 8 for 1x1 (default false: 9 and 4; fully connected always 4). */
  readonly largeBlocks?: boolean;
  /** Explicit block size per weight name (overrides the defaults). */
  readonly blockSizes?: Readonly<Record<string, number>>;
  /** EM iterations (default 30). */
  readonly iterations?: number;
  /** Input patches sampled per layer for the activation-aware objective (default 4096; 0: plain k-means). */
  readonly samples?: number;
  /** Codebook precision: 32 (default) or 16 bits a value (float16, as kill-the-bits stores its centroids). */
  readonly codebookBits?: 16 | 32;
}

/** Options of {@link VqModelBuilder.finetune} and {@link VqModelBuilder.layerwise}. */
export interface FinetuneStageOptions {
  /** Optimizer steps. */
  readonly steps: number;
  /** Learning rate (default: Adam 1e-3 global, 1e-3 layerwise). */
  readonly lr?: number;
  /** `"adam"` (default) or `"sgd"` (momentum 0.9). */
  readonly optimizer?: "adam" | "sgd";
  /** `"distill"` (default) or `"labels"`. */
  readonly loss?: "distill" | "labels";
}

/** Everything a {@link VqModelBuilder} holds. */
export interface VqModelConfig {
  /** The float model (never modified). */
  readonly model: OnnxModel;
  /** Method. */
  readonly method?: { readonly kind: "kmeans"; readonly options: KMeansModelOptions } | {
    readonly kind: "pq";
    readonly options: PqModelOptions;
  };
  /** Training / calibration images. */
  readonly data?: ImageDataset;
  /** Images per batch (default 32). */
  readonly batchSize: number;
  /** Batches of layer inputs captured for the activation-aware objective (default 4). */
  readonly activationBatches: number;
  /** Per-layer fine-tuning. */
  readonly layerwise?: FinetuneStageOptions;
  /** Global fine-tuning. */
  readonly finetune?: FinetuneStageOptions;
  /** BatchNorm re-estimation on this many images. */
  readonly batchNormImages?: number;
  /** When BatchNorm statistics are re-estimated (see {@link VqModelBuilder.batchNorm}). */
  readonly batchNormAt?: "before-finetune" | "end";
  /** Weights left in float. */
  readonly exclude: readonly string[];
  /** Leave the first quantizable layer in float (default: PQ yes, as kill-the-bits; k-means no). */
  readonly skipFirst?: boolean;
  /** Seed. */
  readonly seed: number;
  /** ORT options. */
  readonly session: SessionOptions;
  /** Progress messages. */
  readonly onProgress?: (message: string) => void;
}

/** One row of {@link VqModel.summary}. */
export interface VqLayerSummary {
  /** Weight name. */
  readonly weight: string;
  /** Shape. */
  readonly shape: string;
  /** Method, or `"float"`. */
  readonly method: string;
  /** Block size. */
  readonly blockSize: number;
  /** Centroids. */
  readonly k: number;
  /** Bits per weight, codes plus codebook (32 for float). */
  readonly bitsPerWeight: number;
}

/**
 * A vector-quantized model: the layers (codes and codebooks), the in-memory model with reconstructed weights
 * (and re-estimated BatchNorm statistics), bit accounting and compressed export.
 *
 * @example
 * ```ts ignore
 * const q = await vqModel(model).kmeans({ bits: 2 }).quantize();
 * console.log(q.bitsPerWeight, q.compressionRatio);
 * await q.save("model_kmeans2.onnx");
 * ```
 */
export class VqModel {
  /** Use {@link VqModelBuilder.quantize}. */
  constructor(
    /** The float model. */
    readonly float: OnnxModel,
    /** The model with reconstructed weights (runs as any float model). */
    readonly model: OnnxModel,
    /** The quantized layers. */
    readonly layers: readonly VqLayer[],
    /** Every Conv/Gemm/MatMul weight (quantized or not). */
    readonly sites: readonly WeightSite[],
    /** Fine-tuning losses per stage. */
    readonly losses: Readonly<Record<string, Float64Array>>,
  ) {}

  /** Bits per quantized weight: codes (at `ceil(log2 k)`) plus codebooks, over the quantized weights. */
  get bitsPerWeight(): number {
    let bits = 0, n = 0;
    for (const l of this.layers) {
      bits += l.codeBits() + l.tableBits();
      n += l.size;
    }
    return n > 0 ? bits / n : 32;
  }

  /** Float32 bits of all Conv/Gemm/MatMul weights over their stored bits (codes and codebooks; float layers at 32). */
  get compressionRatio(): number {
    const q = new Map(this.layers.map((l) => [l.weight, l]));
    let float = 0, stored = 0;
    for (const s of this.sites) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      float += 32 * n;
      const l = q.get(s.weight);
      stored += l ? l.codeBits() + l.tableBits() : 32 * n;
    }
    return float / stored;
  }

  /** Per-weight summary rows. */
  summary(): VqLayerSummary[] {
    const q = new Map(this.layers.map((l) => [l.weight, l]));
    return this.sites.map((s) => {
      const l = q.get(s.weight);
      return {
        weight: s.weight,
        shape: s.shape.join("x"),
        method: l ? l.method : "float",
        blockSize: l ? l.blockSize : 1,
        k: l ? l.k : 0,
        bitsPerWeight: l ? l.bitsPerWeight() : 32,
      };
    });
  }

  /** The compressed ONNX model (every quantized weight as `Gather(codebook, codes)`; see export.ts). */
  exportCompressed(options: ExportOptions = {}): { model: OnnxModel; layers: ExportedLayer[] } {
    return exportCompressed(this.model, this.layers, options);
  }

  /** Write the compressed model atomically to `path`; refuses to overwrite the float model's file. */
  async save(path: string, options: ExportOptions = {}): Promise<Uint8Array> {
    const bytes = this.exportCompressed(options).model.encode();
    await writeModelAtomic(path, bytes, { sources: [this.float.origin] });
    return bytes;
  }

  /** One line. */
  toString(): string {
    return `VqModel(${this.layers.length} layers, ${this.bitsPerWeight.toFixed(3)} bits/weight, ` +
      `${this.compressionRatio.toFixed(1)}x)`;
  }
}

/** `float` with the BatchNorm running statistics of `stats` (same graph). */
function withBatchNormOf(float: OnnxModel, stats: OnnxModel): OnnxModel {
  const names = new Set<string>();
  for (const n of float.graph.node) if (n.opType === "BatchNormalization") names.add(n.input[3]).add(n.input[4]);
  return applyParams(float, new Map([...names].map((n) => [n, initializerValues(stats, n)])));
}

function checkCodebookBits(b: unknown): void {
  if (b !== undefined && b !== 16 && b !== 32) {
    throw new QuantlabError("INVALID_ARGUMENT", `codebookBits must be 16 or 32, got ${String(b)}`);
  }
}

function checkStage(o: FinetuneStageOptions, what: string): FinetuneStageOptions {
  if (!Number.isInteger(o?.steps) || o.steps < 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `${what} steps must be a non-negative integer, got ${o?.steps}`);
  }
  if (o.lr !== undefined && !(o.lr > 0)) throw new QuantlabError("INVALID_ARGUMENT", `${what} lr must be > 0`);
  return { ...o };
}

/**
 * The immutable recipe; see the module doc. Every method validates and returns a new builder.
 *
 * @example
 * ```ts
 * import { vqModel } from "./vq_model.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const q = await vqModel(model).kmeans({ bits: 2 }).quantize();
 * if (q.layers.length !== 4 || q.layers.some((l) => l.k !== 4)) throw new Error("bad");
 * ```
 */
export class VqModelBuilder {
  /** The configuration. */
  readonly config: VqModelConfig;

  /** Use {@link vqModel}. */
  constructor(config: VqModelConfig) {
    this.config = Object.freeze({ ...config });
  }

  #with(patch: Partial<VqModelConfig>): VqModelBuilder {
    return new VqModelBuilder({ ...this.config, ...patch });
  }

  /** Deep Compression weight sharing: scalar k-means per layer, `2^bits` centroids, linear initialisation. */
  kmeans(options: KMeansModelOptions): VqModelBuilder {
    if (!Number.isInteger(options?.bits) || options.bits < 1 || options.bits > 8) {
      throw new QuantlabError("BITS_OUT_OF_RANGE", `kmeans bits must be an integer from 1 to 8, got ${options?.bits}`);
    }
    checkCodebookBits(options.codebookBits);
    return this.#with({ method: { kind: "kmeans", options: { ...options } } });
  }

  /** kill-the-bits product quantization (see {@link PqModelOptions}). */
  pq(options: PqModelOptions = {}): VqModelBuilder {
    const k = options.centroids ?? 256;
    if (!Number.isInteger(k) || k < 2 || k > 65536) {
      throw new QuantlabError("INVALID_ARGUMENT", `pq centroids must be an integer from 2 to 65536, got ${k}`);
    }
    if (options.targetBits !== undefined && !(options.targetBits > 0)) {
      throw new QuantlabError("INVALID_ARGUMENT", `pq targetBits must be > 0, got ${options.targetBits}`);
    }
    checkCodebookBits(options.codebookBits);
    return this.#with({ method: { kind: "pq", options: { ...options } } });
  }

  /** Training / calibration images (activations, fine-tuning, BatchNorm) and the batch size (default 32). */
  data(ds: ImageDataset, options: { batchSize?: number; activationBatches?: number } = {}): VqModelBuilder {
    const bs = options.batchSize ?? this.config.batchSize;
    if (!Number.isInteger(bs) || bs < 2) {
      throw new QuantlabError("INVALID_ARGUMENT", `batchSize must be >= 2, got ${bs}`);
    }
    return this.#with({
      data: ds,
      batchSize: bs,
      activationBatches: options.activationBatches ?? this.config.activationBatches,
    });
  }

  /** Fine-tune each layer's codebook right after quantizing it (kill-the-bits' per-layer step). */
  layerwise(options: FinetuneStageOptions): VqModelBuilder {
    return this.#with({ layerwise: checkStage(options, "layerwise") });
  }

  /** Fine-tune all codebooks together at the end (codes frozen). */
  finetune(options: FinetuneStageOptions): VqModelBuilder {
    return this.#with({ finetune: checkStage(options, "finetune") });
  }

  /**
   * Re-estimate BatchNorm statistics on `images` training images. `at: "before-finetune"` (default): once the
   * layers are quantized, then the global fine-tune runs with those statistics fixed; `at: "end"`: kill-the-bits'
   * order, the global fine-tune runs BatchNorm from batch statistics and the statistics are re-estimated last. On
   * the digits CNN at ~1 bit (100 steps) the default reached 91 % and kill-the-bits' order 60 %: with small
   * batches the batch statistics are noisy.
   */
  batchNorm(options: { images: number; at?: "before-finetune" | "end" }): VqModelBuilder {
    if (!Number.isInteger(options?.images) || options.images < 2) {
      throw new QuantlabError("INVALID_ARGUMENT", `batchNorm images must be an integer >= 2, got ${options?.images}`);
    }
    const at = options.at ?? "before-finetune";
    if (at !== "before-finetune" && at !== "end") {
      throw new QuantlabError("INVALID_ARGUMENT", `batchNorm at must be "before-finetune" or "end", got ${String(at)}`);
    }
    return this.#with({ batchNormImages: options.images, batchNormAt: at });
  }

  /** Leave these weights (initializer names) in float. */
  exclude(...weights: string[]): VqModelBuilder {
    return this.#with({ exclude: [...this.config.exclude, ...weights] });
  }

  /** Leave the first quantizable layer in float (or quantize it). */
  skipFirst(skip = true): VqModelBuilder {
    return this.#with({ skipFirst: skip });
  }

  /** Seed of every random choice (default 0). */
  seed(seed: number): VqModelBuilder {
    checkSeed(seed, "vqModel seed");
    return this.#with({ seed });
  }

  /** ONNX Runtime options. */
  session(options: SessionOptions): VqModelBuilder {
    return this.#with({ session: { ...options } });
  }

  /** Progress messages (one per stage and layer). */
  onProgress(fn: (message: string) => void): VqModelBuilder {
    return this.#with({ onProgress: fn });
  }

  /** The weights that will be quantized, in graph order. */
  targets(): WeightSite[] {
    const c = this.config;
    const sites = weightSites(c.model);
    const skip = c.skipFirst ?? c.method?.kind === "pq";
    const excluded = new Set(c.exclude);
    for (const w of excluded) {
      if (!sites.some((s) => s.weight === w)) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `${c.model.source}: exclude("${w}"): no Conv/Gemm/MatMul weight of that name`,
        );
      }
    }
    return sites.filter((s, i) => !(skip && i === 0) && !excluded.has(s.weight));
  }

  #needData(what: string): ImageDataset {
    if (!this.config.data) {
      throw new QuantlabError("INVALID_ARGUMENT", `vqModel: ${what} needs training images: call .data(dataset) first`);
    }
    return this.config.data;
  }

  #inputs(count: number): Tensor<"float32">[] {
    const ds = this.#needData("activations / BatchNorm");
    const out: Tensor<"float32">[] = [];
    const n = Math.min(ds.count, count * this.config.batchSize);
    for (const b of batches(ds, { batchSize: this.config.batchSize, count: n, shuffleSeed: this.config.seed + 7 })) {
      out.push(b.x);
    }
    return out;
  }

  /** Quantize (see the module doc for the order of work). */
  async quantize(): Promise<VqModel> {
    const c = this.config;
    if (!c.method) throw new QuantlabError("INVALID_ARGUMENT", "vqModel: choose .kmeans({ bits }) or .pq() first");
    const float = c.model;
    const sites = this.targets();
    const log = c.onProgress ?? (() => {});
    const losses: Record<string, Float64Array> = {};
    const layers: VqLayer[] = [];
    const method = c.method;
    const pqSamples = method.kind === "pq" ? (method.options.samples ?? 4096) : 0;
    const acts = method.kind === "pq" && pqSamples > 0 && c.data ? this.#inputs(c.activationBatches) : [];
    const blockSize = (s: WeightSite) =>
      method.kind === "pq"
        ? method.options.blockSizes?.[s.weight] ??
          defaultBlockSize(s.shape, s.axis, method.options.largeBlocks ?? false)
        : 1;
    const budget = method.kind === "pq" && method.options.targetBits !== undefined
      ? allocateCentroids(
        sites.map((s) => {
          const size = s.shape.reduce((a, b) => a * b, 1), d = blockSize(s);
          // each layer's relative error counts the same (BatchNorm rescales what follows)
          return {
            size,
            blockSize: d,
            scale: 1 / size,
            maxK: pqCentroids(size / d, method.options.centroids ?? 256),
            codebookBits: method.options.codebookBits ?? 32,
          };
        }),
        method.options.targetBits,
      )
      : undefined;
    for (let i = 0; i < sites.length; i++) {
      const s = sites[i];
      const w = initializerValues(float, s.weight);
      let layer: VqLayer;
      if (method.kind === "kmeans") {
        layer = fitKMeansLayer(s, w, {
          k: 2 ** method.options.bits,
          iterations: method.options.iterations,
          seed: c.seed,
          codebookBits: method.options.codebookBits,
        });
      } else {
        const o = method.options;
        const d = blockSize(s);
        const k = budget ? budget[i] : pqCentroids(w.length / d, o.centroids ?? 256);
        let gram: Float64Array | undefined;
        if (acts.length > 0) {
          const current = reconstructedModel(float, layers);
          const name = layerInputName(float, s);
          const [xs] = await captureValues(current, [name], acts, c.session);
          gram = blockGram(float, s, xs, d, "flat", pqSamples, c.seed + i);
        }
        layer = fitPqLayer(s, w, {
          k,
          blockSize: d,
          iterations: o.iterations,
          seed: c.seed + i,
          gram,
          codebookBits: o.codebookBits,
        });
      }
      log(`quantized ${layer}`);
      layers.push(layer);
      if (c.layerwise && c.layerwise.steps > 0) {
        const r = await finetuneCodebooks(float, layers, {
          ...c.layerwise,
          data: this.#needData("layerwise"),
          batchSize: c.batchSize,
          only: [s.weight],
          seed: c.seed + i,
          session: c.session,
        });
        layers[i] = r.layers[i];
        losses[`layerwise ${s.weight}`] = r.losses;
        log(`layerwise fine-tuned ${s.weight}: loss ${r.losses[0]?.toFixed(4)} -> ${r.losses.at(-1)?.toFixed(4)}`);
      }
    }
    // the float model with (re-estimated) BatchNorm statistics: the base the codebooks are tuned in
    let base = float;
    const bnInputs = () => this.#inputs(Math.ceil(c.batchNormImages! / c.batchSize));
    const bnAtEnd = c.batchNormAt === "end";
    if (c.batchNormImages && !bnAtEnd) {
      const stats = await reestimateBatchNorm(reconstructedModel(float, layers), bnInputs(), c.session);
      base = withBatchNormOf(float, stats);
      log(`BatchNorm statistics re-estimated on ${Math.min(c.batchNormImages, c.data!.count)} images`);
    }
    let final = layers;
    if (c.finetune && c.finetune.steps > 0) {
      const r = await finetuneCodebooks(base, layers, {
        ...c.finetune,
        data: this.#needData("finetune"),
        batchSize: c.batchSize,
        teacher: float,
        // kill-the-bits' order: BatchNorm from batch statistics while tuning, re-estimated at the end
        batchNorm: c.batchNormImages && bnAtEnd ? "train" : "eval",
        seed: c.seed,
        session: c.session,
        onStep: (step, loss) => {
          if (step % 50 === 0) log(`finetune step ${step}: loss ${loss.toFixed(4)}`);
        },
      });
      final = r.layers;
      losses.finetune = r.losses;
    }
    let model = reconstructedModel(base, final);
    if (c.batchNormImages && bnAtEnd) {
      model = await reestimateBatchNorm(model, bnInputs(), c.session);
      log(`BatchNorm statistics re-estimated on ${Math.min(c.batchNormImages, c.data!.count)} images`);
    }
    return new VqModel(float, model, final, weightSites(float), losses);
  }

  /** One line. */
  toString(): string {
    const c = this.config;
    const parts = [c.method ? `${c.method.kind}(${JSON.stringify(c.method.options)})` : "no method"];
    if (c.layerwise) parts.push(`layerwise(${c.layerwise.steps})`);
    if (c.finetune) parts.push(`finetune(${c.finetune.steps})`);
    if (c.batchNormImages) parts.push(`batchNorm(${c.batchNormImages}, ${c.batchNormAt})`);
    return `vqModel(${c.model.source}).${parts.join(".")}`;
  }
}

/**
 * Start a model-level vector quantization recipe for `model` (see the module doc).
 *
 * @example
 * ```ts
 * import { vqModel } from "./vq_model.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const b = vqModel(model).pq({ centroids: 16 });
 * if (b.targets()[0].weight !== "conv2.weight") throw new Error("PQ skips the first layer");
 * ```
 */
export function vqModel(model: OnnxModel): VqModelBuilder {
  return new VqModelBuilder({ model, batchSize: 32, activationBatches: 4, exclude: [], seed: 0, session: {} });
}
