/**
 * Weight tensors for the beyond-uniform experiments (05-07): the Conv, Gemm
 * and MatMul weights of an ONNX model you pass in (bytes or an
 * {@link OnnxModel}), laid out output channel first, or, without a model,
 * deterministic synthetic weights that reports label as synthetic.
 *
 * Library code never reads files: notebooks load a model from the repository
 * and pass it in; `deno task reproduce` runs on the synthetic fallback.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { attrInt } from "../onnx/graph.ts";
import { OnnxModel } from "../onnx/model.ts";
import { toTensor } from "../onnx/tensor_data.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";

/** What the layer does with its weight. */
export type WeightKind = "conv" | "linear";

/** A named weight tensor, output channels on axis 0. */
export interface WeightTensor {
  /** Initializer name, or a synthetic name such as `"synthetic conv 1"`. */
  readonly name: string;
  /** The weight, `[out, in]` (linear) or `[Cout, Cin, kh, kw]` (conv), float32. */
  readonly tensor: Tensor<"float32">;
  /** Conv or linear. */
  readonly kind: WeightKind;
  /** Where it comes from, e.g. `"ResNet-8 (trained on Fashion-MNIST)"` or `"synthetic"`. */
  readonly source: string;
  /** True for generated weights. */
  readonly synthetic: boolean;
}

/** A model given to an experiment: ONNX bytes or a decoded model. */
export type ModelInput = Uint8Array | OnnxModel;

/**
 * The weights of every Conv, Gemm and MatMul node of `model` whose weight is a
 * float initializer of rank >= 2, in graph order, output channel first:
 * Gemm weights with `transB = 0` and MatMul weights (`[in, out]`) are
 * transposed to `[out, in]`. `source` labels them in reports.
 *
 * @example
 * ```ts
 * import { modelWeights } from "./weights.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 1 }, { value: 3 }] } } });
 * p.graph.initializer.push(makeTensorProto("w", new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2]));
 * p.graph.node.push({ opType: "MatMul", input: ["x", "w"], output: ["y"], name: "mm", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y" });
 * const [w] = modelWeights(OnnxModel.fromProto(p), "demo");
 * // MatMul weight [in = 3, out = 2] becomes [out = 2, in = 3]
 * if (w.tensor.shape.join() !== "2,3" || w.tensor.toArray().join() !== "1,3,5,2,4,6" || w.kind !== "linear") {
 *   throw new Error("bad");
 * }
 * ```
 */
export function modelWeights(model: ModelInput, source = "model"): WeightTensor[] {
  const m = model instanceof OnnxModel ? model : decode(model);
  const inits = new Map(m.graph.initializer.map((t) => [t.name, t]));
  const out: WeightTensor[] = [];
  const seen = new Set<string>();
  for (const n of m.graph.node) {
    const op = n.opType;
    const domain = n.domain ?? "";
    if ((op !== "Conv" && op !== "Gemm" && op !== "MatMul") || (domain !== "" && domain !== "ai.onnx")) continue;
    const name = n.input[1];
    const init = name === undefined ? undefined : inits.get(name);
    if (!init || seen.has(name) || init.dims.length < 2) continue;
    const t = toTensor(init);
    if (t.dtype !== "float32") continue;
    seen.add(name);
    let w = t as Tensor<"float32">;
    const transpose = op === "MatMul" || (op === "Gemm" && attrInt(n, "transB", 0) === 0);
    if (transpose) {
      if (w.rank !== 2) continue;
      w = transpose2d(w);
    }
    out.push({
      name,
      tensor: new Tensor(w.data, w.shape, name),
      kind: op === "Conv" ? "conv" : "linear",
      source,
      synthetic: false,
    });
  }
  return out;
}

/**
 * One weight of `model` by initializer name, or (without `name`) the largest.
 * Throws `INVALID_ARGUMENT` naming the available weights.
 *
 * @example
 * ```ts
 * import { pickWeight } from "./weights.ts";
 * try { pickWeight(new Uint8Array(0), "nope"); throw new Error("no throw"); } catch (e) {
 *   if (!(e as Error).message.includes("model")) throw e;
 * }
 * ```
 */
export function pickWeight(model: ModelInput, name?: string, source = "model"): WeightTensor {
  const all = modelWeights(model, source);
  if (all.length === 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `${source}: the model has no Conv/Gemm/MatMul weight initializer`);
  }
  if (name === undefined) return all.reduce((a, b) => b.tensor.size > a.tensor.size ? b : a);
  const w = all.find((x) => x.name === name);
  if (!w) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${source}: no weight "${name}"; it has ${all.map((x) => `${x.name} [${x.tensor.shape}]`).join(", ")}`,
    );
  }
  return w;
}

/** Options of {@link syntheticWeights}. */
export interface SyntheticWeightOptions {
  /** Seed (default 0). */
  readonly seed?: number;
  /** Bell shape of each channel: `"gaussian"` (default) or `"laplacian"` (heavier tails). */
  readonly distribution?: "gaussian" | "laplacian";
  /** Output-channel scales are `10^U(-spread/2, spread/2)` (decades; default 0.5). */
  readonly spread?: number;
  /** Standard deviation of the middle channel scale (default 0.1). */
  readonly std?: number;
  /** Name (default `"synthetic [shape]"`). */
  readonly name?: string;
}

/**
 * Deterministic synthetic weights of `shape` (output channels on axis 0): each
 * output channel is `s_c * z` with `z` standard Gaussian or unit-variance
 * Laplacian and `s_c = std * 10^U(-spread/2, spread/2)`, like trained layers
 * whose channels differ in range. Labelled `synthetic`.
 *
 * @example
 * ```ts
 * import { syntheticWeights } from "./weights.ts";
 * const w = syntheticWeights([8, 4, 3, 3], { seed: 1 });
 * if (!w.synthetic || w.kind !== "conv" || w.tensor.size !== 288) throw new Error("bad");
 * if (syntheticWeights([8, 4, 3, 3], { seed: 1 }).tensor.data[5] !== w.tensor.data[5]) throw new Error("not seeded");
 * ```
 */
export function syntheticWeights(shape: readonly number[], options: SyntheticWeightOptions = {}): WeightTensor {
  if (shape.length < 2 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `synthetic weight shape must be >= 2 positive integers, got [${shape}]`,
    );
  }
  const spread = options.spread ?? 0.5, std = options.std ?? 0.1;
  if (!(spread >= 0) || !(std > 0) || !Number.isFinite(spread) || !Number.isFinite(std)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `synthetic weights need spread >= 0 and std > 0, got ${spread}, ${std}`,
    );
  }
  const dist = options.distribution ?? "gaussian";
  if (dist !== "gaussian" && dist !== "laplacian") {
    throw new QuantlabError("INVALID_ARGUMENT", `distribution must be "gaussian" or "laplacian", got "${dist}"`);
  }
  const rng = new Prng(options.seed ?? 0);
  const rows = shape[0];
  const size = shape.reduce((a, b) => a * b, 1), per = size / rows;
  const data = new Float32Array(size);
  for (let o = 0, j = 0; o < rows; o++) {
    const s = std * 10 ** (spread * (rng.nextFloat() - 0.5));
    for (let i = 0; i < per; i++, j++) {
      data[j] = s * (dist === "gaussian" ? rng.nextNormal() : rng.nextLaplace(Math.SQRT1_2));
    }
  }
  const name = options.name ?? `synthetic [${shape}]`;
  return {
    name,
    tensor: new Tensor(data, shape, name),
    kind: shape.length === 2 ? "linear" : "conv",
    source: `synthetic (${dist}, channel scales ${std} x 10^U(±${spread / 2}), seed ${options.seed ?? 0})`,
    synthetic: true,
  };
}

/**
 * The weight view `[out, rest]`: each output channel's values in one row.
 *
 * @example
 * ```ts
 * import { syntheticWeights, asMatrixView } from "./weights.ts";
 * if (asMatrixView(syntheticWeights([4, 2, 3, 3]).tensor).shape.join() !== "4,18") throw new Error("bad");
 * ```
 */
export function asMatrixView(t: Tensor<"float32">): Tensor<"float32"> {
  return t.reshape([t.shape[0], t.size / t.shape[0]]);
}

/**
 * One line naming a weight and its origin for report prose.
 *
 * @example
 * ```ts
 * import { describeWeight, syntheticWeights } from "./weights.ts";
 * if (!describeWeight(syntheticWeights([2, 3])).startsWith("SYNTHETIC")) throw new Error("bad");
 * ```
 */
export function describeWeight(w: WeightTensor): string {
  const shape = `[${w.tensor.shape.join(", ")}] = ${w.tensor.size} weights`;
  return w.synthetic
    ? `SYNTHETIC ${w.kind} weight ${shape}, ${w.source} (no model was given)`
    : `${w.kind} weight "${w.name}" ${shape} of ${w.source} (real trained weights)`;
}

/** Bell-shape statistics of a weight: standard deviation, kurtosis (not excess) and max|w| / std. */
export interface WeightStats {
  /** Standard deviation (float64). */
  readonly std: number;
  /** Kurtosis `E[(w - mean)^4] / var^2` (3 for a Gaussian, 6 for a Laplacian). */
  readonly kurtosis: number;
  /** `max|w| / std`. */
  readonly peak: number;
}

/**
 * Standard deviation, kurtosis and peak-to-std of `x` (float64 accumulation).
 *
 * @example
 * ```ts
 * import { weightStats } from "./weights.ts";
 * const s = weightStats(new Float32Array([-1, 1, -1, 1]));
 * if (s.std !== 1 || s.kurtosis !== 1 || s.peak !== 1) throw new Error(JSON.stringify(s));
 * ```
 */
export function weightStats(x: Float32Array): WeightStats {
  const n = x.length;
  if (n === 0) throw new QuantlabError("EMPTY_TENSOR", "weightStats: no values");
  let mu = 0, mx = 0;
  for (let i = 0; i < n; i++) {
    mu += x[i];
    const a = x[i] < 0 ? -x[i] : x[i];
    if (a > mx) mx = a;
  }
  mu /= n;
  let m2 = 0, m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = (x[i] - mu) * (x[i] - mu);
    m2 += d;
    m4 += d * d;
  }
  m2 /= n;
  m4 /= n;
  const std = Math.sqrt(m2);
  return { std, kurtosis: m2 > 0 ? m4 / (m2 * m2) : 0, peak: std > 0 ? mx / std : 0 };
}

function decode(bytes: Uint8Array): OnnxModel {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new QuantlabError("INVALID_ARGUMENT", "model: expected ONNX bytes (a non-empty Uint8Array) or an OnnxModel");
  }
  return OnnxModel.decode(bytes, "model");
}

function transpose2d(w: Tensor<"float32">): Tensor<"float32"> {
  const [r, c] = w.shape;
  const src = w.data, out = new Float32Array(w.size);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j];
  return new Tensor(out, [c, r]);
}
