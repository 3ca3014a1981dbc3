/**
 * The fluent, immutable non-uniform quantizer builder:
 * `nonUniform().levels("lloyd-max").bits(3).perChannel(0).fit(w)`.
 *
 * Three level families, each fitted to the data, per tensor or per channel:
 * - `"log2"`: power-of-two levels `{0, ±alpha 2^-k}` (`2^bits - 1` levels, bits 2..8),
 *   scale from `max|r|` or MSE-optimal (see `log2_levels.ts`);
 * - `"lloyd-max"`: the `2^bits` levels minimising `sum (Q(r) - r)^2` by exact Lloyd
 *   iterations (optimal 1-D k-means) from quantile, seeded random or given levels
 *   (see `lloyd_max.ts`);
 * - `"binary-code"`: `r ~ sum_i alpha_i b_i`, `b_i in {-1,+1}`, `bits` = number of
 *   bases, greedy then alternating least squares (see `binary_code.ts`).
 *
 * A fitted quantizer encodes values to `uint8` codes (indices into a per-slot
 * float32 codebook), decodes and fake-quantizes, with nearest or unbiased
 * stochastic rounding between neighbouring levels (see `codebook_kernels.ts`).
 *
 * The builder is a {@link WeightQuantizer} (kind `"nonuniform"`): `fitWeights(w, { axis })` (per-channel builders
 * take the given output-channel axis, per-tensor ones ignore it) returns {@link NonUniformWeights}, whose stored
 * tables are exactly what the levels follow from (log2: `alpha` per slot; lloyd-max: the levels; binary-code: the
 * bases) and whose `bitsPerWeight()` counts those; {@link nonUniformFromRecipe} reads `toRecipe()`'s JSON.
 *
 * @module
 */
import { type BitAccounting, bitAccounting } from "../quant/accounting.ts";
import { QuantlabError } from "../errors.ts";
import { resolveGranularity } from "../quant/params.ts";
import {
  checkWeights,
  type EncodedWeights,
  FittedWeightsBase,
  recipeConfig,
  type WeightFitOptions,
  type WeightQuantizer,
  type WeightQuantizerRecipe,
} from "../quant/weight_quantizer.ts";
import { checkSeed } from "../tensor/prng.ts";
import { asFloatTensor, type FloatInput, Tensor } from "../tensor/tensor.ts";
import { binaryCodeLevels, fitBinaryCode } from "./binary_code.ts";
import {
  decodeCodebook,
  type LevelRounding,
  quantizeToCodebook,
  type SearchTables,
  searchTables,
} from "./codebook_kernels.ts";
import { type LloydInit, lloydMax } from "./lloyd_max.ts";
import { fitLog2Scale, log2Levels, type Log2Scale } from "./log2_levels.ts";
import { gatherSlots, sortedSlot } from "./sorted_slot.ts";

/** The level families. */
export type LevelKind = "log2" | "lloyd-max" | "binary-code";

/** Granularities a non-uniform quantizer supports. */
export type NonUniformGranularity = { readonly kind: "tensor" } | { readonly kind: "channel"; readonly axis: number };

/** Everything a {@link NonUniformBuilder} holds. */
export interface NonUniformConfig {
  /** Level family. */
  readonly levels: LevelKind;
  /** Bits per value, 1..8 (log2: 2..8; binary-code: the number of bases). */
  readonly bits: number;
  /** Per tensor or per channel. */
  readonly granularity: NonUniformGranularity;
  /** Rounding to the grid. */
  readonly rounding: LevelRounding;
  /** Seed of stochastic rounding. */
  readonly seed: number;
  /** log2 only: how `alpha` is chosen. */
  readonly scale: Log2Scale;
  /** log2 only: force `alpha` to a power of two. */
  readonly powerOfTwoScale: boolean;
  /** lloyd-max only: initial levels. */
  readonly init: LloydInit | Float64Array;
  /** lloyd-max only: seed of random initialisation. */
  readonly initSeed: number;
  /** Iteration cap (lloyd-max default 1000, binary-code default 20); `undefined` = default. */
  readonly iterations: number | undefined;
  /** lloyd-max only: stop when the relative error decrease is at most this (default 0). */
  readonly tolerance: number;
}

const DEFAULTS: NonUniformConfig = Object.freeze({
  levels: "lloyd-max",
  bits: 4,
  granularity: Object.freeze({ kind: "tensor" }) as NonUniformGranularity,
  rounding: "nearest",
  seed: 0,
  scale: "mse",
  powerOfTwoScale: false,
  init: "quantile",
  initSeed: 0,
  iterations: undefined,
  tolerance: 0,
});

const KINDS: readonly LevelKind[] = ["log2", "lloyd-max", "binary-code"];

function checkNonUniformBits(bits: number, kind: LevelKind): void {
  const min = kind === "log2" ? 2 : 1;
  if (!Number.isInteger(bits) || bits < min || bits > 8) {
    throw new QuantlabError(
      "BITS_OUT_OF_RANGE",
      `${kind} bits must be an integer from ${min} to 8, got ${bits}${
        kind === "log2" && bits === 1 ? " (log2 levels need a sign, a zero and a magnitude)" : ""
      }`,
    );
  }
}

function describe(c: NonUniformConfig): string {
  const parts = [`${c.levels}`, `${c.bits} bit${c.bits === 1 ? "" : "s"}`];
  parts.push(c.granularity.kind === "tensor" ? "per-tensor" : `per-channel(axis ${c.granularity.axis})`);
  if (c.levels === "log2") parts.push(`scale=${c.scale}${c.powerOfTwoScale ? "(power of two)" : ""}`);
  if (c.levels === "lloyd-max") {
    parts.push(
      `init=${
        c.init instanceof Float64Array
          ? `given(${c.init.length})`
          : c.init === "random"
          ? `random(seed ${c.initSeed})`
          : c
            .init
      }`,
    );
  }
  if (c.iterations !== undefined) parts.push(`iterations=${c.iterations}`);
  if (c.tolerance > 0) parts.push(`tolerance=${c.tolerance}`);
  parts.push(`rounding=${c.rounding}${c.rounding === "stochastic" ? `(seed ${c.seed})` : ""}`);
  return `nonUniform(${parts.join(", ")})`;
}

/**
 * An immutable non-uniform quantizer recipe.
 *
 * @example
 * ```ts
 * import { nonUniform } from "./nonuniform_quantizer.ts";
 * const q = nonUniform().levels("log2").bits(3).scale("max");
 * const fq = q.fit([0.9, -0.3, 0.05, 0.5]);
 * // levels 0, ±0.9, ±0.45, ±0.225
 * const v = fq.fakeQuantize([0.5, -0.3, 0.01]).data;
 * if (Math.abs(v[0] - 0.45) > 1e-6 || Math.abs(v[1] + 0.225) > 1e-6 || v[2] !== 0) throw new Error(String(v));
 * ```
 */
export class NonUniformBuilder implements WeightQuantizer {
  /** The weight-quantizer family. */
  readonly kind = "nonuniform" as const;
  /** The full configuration. */
  readonly config: NonUniformConfig;

  /** Use {@link nonUniform} to start a builder. */
  constructor(config: NonUniformConfig = DEFAULTS) {
    this.config = Object.freeze({ ...config });
  }

  #with(patch: Partial<NonUniformConfig>): NonUniformBuilder {
    return new NonUniformBuilder({ ...this.config, ...patch });
  }

  /** The level family: `"log2"`, `"lloyd-max"` (default) or `"binary-code"`. */
  levels(kind: LevelKind): NonUniformBuilder {
    if (!KINDS.includes(kind)) {
      throw new QuantlabError("INVALID_ARGUMENT", `levels must be one of ${KINDS.join(", ")}, got "${kind}"`);
    }
    checkNonUniformBits(this.config.bits, kind);
    return this.#with({ levels: kind });
  }

  /** Bits per value, 1..8 (log2 needs 2..8; binary-code: number of bases). */
  bits(bits: number): NonUniformBuilder {
    checkNonUniformBits(bits, this.config.levels);
    return this.#with({ bits });
  }

  /** One codebook for the whole tensor (default). */
  perTensor(): NonUniformBuilder {
    return this.#with({ granularity: { kind: "tensor" } });
  }

  /** One codebook per index along `axis` (default 0, output channels). */
  perChannel(axis = 0): NonUniformBuilder {
    if (!Number.isInteger(axis)) {
      throw new QuantlabError("AXIS_OUT_OF_RANGE", `per-channel axis must be an integer, got ${axis}`);
    }
    return this.#with({ granularity: { kind: "channel", axis } });
  }

  /** `"nearest"` (default) or unbiased `"stochastic"` rounding between neighbouring levels, seeded. */
  rounding(mode: LevelRounding, options: { seed?: number } = {}): NonUniformBuilder {
    if (mode !== "nearest" && mode !== "stochastic") {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `non-uniform rounding must be "nearest" or "stochastic", got "${mode}"`,
      );
    }
    const seed = options.seed ?? this.config.seed;
    checkSeed(seed, "rounding seed");
    return this.#with({ rounding: mode, seed });
  }

  /** log2 scale: `"max"` (`alpha = max|r|`) or `"mse"` (default); `powerOfTwo` rounds `alpha` to `2^e`. */
  scale(mode: Log2Scale, options: { powerOfTwo?: boolean } = {}): NonUniformBuilder {
    if (mode !== "max" && mode !== "mse") {
      throw new QuantlabError("INVALID_ARGUMENT", `log2 scale must be "max" or "mse", got "${mode}"`);
    }
    return this.#with({ scale: mode, powerOfTwoScale: options.powerOfTwo ?? false });
  }

  /**
   * lloyd-max initial levels: `"quantile"` (default: means of equal-count chunks of
   * the sorted data), `"random"` (distinct data values drawn with `seed`), or
   * explicit levels (`2^bits` shared by all slots, or `slots * 2^bits` slot-major).
   */
  init(
    init: LloydInit | readonly number[] | Float32Array | Float64Array,
    options: { seed?: number } = {},
  ): NonUniformBuilder {
    const seed = options.seed ?? this.config.initSeed;
    checkSeed(seed, "init seed");
    if (init === "quantile" || init === "random") return this.#with({ init, initSeed: seed });
    if (typeof init === "string") {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `init must be "quantile", "random" or an array of levels, got "${init}"`,
      );
    }
    const lv = Float64Array.from(init);
    if (lv.length === 0) throw new QuantlabError("EMPTY_TENSOR", "init levels are empty");
    for (let i = 0; i < lv.length; i++) {
      if (!Number.isFinite(lv[i])) {
        throw new QuantlabError("NON_FINITE", `init levels hold a non-finite value (${lv[i]}) at index ${i}`);
      }
    }
    return this.#with({ init: lv });
  }

  /** Iteration cap for lloyd-max (default 1000) and binary-code (alternating rounds, default 20). */
  iterations(n: number): NonUniformBuilder {
    if (!Number.isInteger(n) || n < 0) {
      throw new QuantlabError("INVALID_ARGUMENT", `iterations must be a non-negative integer, got ${n}`);
    }
    return this.#with({ iterations: n });
  }

  /** lloyd-max: stop when the relative decrease of the squared error is at most `tol` (default 0). */
  tolerance(tol: number): NonUniformBuilder {
    if (!(tol >= 0) || !Number.isFinite(tol)) {
      throw new QuantlabError("INVALID_ARGUMENT", `tolerance must be a finite number >= 0, got ${tol}`);
    }
    return this.#with({ tolerance: tol });
  }

  /** Fit the levels to `data` (float64 accumulation; float32 codebook). */
  fit(data: FloatInput, shape?: readonly number[], name = "tensor"): FittedNonUniform {
    const c = this.config;
    const t = shaped(data, shape, name);
    const r = resolveGranularity(c.granularity, t.shape, name);
    const g = r.granularity as NonUniformGranularity;
    const slotsData = gatherSlots(t.data, t.shape, g, r.slots, name);
    const slots = r.slots;
    const k = c.levels === "log2" ? 2 ** c.bits - 1 : 2 ** c.bits;
    const codebook = new Float32Array(slots * k);
    const history: Float64Array[] = [];
    const iterations = new Int32Array(slots);
    let params: Float32Array;
    if (c.levels === "log2") {
      params = new Float32Array(slots);
      for (let s = 0; s < slots; s++) {
        const slot = sortedSlot(slotsData[s]);
        const alpha = Math.fround(fitLog2Scale(slot, c.bits, c.scale, c.powerOfTwoScale));
        params[s] = alpha;
        codebook.set(log2Levels(alpha, c.bits), s * k);
      }
    } else if (c.levels === "lloyd-max") {
      params = codebook;
      const init = c.init;
      if (init instanceof Float64Array && init.length !== k && init.length !== slots * k) {
        throw new QuantlabError(
          "SHAPE_MISMATCH",
          `${name}: init levels hold ${init.length} values; expected ${k} (2^${c.bits}) or ${
            slots * k
          } (${slots} slots)`,
        );
      }
      for (let s = 0; s < slots; s++) {
        const slot = sortedSlot(slotsData[s]);
        const slotInit = init instanceof Float64Array
          ? (init.length === k ? init : init.subarray(s * k, (s + 1) * k))
          : init;
        const res = lloydMax(slot, k, {
          init: slotInit,
          seed: c.initSeed + s,
          maxIterations: c.iterations ?? 1000,
          tolerance: c.tolerance,
        });
        codebook.set(res.levels, s * k);
        history.push(res.history);
        iterations[s] = res.iterations;
      }
    } else {
      params = new Float32Array(slots * c.bits);
      for (let s = 0; s < slots; s++) {
        const slot = sortedSlot(slotsData[s]);
        const res = fitBinaryCode(slot, c.bits, c.iterations ?? 20);
        const alphas = Float32Array.from(res.alphas);
        params.set(alphas, s * c.bits);
        codebook.set(binaryCodeLevels(alphas), s * k);
        history.push(res.history);
        iterations[s] = res.iterations;
      }
    }
    return new FittedNonUniform(c, g, slots, k, codebook, params, history, iterations, t.size);
  }

  /** Bits per code (a {@link WeightQuantizer}'s nominal bits per weight). */
  get nominalBits(): number {
    return this.config.bits;
  }

  /**
   * Fit to one weight tensor: per-channel builders use `options.axis` (the op's output-channel axis) when given,
   * per-tensor builders ignore it. Throws `NON_FINITE`, `EMPTY_TENSOR`, `AXIS_OUT_OF_RANGE` naming the tensor.
   */
  fitWeights(w: Tensor<"float32">, options: WeightFitOptions = {}): NonUniformWeights {
    const { name, axis } = checkWeights(w, options);
    const b = this.config.granularity.kind === "channel" && axis !== undefined ? this.perChannel(axis) : this;
    return new NonUniformWeights(b.fit(w, undefined, name), w, name);
  }

  /** The configuration as JSON (given init levels as a number array; `iterations` omitted when default). */
  toRecipe(): WeightQuantizerRecipe {
    const c = this.config;
    const config: Record<string, unknown> = {
      levels: c.levels,
      bits: c.bits,
      granularity: { ...c.granularity },
      rounding: c.rounding,
      seed: c.seed,
      scale: c.scale,
      powerOfTwoScale: c.powerOfTwoScale,
      init: c.init instanceof Float64Array ? Array.from(c.init) : c.init,
      initSeed: c.initSeed,
      tolerance: c.tolerance,
    };
    if (c.iterations !== undefined) config.iterations = c.iterations;
    return { kind: "nonuniform", config };
  }

  /** Fit to `x` and fake-quantize it in one call. */
  fakeQuantize(
    x: FloatInput,
    shape?: readonly number[],
    name = "tensor",
  ): { values: Tensor<"float32">; fitted: FittedNonUniform } {
    const t = shaped(x, shape, name);
    const fitted = this.fit(t, undefined, name);
    return { values: fitted.fakeQuantize(t, undefined, name), fitted };
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
 * A non-uniform quantizer with fitted per-slot codebooks.
 *
 * @example
 * ```ts
 * import { nonUniform } from "./nonuniform_quantizer.ts";
 * const w = [0.1, -0.2, 0.3, 1, -2, 4];
 * const fq = nonUniform().levels("lloyd-max").bits(1).perChannel(0).fit(w, [2, 3]);
 * const codes = fq.encode(w, [2, 3]);
 * const back = fq.decode(codes);
 * // channel 0: levels -0.2 and 0.2; channel 1: -2 and 2.5
 * if (back.data[0] !== Math.fround(0.2) || back.data[4] !== -2 || back.data[5] !== 2.5) throw new Error(String(back.data));
 * ```
 */
export class FittedNonUniform {
  #tables: SearchTables | undefined;

  /** Create from fitted parts (normally via `NonUniformBuilder.fit`). */
  constructor(
    /** The recipe. */
    readonly config: NonUniformConfig,
    /** The resolved granularity (axis normalised). */
    readonly granularity: NonUniformGranularity,
    /** Number of codebooks (1 per tensor, or the channel count). */
    readonly slots: number,
    /** Levels per codebook (`2^bits`, or `2^bits - 1` for log2). */
    readonly k: number,
    /** Float32 levels, `slots x k`, slot-major: `codebook[slot * k + code]` (ascending per slot except binary-code, which is indexed by code bits). */
    readonly codebook: Float32Array,
    /** Fitted parameters: log2 `alpha` per slot; binary-code bases `slots x bits`; lloyd-max: the codebook. */
    readonly params: Float32Array,
    /** lloyd-max and binary-code: squared error per iteration, per slot (non-increasing). */
    readonly history: readonly Float64Array[],
    /** Iterations run per slot (0 for log2). */
    readonly iterations: Int32Array,
    /** Number of values the levels were fitted on. */
    readonly fittedCount: number,
  ) {}

  get #search(): SearchTables {
    return this.#tables ??= searchTables(this.codebook, this.slots, this.k);
  }

  #check(x: FloatInput, shape: readonly number[] | undefined, name: string): Tensor<"float32"> {
    const t = shaped(x, shape, name);
    if (t.size === 0) {
      throw new QuantlabError(
        "EMPTY_TENSOR",
        `${name}: tensor of shape [${t.shape}] is empty; expected at least one element`,
      );
    }
    const { slots } = resolveGranularity(this.granularity, t.shape, name);
    if (slots !== this.slots) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${name}: tensor of shape [${t.shape}] has ${slots} channel(s) but the quantizer was fitted with ${this.slots}`,
      );
    }
    return t;
  }

  /** Codes (indices into each slot's codebook), same shape as `x`. Non-finite inputs give undefined codes: check first. */
  encode(x: FloatInput, shape?: readonly number[], name = "tensor"): Tensor<"uint8"> {
    const t = this.#check(x, shape, name);
    const codes = new Uint8Array(t.size);
    quantizeToCodebook(t.data, t.shape, this.granularity, this.#search, this.config.rounding, this.config.seed, codes);
    return new Tensor(codes, t.shape);
  }

  /** Levels of `codes`; throws `INVALID_ARGUMENT` for a code `>= k`. */
  decode(codes: Tensor<"uint8"> | Uint8Array, shape?: readonly number[], name = "codes"): Tensor<"float32"> {
    const c: Tensor<"uint8"> = codes instanceof Tensor
      ? codes
      : new Tensor<"uint8">(codes, shape ?? [codes.length], name);
    if (c.dtype !== "uint8") {
      throw new QuantlabError("INVALID_ARGUMENT", `${name}: codes must be uint8, got ${c.dtype}`);
    }
    const s = shape ?? c.shape;
    const { slots } = resolveGranularity(this.granularity, s, name);
    if (slots !== this.slots || c.size !== s.reduce((a, b) => a * b, 1)) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${name}: codes of shape [${s}] do not match the ${this.slots} fitted codebook(s)`,
      );
    }
    return new Tensor(decodeCodebook(c.data, s, this.granularity, this.codebook, this.k, name), s);
  }

  /** Quantize to the levels and return the levels (float32, same shape). */
  fakeQuantize(x: FloatInput, shape?: readonly number[], name = "tensor"): Tensor<"float32"> {
    const t = this.#check(x, shape, name);
    const out = new Float32Array(t.size);
    quantizeToCodebook(
      t.data,
      t.shape,
      this.granularity,
      this.#search,
      this.config.rounding,
      this.config.seed,
      undefined,
      out,
    );
    return new Tensor(out, t.shape);
  }

  /** The levels of one slot, ascending. */
  levelsOf(slot = 0): Float32Array {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) {
      throw new QuantlabError("INVALID_ARGUMENT", `slot must be an integer in 0..${this.slots - 1}, got ${slot}`);
    }
    return this.codebook.slice(slot * this.k, (slot + 1) * this.k).sort();
  }

  /**
   * Storage of `weights` values (default: the fitted count): `bits` per code plus
   * float32 side data: log2 one `alpha` per slot, lloyd-max `k` levels per slot,
   * binary-code `bits` bases per slot.
   */
  accounting(weights = this.fittedCount): BitAccounting {
    const c = this.config;
    const perSlot = c.levels === "log2" ? 1 : c.levels === "lloyd-max" ? this.k : c.bits;
    return bitAccounting(weights, c.bits, perSlot * this.slots);
  }

  /** Description with the first slot's levels (first few). */
  toString(): string {
    const lv = this.levelsOf(0);
    const shown = Array.from(lv.slice(0, 8), (v) => v.toPrecision(4)).join(", ");
    return `${describe(this.config)} slots=${this.slots} levels[0]=[${shown}${
      lv.length > 8 ? `, … (${lv.length})` : ""
    }]`;
  }

  /** Jupyter display: the description as plain text. */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}

/**
 * Non-uniform weights fitted by {@link NonUniformBuilder.fitWeights}: uint8 codes into per-slot levels; the stored
 * tables are `alpha` (log2), `levels` (lloyd-max, `slots x k`) or `bases` (binary-code, `slots x bits`), float32.
 *
 * @example
 * ```ts
 * import { nonUniform } from "./nonuniform_quantizer.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const w = Tensor.from([0.1, -0.2, 0.3, 1, -2, 4], [2, 3]);
 * const fw = nonUniform().levels("log2").bits(2).perChannel().fitWeights(w, { axis: 0 });
 * if (fw.decode(fw.encode()).toArray().join() !== fw.fakeQuantize().toArray().join()) throw new Error("bad");
 * if (fw.bitsPerWeight() !== 2 + (2 * 32) / 6) throw new Error("bad bits"); // 2-bit codes, one alpha per channel
 * ```
 */
export class NonUniformWeights extends FittedWeightsBase {
  /** Use {@link NonUniformBuilder.fitWeights}. */
  constructor(
    /** The fitted levels. */
    readonly fitted: FittedNonUniform,
    fittedOn: Tensor<"float32">,
    name: string,
  ) {
    super("nonuniform", fittedOn, fitted.granularity.kind === "channel" ? fitted.granularity.axis : undefined, name);
  }

  /** Nearest (or stochastic) levels. */
  protected fake(t: Tensor<"float32">): Tensor<"float32"> {
    return this.fitted.fakeQuantize(t, undefined, this.name);
  }

  /** uint8 codes and the tables the levels follow from. */
  protected codes(t: Tensor<"float32">): Pick<EncodedWeights, "codes" | "tables"> {
    const f = this.fitted, kind = f.config.levels;
    const key = kind === "log2" ? "alpha" : kind === "lloyd-max" ? "levels" : "bases";
    return { codes: f.encode(t, undefined, this.name), tables: { [key]: f.params.slice() } };
  }

  /** Levels rebuilt from the stored tables, then looked up. */
  protected values(e: EncodedWeights): Tensor<"float32"> {
    const f = this.fitted, c = f.config, k = f.k, slots = f.slots;
    if (e.codes.dtype !== "uint8") {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${this.name}: non-uniform codes must be uint8, got ${e.codes.dtype}`,
      );
    }
    let codebook: Float32Array;
    if (c.levels === "lloyd-max") codebook = this.table(e, "levels", Float32Array, slots * k);
    else if (c.levels === "log2") {
      const alpha = this.table(e, "alpha", Float32Array, slots);
      codebook = new Float32Array(slots * k);
      for (let s = 0; s < slots; s++) codebook.set(log2Levels(alpha[s], c.bits), s * k);
    } else {
      const bases = this.table(e, "bases", Float32Array, slots * c.bits);
      codebook = new Float32Array(slots * k);
      for (let s = 0; s < slots; s++) {
        codebook.set(binaryCodeLevels(bases.subarray(s * c.bits, (s + 1) * c.bits)), s * k);
      }
    }
    const codes = e.codes.data as Uint8Array;
    return new Tensor(decodeCodebook(codes, e.shape, f.granularity, codebook, k, this.name), e.shape);
  }

  /** `bits` per code plus the float32 tables (see {@link FittedNonUniform.accounting}). */
  bitsPerWeight(): number {
    return this.fitted.accounting().bitsPerWeight;
  }

  /** The fitted recipe with the tensor name and shape. */
  toString(): string {
    return `${this.fitted.toString()} on ${this.name} [${this.shape}]`;
  }
}

/**
 * Rebuild a non-uniform quantizer from {@link NonUniformBuilder.toRecipe}'s JSON (validated as the builder methods
 * do; `INVALID_ARGUMENT` for a recipe of another kind).
 *
 * @example
 * ```ts
 * import { nonUniform, nonUniformFromRecipe } from "./nonuniform_quantizer.ts";
 * const q = nonUniform().levels("lloyd-max").bits(3).perChannel(1).init([-1, -0.5, -0.25, 0, 0.25, 0.5, 1, 2]);
 * const back = nonUniformFromRecipe(JSON.parse(JSON.stringify(q.toRecipe())));
 * if (back.toString() !== q.toString()) throw new Error(back.toString());
 * ```
 */
export function nonUniformFromRecipe(recipe: WeightQuantizerRecipe): NonUniformBuilder {
  const c = recipeConfig(recipe, "nonuniform");
  const levels = (c.levels ?? DEFAULTS.levels) as LevelKind;
  // bits before levels, in an order every (levels, bits) pair accepts: log2 needs bits >= 2.
  let q = nonUniform().bits(2).levels(levels).bits((c.bits ?? DEFAULTS.bits) as number);
  const g = (c.granularity ?? { kind: "tensor" }) as NonUniformGranularity;
  if (g.kind === "channel") q = q.perChannel(g.axis);
  else if (g.kind !== "tensor") {
    throw new QuantlabError("INVALID_ARGUMENT", `non-uniform recipe: unknown granularity ${JSON.stringify(g)}`);
  }
  q = q.rounding((c.rounding ?? DEFAULTS.rounding) as LevelRounding, { seed: (c.seed ?? 0) as number });
  q = q.scale((c.scale ?? DEFAULTS.scale) as Log2Scale, { powerOfTwo: c.powerOfTwoScale === true });
  const init = c.init ?? DEFAULTS.init;
  q = q.init(init as LloydInit | number[], { seed: (c.initSeed ?? 0) as number });
  if (c.iterations !== undefined) q = q.iterations(c.iterations as number);
  if (c.tolerance !== undefined) q = q.tolerance(c.tolerance as number);
  return q;
}

/**
 * Start a non-uniform quantizer recipe: lloyd-max, 4 bits, per-tensor, nearest
 * rounding, quantile initialisation.
 *
 * @example
 * ```ts
 * import { nonUniform } from "./nonuniform_quantizer.ts";
 * const { values } = nonUniform().levels("binary-code").bits(2).fakeQuantize([-3, -1, 1, 3]);
 * if (values.toArray().join() !== "-3,-1,1,3") throw new Error(values.toArray().join());
 * ```
 */
export function nonUniform(): NonUniformBuilder {
  return new NonUniformBuilder();
}

function shaped(x: FloatInput, shape: readonly number[] | undefined, name: string): Tensor<"float32"> {
  const t = asFloatTensor(x, name);
  return shape ? t.reshape(shape) : t;
}
