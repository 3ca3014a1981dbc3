/**
 * Seeded pseudo-random numbers: **xoshiro128\*\*** (Blackman & Vigna, 2018),
 * 32-bit output, period 2^128 - 1, state seeded from a 32-bit seed by
 * **SplitMix32** (Steele, Lea & Flood's SplitMix with 32-bit constants).
 *
 * Same seed, same sequence, on every platform.
 *
 * @module
 */

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

  /** Seed with any 32-bit integer (other numbers are truncated with `>>> 0`). */
  constructor(seed: number) {
    const st = { s: seed >>> 0 };
    this.#s0 = splitmix32(st);
    this.#s1 = splitmix32(st);
    this.#s2 = splitmix32(st);
    this.#s3 = splitmix32(st);
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
