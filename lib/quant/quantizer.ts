/**
 * The fluent, immutable uniform quantizer builder: `quantizer().int(4).symmetric().perChannel(0)`.
 *
 * Every method returns a new builder and validates eagerly. A builder is a
 * recipe; `fit(data)` (static calibration) gives a {@link FittedQuantizer}
 * with parameters, and a dynamic builder computes parameters on every call.
 *
 * The builder is also a {@link WeightQuantizer} (kind `"uniform"`): `fitWeights(w, { axis })` fits one weight
 * tensor and returns {@link UniformWeights}. Per-channel builders take the op's output-channel `axis` given there
 * (it overrides their own); per-tensor builders ignore it; per-group builders keep their own block axis (the
 * blocks run along the reduction axis, not the output-channel axis) and their `affine` parameters have granularity
 * `"group"` (stored as QDQ only by opset 21 blocked quantization; lib/ptq keeps such weights as fake-quantized
 * floats). `toRecipe()` writes the configuration, calibrator included, as JSON; {@link uniformFromRecipe} reads it.
 *
 * @module
 */
import { checkBits, QuantlabError } from "../errors.ts";
import type { Calibrator, CalibratorRecipe, Observer } from "./calibrate/observer.ts";
import { minMax } from "./calibrate/min_max.ts";
import { calibratorFromRecipe, calibratorRecipe } from "./calibrate/recipe.ts";
import { checkSeed } from "../tensor/prng.ts";
import { asFloatTensor, type FloatInput, Tensor } from "../tensor/tensor.ts";
import { dequantizeTensor, fakeQuantizeTensor, quantizeTensor } from "./affine.ts";
import {
  checkWeights,
  type EncodedWeights,
  FittedWeightsBase,
  recipeConfig,
  type WeightFitOptions,
  type WeightQuantizer,
  type WeightQuantizerRecipe,
} from "./weight_quantizer.ts";
import type { Granularity, QuantParams, QuantScheme } from "./params.ts";
import { describeGranularity, paramsFromRange, resolveGranularity } from "./params.ts";
import type { RoundingMode } from "./rounding.ts";
import { checkRoundingMode } from "./rounding.ts";
import { slotMinMax } from "./slots.ts";

/** Dynamic quantization: parameters computed from each input at call time. */
export type DynamicMode = "tensor" | "row";

/** Everything a {@link QuantizerBuilder} holds. */
export interface QuantizerConfig extends QuantScheme {
  /** Which elements share parameters. */
  readonly granularity: Granularity;
  /** Rounding mode. */
  readonly rounding: RoundingMode;
  /** Seed for stochastic rounding. */
  readonly seed: number;
  /** Range calibration for static quantization. */
  readonly calibrator: Calibrator;
  /** `false` for static; `"tensor"` or `"row"` (one scale per row of the last axis) for dynamic. */
  readonly dynamic: false | DynamicMode;
}

const DEFAULT_CONFIG: QuantizerConfig = Object.freeze({
  bits: 8,
  signed: true,
  symmetric: true,
  range: "restricted",
  granularity: Object.freeze({ kind: "tensor" }) as Granularity,
  rounding: "nearest-even",
  seed: 0,
  calibrator: minMax(),
  dynamic: false,
});

/** The result of fake quantization: float values on the grid and the parameters used. */
export interface FakeQuantResult {
  /** Fake-quantized values (float32, same shape as the input). */
  readonly values: Tensor<"float32">;
  /** The parameters used. */
  readonly params: QuantParams;
}

/** The result of quantization: integer codes and the parameters used. */
export interface QuantResult {
  /** Integer codes (int8, uint8 or int32). */
  readonly codes: Tensor;
  /** The parameters used. */
  readonly params: QuantParams;
}

function describe(c: QuantizerConfig): string {
  const parts = [
    `${c.signed ? "int" : "uint"}${c.bits}`,
    c.symmetric ? `symmetric(${c.range})` : "asymmetric",
    describeGranularity(c.granularity),
    `rounding=${c.rounding}${c.rounding === "stochastic" ? `(seed ${c.seed})` : ""}`,
    c.dynamic ? `dynamic(${c.dynamic})` : `static(${c.calibrator.toString()})`,
  ];
  return `quantizer(${parts.join(", ")})`;
}

/**
 * An immutable uniform affine quantizer recipe.
 *
 * @example
 * ```ts
 * import { quantizer } from "./quantizer.ts";
 * const q = quantizer().int(4).symmetric().perChannel(0);
 * const w = [0.1, -0.2, 0.3, 1, -2, 4];
 * const { values, params } = q.fit(w, [2, 3]).fakeQuantize(w, [2, 3]);
 * if (params.scale.length !== 2 || values.shape.join() !== "2,3") throw new Error("bad");
 * ```
 */
export class QuantizerBuilder implements WeightQuantizer {
  /** The weight-quantizer family. */
  readonly kind = "uniform" as const;
  /** The full configuration. */
  readonly config: QuantizerConfig;

  /** Use {@link quantizer} to start a builder. */
  constructor(config: QuantizerConfig = DEFAULT_CONFIG) {
    this.config = Object.freeze({ ...config });
  }

  #with(patch: Partial<QuantizerConfig>): QuantizerBuilder {
    return new QuantizerBuilder({ ...this.config, ...patch });
  }

  /** Signed integers of `bits` bits (2..16). */
  int(bits: number): QuantizerBuilder {
    checkBits(bits, "int bits");
    return this.#with({ bits, signed: true });
  }

  /** Unsigned integers of `bits` bits (2..16). */
  uint(bits: number): QuantizerBuilder {
    checkBits(bits, "uint bits");
    return this.#with({ bits, signed: false });
  }

  /**
   * Symmetric clipping range `[-max|r|, max|r|]`; `range` picks restricted
   * (default, `S = max|r|/(2^(b-1)-1)`) or full (`S = 2max|r|/(2^b-1)`).
   */
  symmetric(range: "restricted" | "full" = "restricted"): QuantizerBuilder {
    if (range !== "restricted" && range !== "full") {
      throw new QuantlabError("INVALID_ARGUMENT", `symmetric range must be "restricted" or "full", got "${range}"`);
    }
    return this.#with({ symmetric: true, range });
  }

  /** Asymmetric clipping range `[min, max]` with an integer zero point. */
  asymmetric(): QuantizerBuilder {
    return this.#with({ symmetric: false, range: "full" });
  }

  /** One scale for the whole tensor. */
  perTensor(): QuantizerBuilder {
    return this.#with({ granularity: { kind: "tensor" } });
  }

  /** One scale per index along `axis` (default 0, output channels of conv and linear weights). */
  perChannel(axis = 0): QuantizerBuilder {
    if (!Number.isInteger(axis)) {
      throw new QuantlabError("AXIS_OUT_OF_RANGE", `per-channel axis must be an integer, got ${axis}`);
    }
    return this.#with({ granularity: { kind: "channel", axis } });
  }

  /**
   * One scale per block of `groupSize` consecutive elements along `axis`
   * (default: the last axis), for every index of the other axes (ONNX blocked
   * quantization layout).
   */
  perGroup(groupSize: number, axis = -1): QuantizerBuilder {
    if (!Number.isInteger(groupSize) || groupSize < 1) {
      throw new QuantlabError("GROUP_SIZE", `group size must be a positive integer, got ${groupSize}`);
    }
    if (!Number.isInteger(axis)) {
      throw new QuantlabError("AXIS_OUT_OF_RANGE", `per-group axis must be an integer, got ${axis}`);
    }
    return this.#with({ granularity: { kind: "group", axis, groupSize } });
  }

  /** Rounding mode; `seed` drives stochastic rounding. */
  rounding(mode: RoundingMode, options: { seed?: number } = {}): QuantizerBuilder {
    checkRoundingMode(mode);
    const seed = options.seed ?? this.config.seed;
    checkSeed(seed, "rounding seed");
    return this.#with({ rounding: mode, seed });
  }

  /** Static range calibration with `calibrator` (default min-max). */
  calibrate(calibrator: Calibrator): QuantizerBuilder {
    if (!calibrator || typeof calibrator.create !== "function") {
      throw new QuantlabError("INVALID_ARGUMENT", "calibrate() expects a calibrator such as calibrate.minMax()");
    }
    return this.#with({ calibrator, dynamic: false });
  }

  /** Dynamic quantization: min-max parameters computed per call, per tensor or per row of the last axis. */
  dynamic(per: DynamicMode = "tensor"): QuantizerBuilder {
    if (per !== "tensor" && per !== "row") {
      throw new QuantlabError("INVALID_ARGUMENT", `dynamic() takes "tensor" or "row", got "${per}"`);
    }
    return this.#with({ dynamic: per });
  }

  /** A fresh streaming observer for this recipe (per-tensor or per-channel). */
  observer(name?: string): Observer {
    const g = this.config.granularity;
    if (g.kind === "group") {
      throw new QuantlabError(
        "UNSUPPORTED",
        `${
          name ?? "tensor"
        }: streaming observers work per-tensor or per-channel; fit per-group parameters with fit(tensor)`,
      );
    }
    return this.config.calibrator.create({
      scheme: this.config,
      axis: g.kind === "channel" ? g.axis : undefined,
      name,
    });
  }

  /** Parameters from an observer that has seen the calibration data. */
  fromObserver(observer: Observer): FittedQuantizer {
    const r = observer.range();
    return new FittedQuantizer(this.config, paramsFromRange(r.min, r.max, this.config, this.config.granularity));
  }

  /**
   * Static calibration: stream `data` (one tensor, or an iterable of batches)
   * through the calibrator and fix the parameters.
   */
  fit(data: FloatInput | Iterable<FloatInput>, shape?: readonly number[], name = "tensor"): FittedQuantizer {
    const batches = isSingle(data) ? [data] : data;
    const g = this.config.granularity;
    if (g.kind === "group") {
      let fitted: FittedQuantizer | undefined;
      for (const b of batches) {
        if (fitted) {
          throw new QuantlabError(
            "UNSUPPORTED",
            `${name}: per-group parameters are fitted on one tensor, got several batches`,
          );
        }
        const t = shaped(b, shape, name);
        fitted = new FittedQuantizer(this.config, minMaxParams(t, this.config, g, name));
      }
      if (!fitted) throw new QuantlabError("EMPTY_TENSOR", `${name}: fit() got no data`);
      return fitted;
    }
    if (this.config.calibrator.name === "minmax" && isSingle(data)) {
      // One tensor with min-max calibration: one fused pass (min/max + finiteness check),
      // the same parameters the min-max observer would give.
      const t = shaped(data, shape, name);
      return new FittedQuantizer(this.config, minMaxParams(t, this.config, g, name));
    }
    const obs = this.observer(name);
    for (const b of batches) obs.observe(shaped(b, shape, name));
    if (obs.batches === 0) throw new QuantlabError("EMPTY_TENSOR", `${name}: fit() got no data`);
    return this.fromObserver(obs);
  }

  /** Parameters for `x` as dynamic quantization computes them (min-max over the tensor or each row). */
  paramsFor(x: FloatInput, shape?: readonly number[], name = "tensor"): QuantParams {
    const t = shaped(x, shape, name);
    const g: Granularity = this.config.dynamic === "row"
      ? { kind: "group", axis: -1, groupSize: t.shape[t.rank - 1] ?? 1 }
      : this.config.dynamic === "tensor"
      ? { kind: "tensor" }
      : this.config.granularity;
    if (this.config.dynamic === "row" && t.rank === 0) {
      throw new QuantlabError("AXIS_OUT_OF_RANGE", `${name}: per-row dynamic quantization needs rank >= 1`);
    }
    return minMaxParams(t, this.config, g, name);
  }

  /** Fake-quantize `x` with parameters computed from `x` itself (dynamic, or a one-shot static fit). */
  fakeQuantize(x: FloatInput, shape?: readonly number[], name = "tensor"): FakeQuantResult {
    const t = shaped(x, shape, name);
    const params = this.config.dynamic ? this.paramsFor(t, undefined, name) : this.fit(t, undefined, name).params;
    return { values: fakeQuantizeTensor(t, params, this.#kernel(name)), params };
  }

  /** Quantize `x` with parameters computed from `x` itself. */
  quantize(x: FloatInput, shape?: readonly number[], name = "tensor"): QuantResult {
    const t = shaped(x, shape, name);
    const params = this.config.dynamic ? this.paramsFor(t, undefined, name) : this.fit(t, undefined, name).params;
    return { codes: quantizeTensor(t, params, this.#kernel(name)), params };
  }

  #kernel(name: string) {
    return { rounding: this.config.rounding, seed: this.config.seed, name };
  }

  /** The bit width (a {@link WeightQuantizer}'s nominal bits per weight). */
  get nominalBits(): number {
    return this.config.bits;
  }

  /**
   * Fit to one weight tensor (see the module doc for how `axis` applies per granularity). The parameters are those
   * of `fit(w)` (static) or `paramsFor(w)` (dynamic), so `fakeQuantize()` equals `fakeQuantize(w).values` bit for
   * bit. Throws `NON_FINITE`, `EMPTY_TENSOR`, `AXIS_OUT_OF_RANGE` naming the tensor.
   */
  fitWeights(w: Tensor<"float32">, options: WeightFitOptions = {}): UniformWeights {
    const { name, axis } = checkWeights(w, options);
    const b = this.config.granularity.kind === "channel" && axis !== undefined ? this.perChannel(axis) : this;
    const params = b.config.dynamic ? b.paramsFor(w, undefined, name) : b.fit(w, undefined, name).params;
    return new UniformWeights(b.config, params, w, name);
  }

  /**
   * The configuration as JSON (calibrator included, as its `{ name, options }`); throws `UNSUPPORTED` for a
   * hand-made calibrator without `toRecipe()`.
   */
  toRecipe(): WeightQuantizerRecipe {
    const c = this.config;
    return {
      kind: "uniform",
      config: {
        bits: c.bits,
        signed: c.signed,
        symmetric: c.symmetric,
        range: c.range,
        granularity: { ...c.granularity },
        rounding: c.rounding,
        seed: c.seed,
        calibrator: calibratorRecipe(c.calibrator),
        dynamic: c.dynamic,
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
 * A quantizer with fixed (statically calibrated) parameters.
 *
 * @example
 * ```ts
 * import { quantizer } from "./quantizer.ts";
 * const fq = quantizer().uint(8).asymmetric().fit([0, 1, 2, 3]);
 * const { codes } = fq.quantize([0, 3]);
 * const back = fq.dequantize(codes);
 * if (Math.abs(back.data[1] - 3) > 1e-6) throw new Error("bad");
 * ```
 */
export class FittedQuantizer {
  /** Create from a config and parameters (normally via `QuantizerBuilder.fit`). */
  constructor(readonly config: QuantizerConfig, readonly params: QuantParams) {}

  /** Quantize to integer codes. */
  quantize(x: FloatInput, shape?: readonly number[], name = "tensor"): QuantResult {
    const t = shaped(x, shape, name);
    return { codes: quantizeTensor(t, this.params, this.#kernel(name)), params: this.params };
  }

  /** Dequantize integer codes. */
  dequantize(codes: Tensor, name = "codes"): Tensor<"float32"> {
    return dequantizeTensor(codes, this.params, { name });
  }

  /** Quantize then dequantize. */
  fakeQuantize(x: FloatInput, shape?: readonly number[], name = "tensor"): FakeQuantResult {
    const t = shaped(x, shape, name);
    return { values: fakeQuantizeTensor(t, this.params, this.#kernel(name)), params: this.params };
  }

  #kernel(name: string) {
    return { rounding: this.config.rounding, seed: this.config.seed, name };
  }

  /** Description with the fitted scales (first few). */
  toString(): string {
    const s = Array.from(this.params.scale.slice(0, 4), (v) => v.toPrecision(4)).join(", ");
    const z = Array.from(this.params.zeroPoint.slice(0, 4)).join(", ");
    const more = this.params.scale.length > 4 ? `, … (${this.params.scale.length})` : "";
    return `${describe(this.config)} scale=[${s}${more}] zeroPoint=[${z}${more}]`;
  }

  /** Jupyter display: the description as plain text. */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    return { "text/plain": this.toString() };
  }
}

/**
 * Uniform affine weights fitted by {@link QuantizerBuilder.fitWeights}: `affine` holds the parameters; codes are
 * `quantizeTensor`'s (int8, uint8 or int32); the stored tables are the float32 scales, plus the zero points when the
 * scheme is asymmetric (symmetric zero points follow from the scheme).
 *
 * @example
 * ```ts
 * import { quantizer } from "./quantizer.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const w = Tensor.from([0.1, -0.2, 0.3, 1, -2, 4], [2, 3]);
 * const fw = quantizer().int(4).perChannel().fitWeights(w, { axis: 0, name: "fc.weight" });
 * if (fw.decode(fw.encode()).toArray().join() !== fw.fakeQuantize().toArray().join()) throw new Error("bad");
 * if (fw.affine.scale.length !== 2 || fw.bitsPerWeight() !== 4 + (2 * 32) / 6) throw new Error("bad bits");
 * ```
 */
export class UniformWeights extends FittedWeightsBase {
  /** The fitted parameters. */
  override readonly affine: QuantParams;

  /** Use {@link QuantizerBuilder.fitWeights}. */
  constructor(
    /** The recipe (with the channel axis actually used). */
    readonly config: QuantizerConfig,
    params: QuantParams,
    fittedOn: Tensor<"float32">,
    name: string,
  ) {
    const g = params.granularity;
    super("uniform", fittedOn, g.kind === "tensor" ? undefined : g.axis, name);
    this.affine = params;
  }

  /** The same parameters as a {@link FittedQuantizer} (quantize, dequantize any tensor of this shape). */
  get fitted(): FittedQuantizer {
    return new FittedQuantizer(this.config, this.affine);
  }

  #kernel() {
    return { rounding: this.config.rounding, seed: this.config.seed, name: this.name };
  }

  /** `fakeQuantizeTensor` with the fitted parameters. */
  protected fake(t: Tensor<"float32">): Tensor<"float32"> {
    return fakeQuantizeTensor(t, this.affine, this.#kernel());
  }

  /** `quantizeTensor` codes and the scales (and asymmetric zero points). */
  protected codes(t: Tensor<"float32">): Pick<EncodedWeights, "codes" | "tables"> {
    const codes = quantizeTensor(t, this.affine, this.#kernel()) as EncodedWeights["codes"];
    const p = this.affine;
    return {
      codes,
      tables: p.symmetric ? { scale: p.scale.slice() } : { scale: p.scale.slice(), zeroPoint: p.zeroPoint.slice() },
    };
  }

  /** `dequantizeTensor` with the stored scales (and zero points). */
  protected values(e: EncodedWeights): Tensor<"float32"> {
    const p = this.affine, n = p.scale.length;
    const scale = this.table(e, "scale", Float32Array, n);
    const zeroPoint = p.symmetric ? p.zeroPoint : this.table(e, "zeroPoint", Int32Array, n);
    return dequantizeTensor(e.codes, { ...p, scale, zeroPoint }, { name: this.name });
  }

  /** `bits` per code plus a float32 scale per slot (and a `bits`-bit zero point per slot when asymmetric). */
  bitsPerWeight(): number {
    const p = this.affine, slots = p.scale.length;
    let n = 1;
    for (const d of this.shape) n *= d;
    return p.bits + (slots * 32 + (p.symmetric ? 0 : slots * p.bits)) / n;
  }

  /** The recipe with the fitted shape and first scales. */
  toString(): string {
    return `${this.fitted.toString()} on ${this.name} [${this.shape}]`;
  }
}

/**
 * Rebuild a uniform quantizer from {@link QuantizerBuilder.toRecipe}'s JSON (each setting validated as the builder
 * methods do; `INVALID_ARGUMENT` for a recipe of another kind).
 *
 * @example
 * ```ts
 * import { quantizer, uniformFromRecipe } from "./quantizer.ts";
 * import { percentile } from "./calibrate/percentile.ts";
 * const q = quantizer().uint(4).asymmetric().perChannel(1).calibrate(percentile({ percentile: 99 }));
 * const back = uniformFromRecipe(JSON.parse(JSON.stringify(q.toRecipe())));
 * if (back.toString() !== q.toString()) throw new Error(back.toString());
 * ```
 */
export function uniformFromRecipe(recipe: WeightQuantizerRecipe): QuantizerBuilder {
  const c = recipeConfig(recipe, "uniform");
  let q = quantizer();
  q = c.signed === false ? q.uint(c.bits as number) : q.int(c.bits as number);
  q = c.symmetric === false ? q.asymmetric() : q.symmetric((c.range ?? "restricted") as "restricted" | "full");
  const g = (c.granularity ?? { kind: "tensor" }) as Granularity;
  if (g.kind === "channel") q = q.perChannel(g.axis);
  else if (g.kind === "group") q = q.perGroup(g.groupSize, g.axis);
  else if (g.kind !== "tensor") {
    throw new QuantlabError("INVALID_ARGUMENT", `uniform recipe: unknown granularity ${JSON.stringify(g)}`);
  }
  q = q.rounding((c.rounding ?? "nearest-even") as RoundingMode, { seed: (c.seed ?? 0) as number });
  if (c.calibrator !== undefined) q = q.calibrate(calibratorFromRecipe(c.calibrator as CalibratorRecipe));
  if (c.dynamic) q = q.dynamic(c.dynamic as DynamicMode);
  return q;
}

/**
 * Start a uniform quantizer recipe: signed 8-bit, symmetric restricted range,
 * per-tensor, nearest-even rounding, static min-max calibration.
 *
 * @example
 * ```ts
 * import { quantizer } from "./quantizer.ts";
 * const { values } = quantizer().int(8).fakeQuantize([0.5, -1, 0.25]);
 * if (values.data[1] !== -1) throw new Error("bad");
 * ```
 */
export function quantizer(): QuantizerBuilder {
  return new QuantizerBuilder();
}

function isSingle(x: FloatInput | Iterable<FloatInput>): x is FloatInput {
  if (x instanceof Tensor || x instanceof Float32Array) return true;
  if (Array.isArray(x)) return x.length === 0 || typeof x[0] === "number";
  return false;
}

function shaped(x: FloatInput, shape: readonly number[] | undefined, name: string): Tensor<"float32"> {
  const t = asFloatTensor(x, name);
  return shape ? t.reshape(shape) : t;
}

function minMaxParams(t: Tensor<"float32">, scheme: QuantScheme, g: Granularity, name: string): QuantParams {
  if (t.size === 0) {
    throw new QuantlabError(
      "EMPTY_TENSOR",
      `${name}: tensor of shape [${t.shape}] is empty; expected at least one element`,
    );
  }
  const r = resolveGranularity(g, t.shape, name);
  const { min, max } = slotMinMax(t.data, t.shape, r.granularity, r.slots, undefined, name); // throws NON_FINITE
  return paramsFromRange(min, max, scheme, r.granularity, name);
}
