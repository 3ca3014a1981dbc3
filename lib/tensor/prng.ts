/**
 * Seeded pseudo-random numbers: **xoshiro128\*\*** (Blackman & Vigna, 2018),
 * 32-bit output, period 2^128 - 1.
 *
 * Seeds: any safe integer (finite, integral, `|seed| <= 2^53 - 1`); anything else is a `QuantlabError`
 * (`INVALID_ARGUMENT`) naming the seed, never a silent truncation. The whole seed selects the stream:
 * - `0 <= seed < 2^32`: the 128-bit state comes from **SplitMix32** (Steele, Lea & Flood's SplitMix with 32-bit
 *   constants) started at the seed, as it always has (committed fixtures and reference accuracies depend on it);
 * - any other seed (at least 2^32, or negative): the state is two outputs of **SplitMix64** started at the seed's
 *   64-bit two's-complement value, so 0, 2^32, 2^40 and -1 give four different streams.
 *
 * Derived sub-streams (`seed + 1`, per-epoch orders) keep the high part of the seed ({@link deriveSeed}).
 * Same seed, same sequence, on every platform.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/**
 * Throw `INVALID_ARGUMENT` naming `what` unless `seed` is a safe integer (finite, integral, `|seed| <= 2^53 - 1`):
 * larger doubles cannot be told apart from their neighbours, so they would silently share a stream.
 *
 * @example
 * ```ts
 * import { checkSeed } from "./prng.ts";
 * checkSeed(2 ** 40); // passes
 * try {
 *   checkSeed(0.5, "rounding seed");
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("rounding seed must be an integer")) throw e;
 * }
 * ```
 */
export function checkSeed(seed: number, what = "seed"): void {
  if (!Number.isSafeInteger(seed)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${what} must be an integer with |${what}| <= 2^53 - 1 (a safe integer), got ${seed}`,
    );
  }
}

/**
 * A seed derived from `seed` by transforming its low 32 bits with `low` (the result taken as unsigned 32 bits) and
 * keeping the rest: for `0 <= seed < 2^32` this is exactly `low(seed) >>> 0` (the historical derivation), and seeds
 * that differ above bit 32 still give different derived seeds.
 *
 * @example
 * ```ts
 * import { deriveSeed } from "./prng.ts";
 * if (deriveSeed(5, (lo) => lo ^ 1) !== 4) throw new Error("bad");
 * if (deriveSeed(2 ** 32 + 5, (lo) => lo ^ 1) !== 2 ** 32 + 4) throw new Error("bad high part");
 * ```
 */
export function deriveSeed(seed: number, low: (low32: number) => number, what = "seed"): number {
  checkSeed(seed, what);
  const lo = seed >>> 0;
  return (low(lo) >>> 0) + (seed - lo);
}

/** Two SplitMix64 outputs from the 64-bit two's complement of `seed`, as four 32-bit words. */
function splitmix64Words(seed: number): [number, number, number, number] {
  const M = (1n << 64n) - 1n;
  let s = BigInt.asUintN(64, BigInt(seed));
  const out: number[] = [];
  for (let k = 0; k < 2; k++) {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z = z ^ (z >> 31n);
    out.push(Number(z >> 32n) | 0, Number(z & 0xffffffffn) | 0);
  }
  return out as [number, number, number, number];
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A seeded xoshiro128** generator.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * const a = new Prng(42), b = new Prng(42);
 * if (a.nextUint32() !== b.nextUint32()) throw new Error("not deterministic");
 * const u = a.nextFloat();
 * if (!(u >= 0 && u < 1)) throw new Error("out of range");
 * ```
 */
export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spare = NaN;

  /**
   * Seed with any safe integer (see the module doc: the whole seed selects the stream; `INVALID_ARGUMENT` for NaN,
   * fractions, infinities and integers beyond 2^53 - 1).
   */
  constructor(seed: number) {
    checkSeed(seed, "Prng seed");
    if (seed >= 0 && seed < 4294967296) {
      const st = { s: seed };
      this.#s0 = splitmix32(st);
      this.#s1 = splitmix32(st);
      this.#s2 = splitmix32(st);
      this.#s3 = splitmix32(st);
    } else {
      [this.#s0, this.#s1, this.#s2, this.#s3] = splitmix64Words(seed);
    }
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** Next uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number {
    const s0 = this.#s0, s1 = this.#s1, s2 = this.#s2, s3 = this.#s3;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    let n2 = s2 ^ s0;
    let n3 = s3 ^ s1;
    const n1 = s1 ^ n2;
    const n0 = s0 ^ n3;
    n2 ^= t;
    n3 = rotl(n3, 11);
    this.#s0 = n0;
    this.#s1 = n1;
    this.#s2 = n2;
    this.#s3 = n3;
    return r >>> 0;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() * 2.3283064365386963e-10;
  }

  /** Uniform integer in [0, n) (n up to 2^32), without modulo bias. */
  nextInt(n: number): number {
    if (n <= 1) return 0;
    const limit = Math.floor(4294967296 / n) * n;
    let x: number;
    do x = this.nextUint32(); while (x >= limit);
    return x % n;
  }

  /** Standard normal deviate (Marsaglia polar method). */
  nextNormal(): number {
    if (!Number.isNaN(this.#spare)) {
      const v = this.#spare;
      this.#spare = NaN;
      return v;
    }
    let u: number, v: number, s: number;
    do {
      u = 2 * this.nextFloat() - 1;
      v = 2 * this.nextFloat() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt(-2 * Math.log(s) / s);
    this.#spare = v * m;
    return u * m;
  }

  /** Fill `out` with uniform floats in [0, 1). */
  fillUniform(out: Float32Array | Float64Array): typeof out {
    for (let i = 0; i < out.length; i++) out[i] = this.nextFloat();
    return out;
  }

  /** Fill `out` with normal deviates of the given mean and standard deviation. */
  fillNormal(out: Float32Array | Float64Array, mean = 0, std = 1): typeof out {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.nextNormal();
    return out;
  }

  /** Laplace deviate with location 0 and scale `b`. */
  nextLaplace(b = 1): number {
    const u = this.nextFloat() - 0.5;
    return -b * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  }

  /** Shuffle `arr` in place (Fisher-Yates). */
  shuffle<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
