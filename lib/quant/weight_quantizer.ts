/**
 * The weight-quantizer contract: every tensor-level weight quantizer (uniform affine, non-uniform levels, binary,
 * ternary, k-means weight sharing, product quantization) is an immutable recipe that fits one weight tensor
 * (with the op's output-channel axis) through `fitWeights` and returns a fitted object that fake-quantizes, encodes,
 * decodes and accounts for its storage. The model-level core (lib/ptq) only ever talks to weights through this
 * contract, so any quantizer goes through `ptq()` and per-node overrides.
 *
 * Implementations (builder -> fitted weights, recipe function):
 * | kind | builder | fitted weights | from a recipe |
 * |---|---|---|---|
 * | `"uniform"` | `quantizer()` (lib/quant/quantizer.ts) | `UniformWeights` | `uniformFromRecipe` |
 * | `"nonuniform"` | `nonUniform()` (lib/nonuniform) | `NonUniformWeights` | `nonUniformFromRecipe` |
 * | `"binary"` | `binary()` (lib/extreme) | `BinaryWeights` | `binaryFromRecipe` |
 * | `"ternary"` | `ternary()` (lib/extreme) | `TernaryWeights` | `ternaryFromRecipe` |
 * | `"kmeans"` | `kmeans()` (lib/vq, scalar weight sharing) | `KMeansWeights` | `kmeansFromRecipe` |
 * | `"product"` | `productQuantizer()` (lib/vq, blocks) | `ProductWeights` | `productFromRecipe` |
 *
 * Vocabulary (the same in every builder):
 * - `fakeQuantize`: float32 values on the quantizer's grid/levels/codebook, same shape as the input;
 * - `quantize`: integer codes (as `torch.quantize_per_tensor` returns them), wherever a builder has it; no
 *   `quantize` returns floats;
 * - `encode`: the stored form (integer codes plus whatever the codes index: scales, levels, codebooks);
 * - `decode`: back from the stored form to float32 (`decode(encode(w))` equals `fakeQuantize(w)` bit for bit);
 * - `bitsPerWeight()`: a number, storage bits per weight (codes plus float32 tables); the detailed breakdown of the
 *   scalar families is `accounting()` (`BitAccounting`, lib/quant/accounting.ts);
 * - `centroids`: the codebook size of the vector quantizers (`kmeans().centroids(k)`,
 *   `productQuantizer().centroids(K)`); the scalar families are sized by `bits` (`2^bits` levels).
 *
 * Modelled on the calibrator contract in lib/calibrate/observer.ts: small and immutable.
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import type { QuantParams } from "./params.ts";
import { normalizeAxis } from "../tensor/layout.ts";
import { Tensor } from "../tensor/tensor.ts";

/** The families of weight quantizers quantlab ships. */
export type WeightQuantizerKind = "uniform" | "nonuniform" | "binary" | "ternary" | "kmeans" | "product";

/** Options of {@link WeightQuantizer.fitWeights}. */
export interface WeightFitOptions {
  /**
   * The op's output-channel axis of this weight (0 for Conv, 0 for Gemm with transB, 1 for MatMul). Per-channel
   * quantizers use it as their channel axis; per-tensor ones ignore it (but a bad axis is still an error); product
   * quantization cuts blocks along the other axes of each output channel (kill-the-bits layout). Default: the
   * quantizer's own axis (per-channel) or 0 (product quantization).
   */
  readonly axis?: number;
  /** Tensor name for error messages (default `"weights"`). */
  readonly name?: string;
}

/** A weight tensor in its stored form. */
export interface EncodedWeights {
  /** The quantizer family that encoded it. */
  readonly kind: WeightQuantizerKind;
  /** Shape of the weight tensor. */
  readonly shape: readonly number[];
  /** Integer codes (one per weight for scalar quantizers, one per block for product quantizers). */
  readonly codes: Tensor<"int8"> | Tensor<"uint8"> | Tensor<"int32">;
  /**
   * The tables the codes index, everything `decode` reads and nothing more (so `bitsPerWeight` counts exactly
   * these): `scale` (+ `zeroPoint` when asymmetric) for uniform; `scale` for binary (none for plain sign) and TWN;
   * `positiveScale`/`negativeScale` for TTQ; `alpha` (log2), `levels` (lloyd-max) or `bases` (binary-code) per slot
   * for non-uniform; `centroids` for k-means; `codebooks` (`[1, centroids, blockSize]`) for product quantization.
   */
  readonly tables: Readonly<Record<string, Float32Array | Int32Array>>;
}

/** A quantizer fitted to one weight tensor. */
export interface FittedWeights {
  /** The family. */
  readonly kind: WeightQuantizerKind;
  /** Shape of the tensor it was fitted on. */
  readonly shape: readonly number[];
  /**
   * Axis it was fitted with: the channel axis of per-channel quantizers, the block axis of per-group uniform ones,
   * the output-channel axis of product quantization; `undefined` for per-tensor quantizers.
   */
  readonly axis: number | undefined;
  /**
   * Uniform affine parameters when this quantizer is uniform affine (so the model can carry it as
   * QuantizeLinear/DequantizeLinear with integer codes); `undefined` for every other family, whose weights
   * materialize as fake-quantized float initializers. Per-group uniform weights hold their group parameters here
   * (granularity `"group"`; only opset 21 blocked QDQ stores them).
   */
  readonly affine: QuantParams | undefined;
  /** Fake-quantize a tensor of the fitted shape (default: the tensor it was fitted on). */
  fakeQuantize(w?: Tensor<"float32">): Tensor<"float32">;
  /** Encode a tensor of the fitted shape (default: the tensor it was fitted on). */
  encode(w?: Tensor<"float32">): EncodedWeights;
  /** Decode a stored form back to float32 (equal to `fakeQuantize` of what was encoded). */
  decode(encoded: EncodedWeights): Tensor<"float32">;
  /** Storage bits per weight, codes plus tables (float32 tables count 32 bits a number). */
  bitsPerWeight(): number;
  /** Readable recipe with the fitted sizes. */
  toString(): string;
}

/** A JSON-serialisable description of a weight-quantizer recipe (for plan round-trips). */
export interface WeightQuantizerRecipe {
  /** The family. */
  readonly kind: WeightQuantizerKind;
  /** The builder's configuration, JSON-safe (no functions, no typed arrays, `"Infinity"` for infinity). */
  readonly config: Readonly<Record<string, unknown>>;
}

/** An immutable weight-quantizer recipe. */
export interface WeightQuantizer {
  /** The family. */
  readonly kind: WeightQuantizerKind;
  /** Nominal bits per weight for plans and tables (e.g. 4 for int4, 1 for binary, log2(k)/d for PQ). */
  readonly nominalBits: number;
  /**
   * Fit to one weight tensor. (Named `fitWeights`, not `fit`, because the builders' `fit` also fits
   * activations from batches, or points, and returns the family's richer fitted object.)
   */
  fitWeights(w: Tensor<"float32">, options?: WeightFitOptions): FittedWeights;
  /** JSON-safe recipe; the family's `...FromRecipe` function (see the module doc) rebuilds an equal quantizer. */
  toRecipe(): WeightQuantizerRecipe;
  /** Readable recipe. */
  toString(): string;
}

/**
 * Whether a value implements {@link WeightQuantizer} (structural check used to give typed errors).
 *
 * @example
 * ```ts
 * import { isWeightQuantizer } from "./weight_quantizer.ts";
 * if (isWeightQuantizer({}) || isWeightQuantizer(null)) throw new Error("bad");
 * ```
 */
export function isWeightQuantizer(x: unknown): x is WeightQuantizer {
  if (typeof x !== "object" || x === null) return false;
  const q = x as Record<string, unknown>;
  return typeof q.kind === "string" && typeof q.fitWeights === "function" && typeof q.toRecipe === "function" &&
    typeof q.nominalBits === "number";
}

/**
 * Validate a weight given to `fitWeights`: a non-empty, finite float32 tensor (`INVALID_ARGUMENT`, `EMPTY_TENSOR`,
 * `NON_FINITE`, each naming the tensor), and the axis, if given, in range for its rank (`AXIS_OUT_OF_RANGE`).
 * Returns the tensor name and the normalised axis.
 *
 * @example
 * ```ts
 * import { checkWeights } from "./weight_quantizer.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const { name, axis } = checkWeights(Tensor.from([1, 2, 3, 4], [2, 2]), { axis: -1, name: "fc.weight" });
 * if (name !== "fc.weight" || axis !== 1) throw new Error("bad");
 * try {
 *   checkWeights(Tensor.from([1, NaN]), { name: "fc.weight" });
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("fc.weight")) throw e;
 * }
 * ```
 */
export function checkWeights(
  w: Tensor<"float32">,
  options: WeightFitOptions = {},
): { name: string; axis: number | undefined } {
  const name = options.name ?? "weights";
  if (!(w instanceof Tensor) || w.dtype !== "float32") {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${name}: fitWeights expects a float32 Tensor, got ${w instanceof Tensor ? w.dtype : typeof w}`,
    );
  }
  if (w.size === 0) {
    throw new QuantlabError("EMPTY_TENSOR", `${name}: weight of shape [${w.shape}] is empty`);
  }
  assertFinite(w.data, name);
  const axis = options.axis === undefined ? undefined : normalizeAxis(options.axis, w.rank, `${name}: weight axis`);
  return { name, axis };
}

/**
 * The shared half of every {@link FittedWeights}: remembers the fitted tensor, checks the tensors given to
 * `fakeQuantize`/`encode` (fitted shape, finite) and the stored forms given to `decode` (kind, shape, tables), so
 * a family only writes its three kernels and its bit count.
 *
 * @example
 * ```ts
 * import { FittedWeightsBase, type EncodedWeights } from "./weight_quantizer.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * // a toy "quantizer" that rounds to integers and stores int32 codes
 * class Rounder extends FittedWeightsBase {
 *   protected fake(t: Tensor<"float32">) {
 *     return new Tensor<"float32">(t.data.map(Math.round), t.shape);
 *   }
 *   protected codes(t: Tensor<"float32">) {
 *     return { codes: new Tensor<"int32">(Int32Array.from(t.data, Math.round), t.shape), tables: {} };
 *   }
 *   protected values(e: EncodedWeights) {
 *     return new Tensor<"float32">(Float32Array.from(e.codes.data), e.shape);
 *   }
 *   bitsPerWeight() {
 *     return 32;
 *   }
 *   toString() {
 *     return "rounder";
 *   }
 * }
 * const r = new Rounder("uniform", Tensor.from([0.4, 1.6]), undefined, "w");
 * if (r.decode(r.encode()).toArray().join() !== r.fakeQuantize().toArray().join()) throw new Error("bad");
 * ```
 */
export abstract class FittedWeightsBase implements FittedWeights {
  /** Shape of the fitted tensor. */
  readonly shape: readonly number[];
  /** Uniform affine parameters (`undefined` unless uniform). */
  readonly affine: QuantParams | undefined = undefined;

  /** Remember the fitted tensor (`fittedOn`) under `name`. */
  constructor(
    /** The family. */
    readonly kind: WeightQuantizerKind,
    /** The tensor fitted on (the default of `fakeQuantize` and `encode`). */
    readonly fittedOn: Tensor<"float32">,
    /** The axis fitted with. */
    readonly axis: number | undefined,
    /** The tensor name used in messages. */
    readonly name: string,
  ) {
    this.shape = fittedOn.shape;
  }

  /** Fake-quantize `t` (already checked). */
  protected abstract fake(t: Tensor<"float32">): Tensor<"float32">;
  /** Codes and tables of `t` (already checked). */
  protected abstract codes(t: Tensor<"float32">): Pick<EncodedWeights, "codes" | "tables">;
  /** Values of a stored form (kind and shape already checked). */
  protected abstract values(encoded: EncodedWeights): Tensor<"float32">;
  /** Storage bits per weight. */
  abstract bitsPerWeight(): number;
  /** Readable description. */
  abstract toString(): string;

  /** `w` (default: the fitted tensor) checked against the fitted shape and for finiteness. */
  protected input(w?: Tensor<"float32">): Tensor<"float32"> {
    if (w === undefined || w === this.fittedOn) return this.fittedOn;
    if (!(w instanceof Tensor) || w.dtype !== "float32") {
      throw new QuantlabError("INVALID_ARGUMENT", `${this.name}: expected a float32 Tensor`);
    }
    if (w.shape.length !== this.shape.length || w.shape.some((d, i) => d !== this.shape[i])) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${this.name}: tensor of shape [${w.shape}] given to a quantizer fitted on shape [${this.shape}]`,
      );
    }
    assertFinite(w.data, this.name);
    return w;
  }

  /** Fake-quantize a tensor of the fitted shape (default: the tensor it was fitted on). */
  fakeQuantize(w?: Tensor<"float32">): Tensor<"float32"> {
    return this.fake(this.input(w));
  }

  /** Encode a tensor of the fitted shape (default: the tensor it was fitted on). */
  encode(w?: Tensor<"float32">): EncodedWeights {
    const { codes, tables } = this.codes(this.input(w));
    return Object.freeze({ kind: this.kind, shape: this.shape, codes, tables: Object.freeze(tables) });
  }

  /** Decode a stored form of this quantizer. */
  decode(encoded: EncodedWeights): Tensor<"float32"> {
    if (!encoded || encoded.kind !== this.kind) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${this.name}: cannot decode ${encoded?.kind ?? String(encoded)} weights with a ${this.kind} quantizer`,
      );
    }
    const s = encoded.shape;
    if (s.length !== this.shape.length || s.some((d, i) => d !== this.shape[i])) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${this.name}: encoded weights of shape [${s}] given to a quantizer fitted on shape [${this.shape}]`,
      );
    }
    return this.values(encoded);
  }

  /** A table of a stored form, checked for its type, its length and (float32 tables) finiteness (`NON_FINITE`). */
  protected table<T extends Float32Array | Int32Array>(
    encoded: EncodedWeights,
    key: string,
    type: { new (n: number): T },
    length: number,
  ): T {
    const t = encoded.tables[key];
    if (!(t instanceof type) || t.length !== length) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${this.name}: encoded table "${key}" must be a ${type.name} of ${length} values, got ${
          t ? `${t.constructor.name}(${t.length})` : "none"
        }`,
      );
    }
    if (t instanceof Float32Array) assertFinite(t, `${this.name}: encoded table "${key}"`);
    return t;
  }

  /** Jupyter display: the description as plain text. */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}

/**
 * Check that `recipe` is a {@link WeightQuantizerRecipe} of `kind` and return its config (`INVALID_ARGUMENT`
 * otherwise). The families' `...FromRecipe` functions start here.
 *
 * @example
 * ```ts
 * import { recipeConfig } from "./weight_quantizer.ts";
 * const c = recipeConfig({ kind: "binary", config: { scale: "none" } }, "binary");
 * if (c.scale !== "none") throw new Error("bad");
 * ```
 */
export function recipeConfig(recipe: unknown, kind: WeightQuantizerKind): Readonly<Record<string, unknown>> {
  const r = recipe as Partial<WeightQuantizerRecipe> | null;
  if (typeof r !== "object" || r === null || r.kind !== kind || typeof r.config !== "object" || r.config === null) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `expected a ${kind} weight-quantizer recipe { kind: "${kind}", config: {...} }, got ${
        JSON.stringify(recipe)?.slice(0, 120)
      }`,
    );
  }
  return r.config;
}

/**
 * A number for a JSON recipe: `Infinity` becomes the string `"Infinity"` (JSON has no infinity); read it back with
 * {@link numberFromJson}.
 *
 * @example
 * ```ts
 * import { numberFromJson, numberToJson } from "./weight_quantizer.ts";
 * if (numberToJson(Infinity) !== "Infinity" || numberFromJson(JSON.parse(JSON.stringify(numberToJson(Infinity)))) !== Infinity) {
 *   throw new Error("bad");
 * }
 * ```
 */
export function numberToJson(x: number): number | "Infinity" {
  return x === Infinity ? "Infinity" : x;
}

/**
 * Read a number written by {@link numberToJson} (`INVALID_ARGUMENT` for anything else).
 *
 * @example
 * ```ts
 * import { numberFromJson } from "./weight_quantizer.ts";
 * if (numberFromJson(3, "seed") !== 3) throw new Error("bad");
 * ```
 */
export function numberFromJson(x: unknown, what = "value"): number {
  if (x === "Infinity") return Infinity;
  if (typeof x !== "number") throw new QuantlabError("INVALID_ARGUMENT", `recipe ${what} must be a number, got ${x}`);
  return x;
}
