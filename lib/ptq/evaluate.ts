/**
 * Evaluating models on ONNX Runtime: top-1/top-5 accuracy, latency per batch, output KL divergence between two
 * models, per-layer SQNR between float and quantized activations, and model size.
 *
 * Accumulation is float64 throughout.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { batches, type ImageDataset } from "../data/batching.ts";
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
 * Compare two models with the same input and output names over a dataset: output KL divergence, max abs
 * difference, and per-layer SQNR of the intermediate values named in `layers` (which must exist in both; a QDQ
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
    for (let i = 0; i < n; i++) {
      let mx = -Infinity, my = -Infinity;
      for (let j = 0; j < c; j++) {
        mx = Math.max(mx, x[i * c + j]);
        my = Math.max(my, y[i * c + j]);
        maxAbs = Math.max(maxAbs, Math.abs(x[i * c + j] - y[i * c + j]));
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
    images += n;
  }
  return {
    outputKl: kl / Math.max(1, images),
    maxAbsDiff: maxAbs,
    layerSqnr: layers.map((name, k) => ({
      name,
      sqnrDb: noise[k] === 0 ? Infinity : 10 * Math.log10(sig[k] / noise[k]),
    })),
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
