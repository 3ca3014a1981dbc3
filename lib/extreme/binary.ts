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
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import { forEachSegment } from "../quant/slots.ts";
import { Prng } from "../tensor/prng.ts";
import { type FloatInput, Tensor } from "../tensor/tensor.ts";
import { type BitAccounting, bitAccounting } from "./accounting.ts";
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

/** The result of one-shot binarization. */
export interface BinaryResult {
  /** `alpha b` (float32). */
  readonly values: Tensor<"float32">;
  /** `b` in {-1, +1} (int8). */
  readonly signs: Tensor<"int8">;
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
 * const { values, fitted } = binary().xnor().quantize([1, -3, 0, -0.5], [2, 2]);
 * if (fitted.scales.join() !== "2,0.25" || values.toArray().join() !== "2,-2,0.25,-0.25") throw new Error("bad");
 * ```
 */
export class BinaryBuilder {
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
    if (!Number.isInteger(seed)) throw new QuantlabError("INVALID_ARGUMENT", `seed must be an integer, got ${seed}`);
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

  /** Fit to `w` and binarize it (what a training step does with the current weights). */
  quantize(w: FloatInput, shape?: readonly number[], name = "weights"): BinaryResult {
    const fitted = this.fit(w, shape, name);
    const t = slotInput(w, shape, this.config.granularity, name, false).tensor;
    const signs = new Int8Array(t.size), values = new Float32Array(t.size);
    binarizeInto(
      t.data,
      t.shape,
      fitted.granularity,
      fitted.scales,
      this.config.rounding,
      this.config.seed,
      signs,
      values,
    );
    return { values: new Tensor(values, t.shape), signs: new Tensor(signs, t.shape), fitted };
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
 * if (fb.decode(signs).toArray().join() !== "1,-1" || fb.bitsPerWeight().bitsPerWeight !== 17) throw new Error("bad");
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
  bitsPerWeight(weights = this.fittedCount): BitAccounting {
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
 * Start a binary-weight recipe: BinaryConnect sign, no scale, per tensor, deterministic.
 *
 * @example
 * ```ts
 * import { binary } from "./binary.ts";
 * if (binary().quantize([0, -0.1, 2]).values.toArray().join() !== "1,-1,1") throw new Error("bad");
 * ```
 */
export function binary(): BinaryBuilder {
  return new BinaryBuilder();
}
