/**
 * Evaluating models on ONNX Runtime: top-1/top-5 accuracy of classifiers on an {@link ImageDataset} (inputs
 * preprocessed as the dataset declares), latency per batch, an output comparison of any two models with the same
 * inputs and outputs over an {@link InputReader} ({@link compareOutputs}: SQNR, cosine similarity, max abs error,
 * KL of 2-D logits, per graph output), per-layer SQNR between float and quantized activations, and model size.
 *
 * Accumulation is float64 throughout.
 *
 * @module
 */
import { sqnrFromPowers } from "../quant/metrics.ts";
import { QuantlabError } from "../errors.ts";
import { batches, type ImageDataset } from "../data/batching.ts";
import { asReader, type InputReader, type ReaderSource } from "../data/reader.ts";
import { exposeValues } from "../onnx/capture.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Accuracy and timing of one model on one dataset. */
export interface EvalResult {
  /** Top-1 accuracy in [0, 1]. */
  readonly top1: number;
  /** Top-5 accuracy in [0, 1]. */
  readonly top5: number;
  /** Images evaluated. */
  readonly count: number;
  /** Median ORT latency per batch, milliseconds. */
  readonly msPerBatch: number;
  /** Batch size used. */
  readonly batchSize: number;
  /** Binding used. */
  readonly backend: string;
}

/** Options for evaluation. */
export interface EvalOptions extends SessionOptions {
  /** Images per batch (default 64). */
  batchSize?: number;
  /** Evaluate only the first `limit` images. */
  limit?: number;
}

function singleInput(model: OnnxModel): string {
  const inputs = [...indexGraph(model.graph).inputs];
  if (inputs.length !== 1) {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${model.source}: evaluation feeds one input, the model has ${inputs.length}`,
    );
  }
  return inputs[0];
}

function checkImages(model: OnnxModel, ds: ImageDataset, input: string): void {
  const s = model.declaredShape(input);
  if (!s || s.length !== 4) return;
  const want = [ds.channels, ds.height, ds.width];
  for (let k = 0; k < 3; k++) {
    if (s[k + 1] > 0 && s[k + 1] !== want[k]) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${ds.name}: images are [${want}] but ${model.source} input "${input}" expects [${s.slice(1)}]`,
      );
    }
  }
}

/** Rank of the true label's logit (0 = top-1) for row `i` of `[n, classes]` logits. */
function labelRank(d: Float32Array, i: number, classes: number, label: number): number {
  const v = d[i * classes + label];
  let rank = 0;
  for (let c = 0; c < classes; c++) {
    const u = d[i * classes + c];
    if (u > v || (u === v && c < label)) rank++;
  }
  return rank;
}

/**
 * Classification accuracy and latency of a model on a dataset (first graph output = logits `[N, classes]`).
 *
 * @example
 * ```ts ignore
 * import { evaluateAccuracy } from "./evaluate.ts";
 * const r = await evaluateAccuracy(model, testSet, { batchSize: 256 });
 * console.log(r.top1);
 * ```
 */
export async function evaluateAccuracy(
  model: OnnxModel,
  ds: ImageDataset,
  options: EvalOptions = {},
): Promise<EvalResult> {
  const input = singleInput(model);
  checkImages(model, ds, input);
  const session = await createSession(model, options);
  const output = session.outputNames[0];
  const batchSize = options.batchSize ?? 64;
  let top1 = 0, top5 = 0, count = 0;
  const times: number[] = [];
  for (const b of batches(ds, { batchSize, count: Math.min(options.limit ?? ds.count, ds.count) })) {
    const t0 = performance.now();
    const y = (await session.run({ [input]: b.x }, [output]))[output] as Tensor<"float32">;
    times.push(performance.now() - t0);
    const classes = y.shape[1];
    for (let i = 0; i < b.labels.length; i++) {
      const r = labelRank(y.data, i, classes, b.labels[i]);
      if (r === 0) top1++;
      if (r < 5) top5++;
    }
    count += b.labels.length;
  }
  times.sort((a, b) => a - b);
  return {
    top1: top1 / count,
    top5: top5 / count,
    count,
    msPerBatch: times[times.length >> 1] ?? 0,
    batchSize,
    backend: session.backend,
  };
}

/** Comparison of a reference model and an approximation on the same inputs. */
export interface Comparison {
  /** Mean KL(softmax(ref) || softmax(approx)) over images, nats. */
  readonly outputKl: number;
  /** Largest |ref - approx| over all outputs. */
  readonly maxAbsDiff: number;
  /** SQNR in dB of each compared intermediate value (10 log10(signal power / noise power)). */
  readonly layerSqnr: { name: string; sqnrDb: number }[];
}

/**
 * Compare two single-input classifiers over a dataset: output KL divergence and max abs difference of the first
 * output (see {@link compareOutputs} for any model and every output), and per-layer SQNR of the intermediate values named in `layers` (which must exist in both; a QDQ
 * model keeps the float model's activation names on its DequantizeLinear outputs).
 *
 * @example
 * ```ts ignore
 * import { compareModels } from "./evaluate.ts";
 * const c = await compareModels(floatModel, qdqModel, calibSubset, { layers: ["/Relu_output_0"] });
 * ```
 */
export async function compareModels(
  reference: OnnxModel,
  approx: OnnxModel,
  ds: ImageDataset,
  options: EvalOptions & { layers?: readonly string[] } = {},
): Promise<Comparison> {
  const input = singleInput(reference);
  const out = reference.graph.output[0].name;
  const layers = (options.layers ?? []).filter((l) => l !== out);
  const ra = await createSession(exposeValues(reference, [out, ...layers], { replace: true }), options);
  const qa = await createSession(exposeValues(approx, [out, ...layers], { replace: true }), options);
  const sig = new Float64Array(layers.length), noise = new Float64Array(layers.length);
  let kl = 0, images = 0, maxAbs = 0;
  for (
    const b of batches(ds, { batchSize: options.batchSize ?? 64, count: Math.min(options.limit ?? ds.count, ds.count) })
  ) {
    const r = await ra.run({ [input]: b.x });
    const q = await qa.run({ [input]: b.x });
    layers.forEach((l, k) => {
      const x = r[l].data as Float32Array, y = q[l].data as Float32Array;
      let s = 0, e = 0;
      for (let i = 0; i < x.length; i++) {
        s += x[i] * x[i];
        const d = x[i] - y[i];
        e += d * d;
      }
      sig[k] += s;
      noise[k] += e;
    });
    const x = r[out].data as Float32Array, y = q[out].data as Float32Array;
    const [n, c] = r[out].shape;
    for (let i = 0; i < n * c; i++) maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i]));
    kl += softmaxKlSum(x, y, n, c);
    images += n;
  }
  return {
    outputKl: kl / Math.max(1, images),
    maxAbsDiff: maxAbs,
    layerSqnr: layers.map((name, k) => ({
      name,
      sqnrDb: sqnrFromPowers(sig[k], noise[k]),
    })),
  };
}

/** How one graph output of an approximation differs from the reference's, over all batches of a reader. */
export interface OutputDifference {
  /** Output name. */
  readonly name: string;
  /** Shape of the output in the first batch. */
  readonly shape: readonly number[];
  /** Values compared (over all batches). */
  readonly count: number;
  /** `10 log10(sum ref^2 / sum (ref - approx)^2)` in dB; `Infinity` when identical. */
  readonly sqnrDb: number;
  /** `sum ref*approx / sqrt(sum ref^2 * sum approx^2)` over all values (1 when both are all zeros). */
  readonly cosine: number;
  /** Largest `|ref - approx|`. */
  readonly maxAbsError: number;
  /** Mean over rows of KL(softmax(ref) || softmax(approx)) in nats, for 2-D float outputs `[N, classes]` only. */
  readonly meanKl?: number;
}

/** The result of {@link compareOutputs}. */
export interface OutputComparison {
  /** The reader's name. */
  readonly data: string;
  /** The reader's identity. */
  readonly identity: string;
  /** Batches run. */
  readonly batches: number;
  /** One entry per compared output, in the reference's graph order. */
  readonly outputs: readonly OutputDifference[];
}

/** Options of {@link compareOutputs}. */
export interface CompareOutputsOptions extends SessionOptions {
  /** Outputs to compare (default: every graph output of the reference). */
  readonly outputs?: readonly string[];
  /** Images per batch when the data is a dataset (default 64). */
  readonly batchSize?: number;
  /** Stop after this many batches (default: all). */
  readonly maxBatches?: number;
}

class Accumulator {
  signal = 0;
  noise = 0;
  dot = 0;
  approxPower = 0;
  maxAbs = 0;
  count = 0;
  kl = 0;
  rows = 0;
  klValid = true;
  shape: readonly number[] = [];

  add(name: string, r: Tensor, q: Tensor): void {
    if (r.shape.join() !== q.shape.join()) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `compareOutputs: output "${name}" is [${r.shape}] in the reference but [${q.shape}] in the approximation`,
      );
    }
    if (this.count === 0) this.shape = r.shape;
    const x = r.data, y = q.data;
    let s = 0, e = 0, d = 0, p = 0, m = this.maxAbs;
    for (let i = 0; i < x.length; i++) {
      const a = x[i], b = y[i], diff = a - b;
      s += a * a;
      e += diff * diff;
      d += a * b;
      p += b * b;
      const ad = Math.abs(diff);
      if (ad > m) m = ad;
    }
    this.signal += s;
    this.noise += e;
    this.dot += d;
    this.approxPower += p;
    this.maxAbs = m;
    this.count += x.length;
    if (r.rank === 2 && r.dtype === "float32" && q.dtype === "float32" && this.klValid) {
      const [n, c] = r.shape;
      this.kl += softmaxKlSum(x as Float32Array, y as Float32Array, n, c);
      this.rows += n;
    } else this.klValid = false;
  }

  result(name: string): OutputDifference {
    const sqnrDb = sqnrFromPowers(this.signal, this.noise);
    const norm = Math.sqrt(this.signal * this.approxPower);
    const cosine = norm === 0 ? (this.signal === 0 && this.approxPower === 0 ? 1 : 0) : this.dot / norm;
    return {
      name,
      shape: this.shape,
      count: this.count,
      sqnrDb,
      cosine,
      maxAbsError: this.maxAbs,
      ...(this.klValid && this.rows > 0 ? { meanKl: this.kl / this.rows } : {}),
    };
  }
}

/** Sum over rows of KL(softmax(x_i) || softmax(y_i)), float64 log-sum-exp, for `[n, c]` row-major logits. */
function softmaxKlSum(x: Float32Array, y: Float32Array, n: number, c: number): number {
  let kl = 0;
  for (let i = 0; i < n; i++) {
    let mx = -Infinity, my = -Infinity;
    for (let j = 0; j < c; j++) {
      mx = Math.max(mx, x[i * c + j]);
      my = Math.max(my, y[i * c + j]);
    }
    let zx = 0, zy = 0;
    for (let j = 0; j < c; j++) {
      zx += Math.exp(x[i * c + j] - mx);
      zy += Math.exp(y[i * c + j] - my);
    }
    const lx = Math.log(zx) + mx, ly = Math.log(zy) + my;
    for (let j = 0; j < c; j++) {
      const lp = x[i * c + j] - lx, lq = y[i * c + j] - ly;
      kl += Math.exp(lp) * (lp - lq);
    }
  }
  return kl;
}

/**
 * Run a reference model and an approximation (quantized, pruned, re-exported, ...) on every batch of the same
 * data and measure, per graph output: SQNR in dB, cosine similarity, max abs error, and for 2-D float outputs the
 * mean KL divergence of their softmax. Works for any model with named inputs and outputs, several of each
 * included; both models need the reference's inputs and the compared outputs. `data` is an {@link InputReader}
 * (or anything {@link asReader} accepts: a dataset for a single-input model, an array of feeds). Accumulation is
 * float64 over all values of all batches.
 *
 * @example A model against itself scaled by 1.01: SQNR = -20 log10(0.01) = 40 dB
 * ```ts
 * import { compareOutputs } from "./evaluate.ts";
 * import { readerFromFeeds } from "../data/reader.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const scaled = (k: number) => {
 *   const p = emptyModel(13);
 *   p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 3 }] } } });
 *   p.graph.initializer.push(makeTensorProto("k", new Float32Array([k]), []));
 *   p.graph.node.push({ input: ["x", "k"], output: ["y"], name: "mul", opType: "Mul", domain: "", attribute: [] });
 *   p.graph.output.push({ name: "y" });
 *   return OnnxModel.fromProto(p);
 * };
 * const data = readerFromFeeds([{ x: Tensor.from([1, -2, 3, 0.5, 4, -1], [2, 3]) }]);
 * const c = await compareOutputs(scaled(1), scaled(1.01), data, { backend: "web", threads: 1 });
 * if (Math.abs(c.outputs[0].sqnrDb - 40) > 1e-3 || c.outputs[0].cosine < 0.999999) throw new Error("bad");
 * ```
 */
export async function compareOutputs(
  reference: OnnxModel,
  approx: OnnxModel,
  data: InputReader | ReaderSource,
  options: CompareOutputsOptions = {},
): Promise<OutputComparison> {
  const reader = asReader(data, reference, { batchSize: options.batchSize });
  const approxInputs = [...indexGraph(approx.graph).inputs];
  const missingInputs = reader.inputs.filter((n) => !approxInputs.includes(n));
  if (missingInputs.length) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `compareOutputs: ${approx.source} lacks input(s) ${missingInputs.join(", ")} of ${reference.source}`,
    );
  }
  const outputs = options.outputs ?? reference.graph.output.map((o) => o.name);
  if (outputs.length === 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `compareOutputs: no outputs to compare`);
  }
  for (const [m, what] of [[reference, "reference"], [approx, "approximation"]] as const) {
    const have = new Set(m.graph.output.map((o) => o.name));
    const missing = outputs.filter((o) => !have.has(o));
    if (missing.length) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `compareOutputs: the ${what} ${m.source} has no graph output(s) ${missing.join(", ")} ` +
          `(its outputs: ${[...have].join(", ")})`,
      );
    }
  }
  const sessionOptions: SessionOptions = { backend: options.backend, threads: options.threads, cache: options.cache };
  const rs = await createSession(reference, sessionOptions);
  const qs = await createSession(approx, sessionOptions);
  const acc = outputs.map(() => new Accumulator());
  let n = 0;
  for await (const feeds of reader.batches()) {
    if (options.maxBatches !== undefined && n >= options.maxBatches) break;
    const r = await rs.run({ ...feeds }, outputs);
    const q = await qs.run({ ...feeds }, outputs);
    outputs.forEach((o, k) => acc[k].add(o, r[o], q[o]));
    n++;
  }
  if (n === 0) throw new QuantlabError("EMPTY_TENSOR", `compareOutputs: ${reader.name} yielded no batches`);
  return {
    data: reader.name,
    identity: reader.identity,
    batches: n,
    outputs: outputs.map((o, k) => acc[k].result(o)),
  };
}

/** Size of a model's initializers. */
export interface ModelSize {
  /** Bytes of all initializers' data. */
  readonly bytes: number;
  /** Serialized model bytes. */
  readonly fileBytes: number;
}

/**
 * Initializer bytes and serialized size of a model.
 *
 * @example
 * ```ts
 * import { modelSize } from "./evaluate.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(13);
 * p.graph.initializer.push(makeTensorProto("w", new Float32Array(10), [10]));
 * if (modelSize(new OnnxModel(p)).bytes !== 40) throw new Error("bad");
 * ```
 */
export function modelSize(model: OnnxModel): ModelSize {
  let bytes = 0;
  for (const t of model.graph.initializer) {
    bytes += t.rawData?.length ??
      (t.floatData?.length ?? 0) * 4 + (t.int32Data?.length ?? 0) * 4 + (t.int64Data?.length ?? 0) * 8;
  }
  return { bytes, fileBytes: model.encode().length };
}
