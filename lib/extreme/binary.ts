/**
 * Binary weights: BinaryConnect `sign`, XNOR-Net scaled sign, and stochastic
 * binarization, per tensor or per output channel, with a fluent immutable builder.
 *
 * - Deterministic: `b = sign(w)` with `sign(0) = +1` (BinaryConnect, Courbariaux
 *   et al. 2015); the value is `alpha b`.
 * - Scale `"none"`: `alpha = 1` (BinaryConnect); `"mean-abs"`: `alpha = mean|W|`
 *   over each slot, the least-squares optimal scale for fixed signs (XNOR-Net,
 *   Rastegari et al. 2016, per output channel).
 * - Stochastic: `b = +1` with probability `hard_sigmoid(w / alpha) =
 *   clip((w / alpha + 1) / 2, 0, 1)`, else -1 (BinaryConnect's stochastic mode for
 *   `alpha = 1`); unbiased, `E[alpha b] = w`, for `|w| <= alpha`. One uniform per
 *   element in flat order from a {@link Prng} seeded with `seed`.
 *
 * The straight-through gradients are in `ste.ts` ({@link binaryGradient},
 * {@link xnorGradient}).
 *
 * Vocabulary as every quantizer: the builder's `quantize` gives the int8 codes (signs), `fakeQuantize` the values
 * `alpha b`. The builder is a {@link WeightQuantizer} (kind `"binary"`): `fitWeights(w, { axis })` (per-channel
 * builders take the op's output-channel axis) returns {@link BinaryWeights}; {@link binaryFromRecipe} reads
 * `toRecipe()`'s JSON.
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import { forEachSegment } from "../quant/slots.ts";
import { checkSeed, Prng } from "../tensor/prng.ts";
import { type FloatInput, Tensor } from "../tensor/tensor.ts";
import { type BitAccounting, bitAccounting } from "../quant/accounting.ts";
import {
  checkWeights,
  type EncodedWeights,
  FittedWeightsBase,
  recipeConfig,
  type WeightFitOptions,
  type WeightQuantizer,
  type WeightQuantizerRecipe,
} from "../quant/weight_quantizer.ts";
import { checkSlotParams, type ExtremeGranularity, slotAbsSums, slotCount, slotInput } from "./slot_stats.ts";
import { binaryGradient, xnorGradient } from "./ste.ts";

/** Scale of binary weights. */
export type BinaryScale = "none" | "mean-abs";

/** Deterministic (sign / threshold) or stochastic rounding of binary and ternary weights. */
export type ExtremeRounding = "deterministic" | "stochastic";

/** Everything a {@link BinaryBuilder} holds. */
export interface BinaryConfig {
  /** `"none"` (alpha = 1) or `"mean-abs"` (alpha = mean|W| per slot). */
  readonly scale: BinaryScale;
  /** Per tensor or per channel. */
  readonly granularity: ExtremeGranularity;
  /** Sign or stochastic binarization. */
  readonly rounding: ExtremeRounding;
  /** Seed of stochastic binarization. */
  readonly seed: number;
}

const DEFAULTS: BinaryConfig = Object.freeze({
  scale: "none",
  granularity: Object.freeze({ kind: "tensor" }) as ExtremeGranularity,
  rounding: "deterministic",
  seed: 0,
});

/**
 * Binarize `x` with per-slot `scales`: signs (`int8` ±1) into `signs` and/or
 * values `alpha b` into `values`.
 *
 * @example
 * ```ts
 * import { binarizeInto } from "./binary.ts";
 * const v = new Float32Array(3);
 * binarizeInto(new Float32Array([0, -2, 3]), [3], { kind: "tensor" }, new Float32Array([0.5]), "deterministic", 0, undefined, v);
 * if (v.join() !== "0.5,-0.5,0.5") throw new Error(v.join());
 * ```
 */
export function binarizeInto(
  x: Float32Array,
  shape: readonly number[],
  g: ExtremeGranularity,
  scales: Float32Array,
  rounding: ExtremeRounding,
  seed: number,
  signs?: Int8Array,
  values?: Float32Array,
): void {
  const rng = rounding === "stochastic" ? new Prng(seed) : undefined;
  forEachSegment(shape, g, (start, end, slot) => {
    const a = scales[slot];
    const inv = a > 0 ? 1 / a : 0;
    for (let i = start; i < end; i++) {
      let s: number;
      if (rng) {
        // +1 with probability clip((x/a + 1)/2, 0, 1): u < p  <=>  2u - 1 < x/a
        s = 2 * rng.nextFloat() - 1 < x[i] * inv ? 1 : -1;
      } else s = x[i] >= 0 ? 1 : -1;
      if (signs) signs[i] = s;
      if (values) values[i] = s * a;
    }
  });
}

function describe(c: BinaryConfig): string {
  return `binary(${c.scale === "none" ? "sign" : "sign x mean|W|"}, ${
    c.granularity.kind === "tensor" ? "per-tensor" : `per-channel(axis ${c.granularity.axis})`
  }, ${c.rounding === "stochastic" ? `stochastic(seed ${c.seed})` : "deterministic"})`;
}

/** The result of one-shot binarization to values ({@link BinaryBuilder.fakeQuantize}). */
export interface BinaryFakeQuantResult {
  /** `alpha b` (float32). */
  readonly values: Tensor<"float32">;
  /** The fitted quantizer (holds the scales). */
  readonly fitted: FittedBinary;
}

/** The result of one-shot binarization to codes ({@link BinaryBuilder.quantize}). */
export interface BinaryQuantResult {
  /** `b` in {-1, +1} (int8). */
  readonly codes: Tensor<"int8">;
  /** The fitted quantizer (holds the scales). */
  readonly fitted: FittedBinary;
}

/**
 * An immutable binary-weight recipe.
 *
 * @example
 * ```ts
 * import { binary } from "./binary.ts";
 * // XNOR-Net: alpha per output channel = mean|W| of that channel
 * const { values, fitted } = binary().xnor().fakeQuantize([1, -3, 0, -0.5], [2, 2]);
 * if (fitted.scales.join() !== "2,0.25" || values.toArray().join() !== "2,-2,0.25,-0.25") throw new Error("bad");
 * ```
 */
export class BinaryBuilder implements WeightQuantizer {
  /** The weight-quantizer family. */
  readonly kind = "binary" as const;
  /** One bit per weight (a {@link WeightQuantizer}'s nominal bits). */
  readonly nominalBits = 1;
  /** The full configuration. */
  readonly config: BinaryConfig;

  /** Use {@link binary} to start a builder. */
  constructor(config: BinaryConfig = DEFAULTS) {
    this.config = Object.freeze({ ...config });
  }

  #with(patch: Partial<BinaryConfig>): BinaryBuilder {
    return new BinaryBuilder({ ...this.config, ...patch });
  }

  /** `"none"` (BinaryConnect, alpha = 1) or `"mean-abs"` (alpha = mean|W| per slot). */
  scale(mode: BinaryScale): BinaryBuilder {
    if (mode !== "none" && mode !== "mean-abs") {
      throw new QuantlabError("INVALID_ARGUMENT", `binary scale must be "none" or "mean-abs", got "${mode}"`);
    }
    return this.#with({ scale: mode });
  }

  /** BinaryConnect: `sign(w)`, no scale, per tensor. */
  binaryConnect(): BinaryBuilder {
    return this.#with({ scale: "none", granularity: { kind: "tensor" } });
  }

  /** XNOR-Net weights: `alpha sign(w)` with `alpha = mean|W|` per output channel (`axis`, default 0). */
  xnor(axis = 0): BinaryBuilder {
    return this.scale("mean-abs").perChannel(axis);
  }

  /** One scale for the whole tensor (default). */
  perTensor(): BinaryBuilder {
    return this.#with({ granularity: { kind: "tensor" } });
  }

  /** One scale per index along `axis` (default 0). */
  perChannel(axis = 0): BinaryBuilder {
    if (!Number.isInteger(axis)) {
      throw new QuantlabError("AXIS_OUT_OF_RANGE", `per-channel axis must be an integer, got ${axis}`);
    }
    return this.#with({ granularity: { kind: "channel", axis } });
  }

  /** `"deterministic"` sign (default) or `"stochastic"` hard-sigmoid binarization with `seed`. */
  rounding(mode: ExtremeRounding, options: { seed?: number } = {}): BinaryBuilder {
    if (mode !== "deterministic" && mode !== "stochastic") {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `binary rounding must be "deterministic" or "stochastic", got "${mode}"`,
      );
    }
    const seed = options.seed ?? this.config.seed;
    checkSeed(seed, "rounding seed");
    return this.#with({ rounding: mode, seed });
  }

  /** Fit the scales to `w`. */
  fit(w: FloatInput, shape?: readonly number[], name = "weights"): FittedBinary {
    // the finite check rides on the |w| sums (a NaN or infinity makes a sum non-finite)
    const s = slotInput(w, shape, this.config.granularity, name, this.config.scale === "none");
    const scales = new Float32Array(s.slots).fill(1);
    if (this.config.scale === "mean-abs") {
      const { count, absSum } = slotAbsSums(s.tensor.data, s.tensor.shape, s.granularity, s.slots);
      for (let i = 0; i < s.slots; i++) {
        if (!Number.isFinite(absSum[i])) assertFinite(s.tensor.data, name);
        scales[i] = absSum[i] / count[i];
      }
    }
    return new FittedBinary(this.config, s.granularity, scales, s.tensor.size);
  }

  /** Fit to `w` and binarize it to values `alpha b` (what a training step does with the current weights). */
  fakeQuantize(w: FloatInput, shape?: readonly number[], name = "weights"): BinaryFakeQuantResult {
    const fitted = this.fit(w, shape, name);
    return { values: fitted.fakeQuantize(w, shape, name), fitted };
  }

  /** Fit to `w` and binarize it to codes `b` (int8 signs). */
  quantize(w: FloatInput, shape?: readonly number[], name = "weights"): BinaryQuantResult {
    const fitted = this.fit(w, shape, name);
    return { codes: fitted.signs(w, shape, name), fitted };
  }

  /**
   * Fit to one weight tensor: per-channel builders use `options.axis` (the op's output-channel axis) when given,
   * per-tensor builders ignore it. Throws `NON_FINITE`, `EMPTY_TENSOR`, `AXIS_OUT_OF_RANGE` naming the tensor.
   */
  fitWeights(w: Tensor<"float32">, options: WeightFitOptions = {}): BinaryWeights {
    const { name, axis } = checkWeights(w, options);
    const b = this.config.granularity.kind === "channel" && axis !== undefined ? this.perChannel(axis) : this;
    return new BinaryWeights(b.fit(w, undefined, name), w, name);
  }

  /** The configuration as JSON. */
  toRecipe(): WeightQuantizerRecipe {
    const c = this.config;
    return {
      kind: "binary",
      config: { scale: c.scale, granularity: { ...c.granularity }, rounding: c.rounding, seed: c.seed },
    };
  }

  /** Readable one-line description. */
  toString(): string {
    return describe(this.config);
  }

  /** Jupyter display: the description as plain text. */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}

/**
 * Binary weights with fitted scales.
 *
 * @example
 * ```ts
 * import { binary } from "./binary.ts";
 * const fb = binary().scale("mean-abs").fit([0.5, -1.5]);
 * const signs = fb.signs([0.5, -1.5]);
 * if (fb.decode(signs).toArray().join() !== "1,-1" || fb.accounting().bitsPerWeight !== 17) throw new Error("bad");
 * ```
 */
export class FittedBinary {
  /** Create from fitted parts (normally via `BinaryBuilder.fit`). */
  constructor(
    /** The recipe. */
    readonly config: BinaryConfig,
    /** Resolved granularity. */
    readonly granularity: ExtremeGranularity,
    /** `alpha` per slot (all 1 for scale `"none"`). */
    readonly scales: Float32Array,
    /** Number of weights fitted on. */
    readonly fittedCount: number,
  ) {}

  #input(x: FloatInput, shape: readonly number[] | undefined, name: string, finite = true) {
    const s = slotInput(x, shape, this.granularity, name, finite);
    checkSlotParams(this.scales, s.slots, "binary scales", name);
    return s.tensor;
  }

  /** Signs `b` in {-1, +1} (int8). */
  signs(x: FloatInput, shape?: readonly number[], name = "weights"): Tensor<"int8"> {
    const t = this.#input(x, shape, name);
    const out = new Int8Array(t.size);
    binarizeInto(t.data, t.shape, this.granularity, this.scales, this.config.rounding, this.config.seed, out);
    return new Tensor(out, t.shape);
  }

  /** `alpha b` from signs. */
  decode(signs: Tensor<"int8">, name = "signs"): Tensor<"float32"> {
    const s = signs.data;
    checkSlotParams(this.scales, slotCount(signs.shape, this.granularity, name), "binary scales", name);
    const out = new Float32Array(s.length);
    forEachSegment(signs.shape, this.granularity, (start, end, slot) => {
      const a = this.scales[slot];
      for (let i = start; i < end; i++) out[i] = s[i] * a;
    });
    return new Tensor(out, signs.shape);
  }

  /** `alpha b` directly. */
  fakeQuantize(x: FloatInput, shape?: readonly number[], name = "weights"): Tensor<"float32"> {
    const t = this.#input(x, shape, name);
    const out = new Float32Array(t.size);
    binarizeInto(
      t.data,
      t.shape,
      this.granularity,
      this.scales,
      this.config.rounding,
      this.config.seed,
      undefined,
      out,
    );
    return new Tensor(out, t.shape);
  }

  /**
   * Straight-through gradient for this recipe: {@link xnorGradient} (scale
   * recomputed from `w`) for `"mean-abs"`, {@link binaryGradient} for `"none"`.
   */
  gradient(w: Tensor<"float32">, gradOut: Float32Array): Float32Array {
    if (this.config.scale === "none") return binaryGradient(w.data, gradOut);
    const g = this.granularity;
    return xnorGradient(w.data, gradOut, g.kind === "channel" ? { shape: w.shape, axis: g.axis } : undefined);
  }

  /** 1 bit per weight plus one float32 scale per slot (none for scale `"none"`). */
  accounting(weights = this.fittedCount): BitAccounting {
    return bitAccounting(weights, 1, this.config.scale === "none" ? 0 : this.scales.length);
  }

  /** Description with the first scales. */
  toString(): string {
    const s = Array.from(this.scales.slice(0, 4), (v) => v.toPrecision(4)).join(", ");
    return `${describe(this.config)} scales=[${s}${this.scales.length > 4 ? `, … (${this.scales.length})` : ""}]`;
  }

  /** Jupyter display: the description as plain text. */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}

/**
 * Binary weights fitted by {@link BinaryBuilder.fitWeights}: int8 codes in {-1, +1}; the stored table is `scale`
 * (float32, one per slot) for `"mean-abs"` and nothing for plain sign (`alpha = 1`).
 *
 * @example
 * ```ts
 * import { binary } from "./binary.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const w = Tensor.from([1, -3, 0, -0.5], [2, 2]);
 * const fw = binary().xnor().fitWeights(w, { axis: 1 });
 * if (fw.decode(fw.encode()).toArray().join() !== fw.fakeQuantize().toArray().join()) throw new Error("bad");
 * if (fw.axis !== 1 || fw.bitsPerWeight() !== 1 + (2 * 32) / 4) throw new Error("bad bits");
 * ```
 */
export class BinaryWeights extends FittedWeightsBase {
  /** Use {@link BinaryBuilder.fitWeights}. */
  constructor(
    /** The fitted scales. */
    readonly fitted: FittedBinary,
    fittedOn: Tensor<"float32">,
    name: string,
  ) {
    super("binary", fittedOn, fitted.granularity.kind === "channel" ? fitted.granularity.axis : undefined, name);
  }

  /** `alpha b`. */
  protected fake(t: Tensor<"float32">): Tensor<"float32"> {
    return this.fitted.fakeQuantize(t, undefined, this.name);
  }

  /** int8 signs and the scales (none for plain sign). */
  protected codes(t: Tensor<"float32">): Pick<EncodedWeights, "codes" | "tables"> {
    const f = this.fitted;
    return {
      codes: f.signs(t, undefined, this.name),
      tables: f.config.scale === "none" ? {} : { scale: f.scales.slice() },
    };
  }

  /** `b` times the stored scale. */
  protected values(e: EncodedWeights): Tensor<"float32"> {
    const f = this.fitted;
    if (e.codes.dtype !== "int8") {
      throw new QuantlabError("INVALID_ARGUMENT", `${this.name}: binary codes must be int8, got ${e.codes.dtype}`);
    }
    const scales = f.config.scale === "none" ? f.scales : this.table(e, "scale", Float32Array, f.scales.length);
    return new FittedBinary(f.config, f.granularity, scales, f.fittedCount).decode(
      e.codes as Tensor<"int8">,
      this.name,
    );
  }

  /** 1 bit per weight plus the float32 scales (see {@link FittedBinary.accounting}). */
  bitsPerWeight(): number {
    return this.fitted.accounting().bitsPerWeight;
  }

  /** The fitted recipe with the tensor name and shape. */
  toString(): string {
    return `${this.fitted.toString()} on ${this.name} [${this.shape}]`;
  }
}

/**
 * Rebuild a binary quantizer from {@link BinaryBuilder.toRecipe}'s JSON (validated as the builder methods do;
 * `INVALID_ARGUMENT` for a recipe of another kind).
 *
 * @example
 * ```ts
 * import { binary, binaryFromRecipe } from "./binary.ts";
 * const q = binary().xnor(1).rounding("stochastic", { seed: 3 });
 * if (binaryFromRecipe(JSON.parse(JSON.stringify(q.toRecipe()))).toString() !== q.toString()) throw new Error("bad");
 * ```
 */
export function binaryFromRecipe(recipe: WeightQuantizerRecipe): BinaryBuilder {
  const c = recipeConfig(recipe, "binary");
  let q = binary().scale((c.scale ?? DEFAULTS.scale) as BinaryScale);
  const g = (c.granularity ?? { kind: "tensor" }) as ExtremeGranularity;
  if (g.kind === "channel") q = q.perChannel(g.axis);
  else if (g.kind !== "tensor") {
    throw new QuantlabError("INVALID_ARGUMENT", `binary recipe: unknown granularity ${JSON.stringify(g)}`);
  }
  return q.rounding((c.rounding ?? DEFAULTS.rounding) as ExtremeRounding, { seed: (c.seed ?? 0) as number });
}

/**
 * Start a binary-weight recipe: BinaryConnect sign, no scale, per tensor, deterministic.
 *
 * @example
 * ```ts
 * import { binary } from "./binary.ts";
 * if (binary().fakeQuantize([0, -0.1, 2]).values.toArray().join() !== "1,-1,1") throw new Error("bad");
 * if (binary().quantize([0, -0.1, 2]).codes.toArray().join() !== "1,-1,1") throw new Error("bad codes");
 * ```
 */
export function binary(): BinaryBuilder {
  return new BinaryBuilder();
}
