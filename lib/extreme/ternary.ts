/**
 * Ternary weights: TWN (Li et al. 2016) and TTQ-style (Zhu et al. 2017) scales,
 * per tensor or per output channel, with a settable threshold and a fluent
 * immutable builder.
 *
 * Threshold per slot: `delta = factor * base`, with `base = mean|W|` (TWN's
 * approximation, default factor 0.7) or `max|W|` (TTQ uses `0.05 * max|W|`).
 * Codes: `t = +1` where `w > delta`, `-1` where `w < -delta`, else 0.
 * Scales from the data:
 * - `"twn"`: one scale `alpha = mean of |w|` over `|w| > delta` (the
 *   least-squares optimal scale for these codes); values `{-alpha, 0, alpha}`;
 * - `"ttq"`: `Wp = mean of w` over `w > delta` and `Wn = mean of -w` over
 *   `w < -delta` (the least-squares optimal separate scales for these codes,
 *   used here as the starting point TTQ would then train; TTQ's own code starts
 *   from `Wp = Wn = 1` on weights normalised by `max|W|`); values `{-Wn, 0, Wp}`.
 * A slot with no value beyond the threshold gets scale 0.
 *
 * Stochastic rounding replaces the threshold by an unbiased choice between the
 * neighbouring levels: for `0 <= w <= Wp`, `Wp` with probability `w / Wp`, else 0
 * (and symmetrically for negatives with `Wn`), so `E[Q(w)] = w` inside
 * `[-Wn, Wp]` (Lin et al. 2016's stochastic ternarization; the threshold is then
 * used only to fit the scales). Seeded, one uniform per element in flat order.
 *
 * Gradients: {@link twnGradient} and {@link ttqGradient} in `ste.ts`.
 *
 * Vocabulary as every quantizer: the builder's `quantize` gives the int8 codes in {-1, 0, 1}, `fakeQuantize` the
 * values. The builder is a {@link WeightQuantizer} (kind `"ternary"`, nominally 2 bits: codes are stored 2 bits
 * each): `fitWeights(w, { axis })` (per-channel builders take the op's output-channel axis) returns
 * {@link TernaryWeights}; {@link ternaryFromRecipe} reads `toRecipe()`'s JSON.
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import { forEachSegment } from "../quant/slots.ts";
import { checkSeed, Prng } from "../tensor/prng.ts";
import { type FloatInput, Tensor } from "../tensor/tensor.ts";
import { type BitAccounting, bitAccounting, sparsity } from "../quant/accounting.ts";
import {
  checkWeights,
  type EncodedWeights,
  FittedWeightsBase,
  recipeConfig,
  type WeightFitOptions,
  type WeightQuantizer,
  type WeightQuantizerRecipe,
} from "../quant/weight_quantizer.ts";
import type { ExtremeRounding } from "./binary.ts";
import { checkSlotParams, type ExtremeGranularity, slotAbsSums, slotCount, slotInput } from "./slot_stats.ts";
import { ttqGradient, type TtqGradients, twnGradient } from "./ste.ts";

/** How the ternary scales are fitted. */
export type TernaryScales = "twn" | "ttq";

/** What the threshold factor multiplies. */
export type ThresholdBase = "mean-abs" | "max-abs";

/** How ternary codes are packed when counting bits: 2 bits each, or 5 per byte (1.6 bits). */
export type TernaryPacking = "2bit" | "base3";

/** Everything a {@link TernaryBuilder} holds. */
export interface TernaryConfig {
  /** Threshold factor (> 0). */
  readonly factor: number;
  /** What the factor multiplies. */
  readonly base: ThresholdBase;
  /** Scale fitting. */
  readonly scales: TernaryScales;
  /** Per tensor or per channel. */
  readonly granularity: ExtremeGranularity;
  /** Threshold or stochastic rounding. */
  readonly rounding: ExtremeRounding;
  /** Seed of stochastic rounding. */
  readonly seed: number;
}

const DEFAULTS: TernaryConfig = Object.freeze({
  factor: 0.7,
  base: "mean-abs",
  scales: "twn",
  granularity: Object.freeze({ kind: "tensor" }) as ExtremeGranularity,
  rounding: "deterministic",
  seed: 0,
});

function checkFactor(factor: number): void {
  if (typeof factor !== "number" || !Number.isFinite(factor) || factor <= 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `ternary threshold factor must be a finite number > 0, got ${factor}`);
  }
}

/**
 * Ternarize `x` with per-slot thresholds and scales: codes (`int8` in {-1, 0, 1})
 * into `codes` and/or values into `values`.
 *
 * @example
 * ```ts
 * import { ternarizeInto } from "./ternary.ts";
 * const c = new Int8Array(4), v = new Float32Array(4);
 * const one = new Float32Array([1]);
 * ternarizeInto(new Float32Array([0.5, 1, -2, 3]), [4], { kind: "tensor" }, one, new Float32Array([2]), new Float32Array([4]), "deterministic", 0, c, v);
 * if (c.join() !== "0,0,-1,1" || v.join() !== "0,0,-4,2") throw new Error(v.join());
 * ```
 */
export function ternarizeInto(
  x: Float32Array,
  shape: readonly number[],
  g: ExtremeGranularity,
  thresholds: Float32Array,
  wp: Float32Array,
  wn: Float32Array,
  rounding: ExtremeRounding,
  seed: number,
  codes?: Int8Array,
  values?: Float32Array,
): void {
  const rng = rounding === "stochastic" ? new Prng(seed) : undefined;
  forEachSegment(shape, g, (start, end, slot) => {
    const d = thresholds[slot], p = wp[slot], n = wn[slot];
    if (rng) {
      for (let i = start; i < end; i++) {
        const v = x[i], u = rng.nextFloat();
        // u < v / p  <=>  u * p < v (p > 0); p = 0 never selects
        const c = v >= 0 ? (u * p < v && p > 0 ? 1 : 0) : (u * n < -v && n > 0 ? -1 : 0);
        if (codes) codes[i] = c;
        if (values) values[i] = c > 0 ? p : c < 0 ? -n : 0;
      }
      return;
    }
    for (let i = start; i < end; i++) {
      const v = x[i];
      const c = v > d ? 1 : v < -d ? -1 : 0;
      if (codes) codes[i] = c;
      if (values) values[i] = c > 0 ? p : c < 0 ? -n : 0;
    }
  });
}

function describe(c: TernaryConfig): string {
  return `ternary(${c.scales}, threshold=${c.factor} x ${c.base === "mean-abs" ? "mean|W|" : "max|W|"}, ${
    c.granularity.kind === "tensor" ? "per-tensor" : `per-channel(axis ${c.granularity.axis})`
  }, ${c.rounding === "stochastic" ? `stochastic(seed ${c.seed})` : "deterministic"})`;
}

/** The result of one-shot ternarization to values ({@link TernaryBuilder.fakeQuantize}). */
export interface TernaryFakeQuantResult {
  /** Ternary values (float32). */
  readonly values: Tensor<"float32">;
  /** The fitted quantizer (thresholds and scales). */
  readonly fitted: FittedTernary;
}

/** The result of one-shot ternarization to codes ({@link TernaryBuilder.quantize}). */
export interface TernaryQuantResult {
  /** Codes in {-1, 0, 1} (int8). */
  readonly codes: Tensor<"int8">;
  /** The fitted quantizer (thresholds and scales). */
  readonly fitted: FittedTernary;
}

/**
 * An immutable ternary-weight recipe.
 *
 * @example
 * ```ts
 * import { ternary } from "./ternary.ts";
 * // mean|W| = 1, delta = 0.7; |w| > 0.7: {1.2, -2, 0.9} -> alpha = 4.1 / 3
 * const { values, fitted } = ternary().threshold(0.7).fakeQuantize([1.2, -2, 0.5, 0.9, -0.4, 0]);
 * const a = Math.fround(4.1 / 3);
 * if (fitted.positiveScale[0] !== a || values.toArray().join() !== [a, -a, 0, a, 0, 0].join()) throw new Error("bad");
 * ```
 */
export class TernaryBuilder implements WeightQuantizer {
  /** The weight-quantizer family. */
  readonly kind = "ternary" as const;
  /** Two bits per weight, how the codes are stored by default (a {@link WeightQuantizer}'s nominal bits). */
  readonly nominalBits = 2;
  /** The full configuration. */
  readonly config: TernaryConfig;

  /** Use {@link ternary} to start a builder. */
  constructor(config: TernaryConfig = DEFAULTS) {
    this.config = Object.freeze({ ...config });
  }

  #with(patch: Partial<TernaryConfig>): TernaryBuilder {
    return new TernaryBuilder({ ...this.config, ...patch });
  }

  /** Threshold `delta = factor * base` (default 0.7 x mean|W|); `factor` must be > 0. */
  threshold(factor: number, options: { of?: ThresholdBase } = {}): TernaryBuilder {
    checkFactor(factor);
    const base = options.of ?? this.config.base;
    if (base !== "mean-abs" && base !== "max-abs") {
      throw new QuantlabError("INVALID_ARGUMENT", `threshold base must be "mean-abs" or "max-abs", got "${base}"`);
    }
    return this.#with({ factor, base });
  }

  /** Scale fitting: `"twn"` (one alpha, default) or `"ttq"` (separate Wp and Wn). */
  scales(mode: TernaryScales): TernaryBuilder {
    if (mode !== "twn" && mode !== "ttq") {
      throw new QuantlabError("INVALID_ARGUMENT", `ternary scales must be "twn" or "ttq", got "${mode}"`);
    }
    return this.#with({ scales: mode });
  }

  /** TWN: one scale, threshold 0.7 x mean|W|. */
  twn(): TernaryBuilder {
    return this.#with({ scales: "twn", factor: 0.7, base: "mean-abs" });
  }

  /** TTQ-style separate positive and negative scales (threshold unchanged; TTQ's paper uses `threshold(0.05, { of: "max-abs" })`). */
  ttq(): TernaryBuilder {
    return this.#with({ scales: "ttq" });
  }

  /** One threshold and scale(s) for the whole tensor (default). */
  perTensor(): TernaryBuilder {
    return this.#with({ granularity: { kind: "tensor" } });
  }

  /** One threshold and scale(s) per index along `axis` (default 0, output channels). */
  perChannel(axis = 0): TernaryBuilder {
    if (!Number.isInteger(axis)) {
      throw new QuantlabError("AXIS_OUT_OF_RANGE", `per-channel axis must be an integer, got ${axis}`);
    }
    return this.#with({ granularity: { kind: "channel", axis } });
  }

  /** `"deterministic"` threshold (default) or unbiased `"stochastic"` ternarization with `seed`. */
  rounding(mode: ExtremeRounding, options: { seed?: number } = {}): TernaryBuilder {
    if (mode !== "deterministic" && mode !== "stochastic") {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `ternary rounding must be "deterministic" or "stochastic", got "${mode}"`,
      );
    }
    const seed = options.seed ?? this.config.seed;
    checkSeed(seed, "rounding seed");
    return this.#with({ rounding: mode, seed });
  }

  /** Fit thresholds and scales to `w` (float64 accumulation). */
  fit(w: FloatInput, shape?: readonly number[], name = "weights"): FittedTernary {
    const c = this.config;
    const s = slotInput(w, shape, c.granularity, name, false);
    const x = s.tensor.data;
    const { count, absSum, absMax } = slotAbsSums(x, s.tensor.shape, s.granularity, s.slots);
    // the finite check rides on the |w| sums (a NaN or infinity makes a sum non-finite)
    for (let i = 0; i < s.slots; i++) if (!Number.isFinite(absSum[i])) assertFinite(x, name);
    const thresholds = new Float32Array(s.slots);
    for (let i = 0; i < s.slots; i++) {
      thresholds[i] = c.factor * (c.base === "mean-abs" ? absSum[i] / count[i] : absMax[i]);
    }
    const ps = new Float64Array(s.slots), pn = new Float64Array(s.slots);
    const ns = new Float64Array(s.slots), nn = new Float64Array(s.slots);
    forEachSegment(s.tensor.shape, s.granularity, (start, end, slot) => {
      const d = thresholds[slot];
      let a = 0, b = 0, e = 0, f = 0;
      for (let i = start; i < end; i++) {
        const v = x[i];
        if (v > d) {
          a += v;
          b++;
        } else if (v < -d) {
          e -= v;
          f++;
        }
      }
      ps[slot] += a;
      pn[slot] += b;
      ns[slot] += e;
      nn[slot] += f;
    });
    const wp = new Float32Array(s.slots), wn = new Float32Array(s.slots);
    for (let i = 0; i < s.slots; i++) {
      if (c.scales === "twn") {
        const k = pn[i] + nn[i];
        wp[i] = wn[i] = k > 0 ? (ps[i] + ns[i]) / k : 0;
      } else {
        wp[i] = pn[i] > 0 ? ps[i] / pn[i] : 0;
        wn[i] = nn[i] > 0 ? ns[i] / nn[i] : 0;
      }
    }
    return new FittedTernary(c, s.granularity, thresholds, wp, wn, s.tensor.size);
  }

  /** Fit to `w` and ternarize it to values (what a training step does with the current weights). */
  fakeQuantize(w: FloatInput, shape?: readonly number[], name = "weights"): TernaryFakeQuantResult {
    const fitted = this.fit(w, shape, name);
    return { values: fitted.fakeQuantize(w, shape, name), fitted };
  }

  /** Fit to `w` and ternarize it to codes in {-1, 0, 1} (int8). */
  quantize(w: FloatInput, shape?: readonly number[], name = "weights"): TernaryQuantResult {
    const fitted = this.fit(w, shape, name);
    return { codes: fitted.codes(w, shape, name), fitted };
  }

  /**
   * Fit to one weight tensor: per-channel builders use `options.axis` (the op's output-channel axis) when given,
   * per-tensor builders ignore it. Throws `NON_FINITE`, `EMPTY_TENSOR`, `AXIS_OUT_OF_RANGE` naming the tensor.
   */
  fitWeights(w: Tensor<"float32">, options: WeightFitOptions = {}): TernaryWeights {
    const { name, axis } = checkWeights(w, options);
    const b = this.config.granularity.kind === "channel" && axis !== undefined ? this.perChannel(axis) : this;
    return new TernaryWeights(b.fit(w, undefined, name), w, name);
  }

  /** The configuration as JSON. */
  toRecipe(): WeightQuantizerRecipe {
    const c = this.config;
    return {
      kind: "ternary",
      config: {
        factor: c.factor,
        base: c.base,
        scales: c.scales,
        granularity: { ...c.granularity },
        rounding: c.rounding,
        seed: c.seed,
      },
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
 * Ternary weights with fitted thresholds and scales.
 *
 * @example
 * ```ts
 * import { ternary } from "./ternary.ts";
 * const ft = ternary().ttq().fit([1, 3, -2, 0.1]);
 * // mean|W| = 1.525, delta = 1.0675: Wp = 3, Wn = 2
 * const codes = ft.codes([1, 3, -2, 0.1]);
 * if (codes.toArray().join() !== "0,1,-1,0" || ft.decode(codes).toArray().join() !== "0,3,-2,0") throw new Error("bad");
 * if (ft.sparsity([1, 3, -2, 0.1]) !== 0.5) throw new Error("bad sparsity");
 * ```
 */
export class FittedTernary {
  /** Create from fitted parts (normally via `TernaryBuilder.fit`). */
  constructor(
    /** The recipe. */
    readonly config: TernaryConfig,
    /** Resolved granularity. */
    readonly granularity: ExtremeGranularity,
    /** `delta` per slot. */
    readonly thresholds: Float32Array,
    /** `Wp` per slot (`alpha` for TWN). */
    readonly positiveScale: Float32Array,
    /** `Wn` per slot (`alpha` for TWN); negative values are `-Wn`. */
    readonly negativeScale: Float32Array,
    /** Number of weights fitted on. */
    readonly fittedCount: number,
  ) {}

  #input(x: FloatInput, shape: readonly number[] | undefined, name: string, finite = true) {
    const s = slotInput(x, shape, this.granularity, name, finite);
    checkSlotParams(this.thresholds, s.slots, "ternary thresholds", name);
    return s.tensor;
  }

  #run(t: Tensor<"float32">, codes?: Int8Array, values?: Float32Array): void {
    ternarizeInto(
      t.data,
      t.shape,
      this.granularity,
      this.thresholds,
      this.positiveScale,
      this.negativeScale,
      this.config.rounding,
      this.config.seed,
      codes,
      values,
    );
  }

  /** Codes in {-1, 0, 1} (int8). */
  codes(x: FloatInput, shape?: readonly number[], name = "weights"): Tensor<"int8"> {
    const t = this.#input(x, shape, name);
    const out = new Int8Array(t.size);
    this.#run(t, out);
    return new Tensor(out, t.shape);
  }

  /** Values `Wp`, 0, `-Wn` from codes. */
  decode(codes: Tensor<"int8">, name = "codes"): Tensor<"float32"> {
    checkSlotParams(this.thresholds, slotCount(codes.shape, this.granularity, name), "ternary thresholds", name);
    const c = codes.data, out = new Float32Array(c.length);
    forEachSegment(codes.shape, this.granularity, (start, end, slot) => {
      const p = this.positiveScale[slot], n = -this.negativeScale[slot];
      for (let i = start; i < end; i++) out[i] = c[i] > 0 ? p : c[i] < 0 ? n : 0;
    });
    return new Tensor(out, codes.shape);
  }

  /** Ternary values directly. */
  fakeQuantize(x: FloatInput, shape?: readonly number[], name = "weights"): Tensor<"float32"> {
    const t = this.#input(x, shape, name);
    const out = new Float32Array(t.size);
    this.#run(t, undefined, out);
    return new Tensor(out, t.shape);
  }

  /** Fraction of zero codes for `x`. */
  sparsity(x: FloatInput, shape?: readonly number[], name = "weights"): number {
    return sparsity(this.codes(x, shape, name).data);
  }

  /**
   * Straight-through gradients: TWN's identity rule for `"twn"` (scale gradients
   * are zero, as the scales are refitted each step), TTQ's rule for `"ttq"`.
   */
  gradient(w: Tensor<"float32">, gradOut: Float32Array): TtqGradients {
    const g = this.granularity;
    if (this.config.scales === "twn") {
      return {
        weights: twnGradient(w.data, gradOut),
        positiveScale: new Float64Array(this.thresholds.length),
        negativeScale: new Float64Array(this.thresholds.length),
      };
    }
    return ttqGradient(
      w.data,
      gradOut,
      this.thresholds,
      this.positiveScale,
      this.negativeScale,
      g.kind === "channel" ? { shape: w.shape, axis: g.axis } : undefined,
    );
  }

  /**
   * Payload 2 bits per weight (`"2bit"`) or 1.6 (`"base3"`: 5 codes per byte,
   * 3^5 = 243 <= 256) plus float32 scales: one per slot for TWN, two for TTQ.
   */
  accounting(packing: TernaryPacking = "2bit", weights = this.fittedCount): BitAccounting {
    if (packing !== "2bit" && packing !== "base3") {
      throw new QuantlabError("INVALID_ARGUMENT", `ternary packing must be "2bit" or "base3", got "${packing}"`);
    }
    const perSlot = this.config.scales === "twn" ? 1 : 2;
    return bitAccounting(weights, packing === "2bit" ? 2 : 8 / 5, perSlot * this.thresholds.length);
  }

  /** Description with the first thresholds and scales. */
  toString(): string {
    const f = (a: Float32Array) =>
      Array.from(a.slice(0, 4), (v) => v.toPrecision(4)).join(", ") + (a.length > 4 ? `, … (${a.length})` : "");
    return `${describe(this.config)} delta=[${f(this.thresholds)}] Wp=[${f(this.positiveScale)}] Wn=[${
      f(this.negativeScale)
    }]`;
  }

  /** Jupyter display: the description as plain text. */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}

/**
 * Ternary weights fitted by {@link TernaryBuilder.fitWeights}: int8 codes in {-1, 0, 1}; the stored tables are
 * `scale` (TWN, float32, one per slot) or `positiveScale` and `negativeScale` (TTQ); codes count 2 bits each.
 *
 * @example
 * ```ts
 * import { ternary } from "./ternary.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const w = Tensor.from([1.2, -2, 0.5, 0.9, -0.4, 0], [2, 3]);
 * const fw = ternary().ttq().perChannel().fitWeights(w, { axis: 0 });
 * if (fw.decode(fw.encode()).toArray().join() !== fw.fakeQuantize().toArray().join()) throw new Error("bad");
 * if (fw.bitsPerWeight() !== 2 + (2 * 2 * 32) / 6) throw new Error("bad bits"); // Wp and Wn per channel
 * ```
 */
export class TernaryWeights extends FittedWeightsBase {
  /** Use {@link TernaryBuilder.fitWeights}. */
  constructor(
    /** The fitted thresholds and scales. */
    readonly fitted: FittedTernary,
    fittedOn: Tensor<"float32">,
    name: string,
  ) {
    super("ternary", fittedOn, fitted.granularity.kind === "channel" ? fitted.granularity.axis : undefined, name);
  }

  /** Ternary values. */
  protected fake(t: Tensor<"float32">): Tensor<"float32"> {
    return this.fitted.fakeQuantize(t, undefined, this.name);
  }

  /** int8 codes and the scales. */
  protected codes(t: Tensor<"float32">): Pick<EncodedWeights, "codes" | "tables"> {
    const f = this.fitted;
    return {
      codes: f.codes(t, undefined, this.name),
      tables: f.config.scales === "twn"
        ? { scale: f.positiveScale.slice() }
        : { positiveScale: f.positiveScale.slice(), negativeScale: f.negativeScale.slice() },
    };
  }

  /** `Wp`, 0 or `-Wn` from the stored scales. */
  protected values(e: EncodedWeights): Tensor<"float32"> {
    const f = this.fitted, n = f.thresholds.length;
    if (e.codes.dtype !== "int8") {
      throw new QuantlabError("INVALID_ARGUMENT", `${this.name}: ternary codes must be int8, got ${e.codes.dtype}`);
    }
    const wp = this.table(e, f.config.scales === "twn" ? "scale" : "positiveScale", Float32Array, n);
    const wn = f.config.scales === "twn" ? wp : this.table(e, "negativeScale", Float32Array, n);
    return new FittedTernary(f.config, f.granularity, f.thresholds, wp, wn, f.fittedCount)
      .decode(e.codes as Tensor<"int8">, this.name);
  }

  /** 2 bits per weight plus the float32 scales (see {@link FittedTernary.accounting}). */
  bitsPerWeight(): number {
    return this.fitted.accounting().bitsPerWeight;
  }

  /** The fitted recipe with the tensor name and shape. */
  toString(): string {
    return `${this.fitted.toString()} on ${this.name} [${this.shape}]`;
  }
}

/**
 * Rebuild a ternary quantizer from {@link TernaryBuilder.toRecipe}'s JSON (validated as the builder methods do;
 * `INVALID_ARGUMENT` for a recipe of another kind).
 *
 * @example
 * ```ts
 * import { ternary, ternaryFromRecipe } from "./ternary.ts";
 * const q = ternary().ttq().threshold(0.05, { of: "max-abs" }).perChannel(0);
 * if (ternaryFromRecipe(JSON.parse(JSON.stringify(q.toRecipe()))).toString() !== q.toString()) throw new Error("bad");
 * ```
 */
export function ternaryFromRecipe(recipe: WeightQuantizerRecipe): TernaryBuilder {
  const c = recipeConfig(recipe, "ternary");
  let q = ternary()
    .threshold((c.factor ?? DEFAULTS.factor) as number, { of: (c.base ?? DEFAULTS.base) as ThresholdBase })
    .scales((c.scales ?? DEFAULTS.scales) as TernaryScales);
  const g = (c.granularity ?? { kind: "tensor" }) as ExtremeGranularity;
  if (g.kind === "channel") q = q.perChannel(g.axis);
  else if (g.kind !== "tensor") {
    throw new QuantlabError("INVALID_ARGUMENT", `ternary recipe: unknown granularity ${JSON.stringify(g)}`);
  }
  return q.rounding((c.rounding ?? DEFAULTS.rounding) as ExtremeRounding, { seed: (c.seed ?? 0) as number });
}

/**
 * Start a ternary recipe: TWN (threshold 0.7 x mean|W|, one scale), per tensor, deterministic.
 *
 * @example
 * ```ts
 * import { ternary } from "./ternary.ts";
 * const { codes } = ternary().quantize([0.1, -1, 1]);
 * if (codes.toArray().join() !== "0,-1,1") throw new Error("bad");
 * ```
 */
export function ternary(): TernaryBuilder {
  return new TernaryBuilder();
}
