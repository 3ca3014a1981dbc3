import assert from "node:assert";
import { lloydMax, lloydRandomInit, quantileInit } from "../../lib/nonuniform/lloyd_max.ts";
import { sortedSlot } from "../../lib/nonuniform/sorted_slot.ts";
import { nonUniform } from "../../lib/nonuniform/nonuniform_quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { gaussianQuantiles, loadFixture } from "./helpers.ts";

function nonIncreasing(h: Float64Array, what: string): void {
  for (let i = 1; i < h.length; i++) {
    assert.ok(h[i] <= h[i - 1] * (1 + 1e-12) + 1e-300, `${what}: error rose at iteration ${i}: ${h[i - 1]} -> ${h[i]}`);
  }
}

Deno.test("Lloyd-Max on U(-1,1) gives uniform levels (2 and 3 bits)", () => {
  // evenly spaced points stand in for the continuous uniform distribution
  const n = 1 << 16;
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = -1 + (2 * i + 1) / n;
  for (const bits of [2, 3]) {
    const k = 2 ** bits;
    const expected = Array.from({ length: k }, (_, j) => -1 + (2 * j + 1) / k);
    // from a seeded random start, so the iteration itself has to get there
    const r = lloydMax(sortedSlot(x.slice()), k, { init: "random", seed: 3, maxIterations: 100000 });
    assert.ok(r.converged, `bits ${bits}: did not converge in ${r.iterations}`);
    for (let j = 0; j < k; j++) {
      assert.ok(
        Math.abs(r.levels[j] - expected[j]) < 1e-3,
        `bits ${bits} level ${j}: ${r.levels[j]} vs ${expected[j]}`,
      );
    }
    nonIncreasing(r.history, `uniform ${bits} bits`);
  }
  // on random U(-1,1) samples the levels are uniform up to sampling error
  const rng = new Prng(11);
  const u = new Float32Array(200_000);
  for (let i = 0; i < u.length; i++) u[i] = 2 * rng.nextFloat() - 1;
  const lv = nonUniform().levels("lloyd-max").bits(2).fit(u).levelsOf(0);
  assert.deepStrictEqual(Array.from(lv, (v) => Math.round(v * 100) / 100), [-0.75, -0.25, 0.25, 0.75]);
});

Deno.test("Lloyd-Max on Gaussian data approaches Max (1960) tables", () => {
  const x = gaussianQuantiles(1 << 17);
  // Max, "Quantizing for minimum distortion" (1960), Table I (positive half, units of sigma)
  const max1960: Record<number, number[]> = {
    1: [0.7979],
    2: [0.4528, 1.510],
    3: [0.2451, 0.7560, 1.344, 2.152],
    4: [0.1284, 0.3881, 0.6568, 0.9424, 1.256, 1.618, 2.069, 2.733],
  };
  for (const bits of [1, 2, 3, 4]) {
    const k = 2 ** bits;
    const r = lloydMax(sortedSlot(x.slice()), k, { maxIterations: 200000 });
    assert.ok(r.converged, `bits ${bits}`);
    const pos = Array.from(r.levels.subarray(k / 2));
    max1960[bits].forEach((v, j) => {
      assert.ok(Math.abs(pos[j] - v) < 2e-3, `bits ${bits} level ${j}: ${pos[j]} vs Max ${v}`);
      assert.ok(Math.abs(r.levels[k / 2 - 1 - j] + v) < 2e-3, `bits ${bits} negative level ${j}`);
    });
  }
});

Deno.test("Lloyd-Max agrees with scikit-learn KMeans (1-D, same init) on the committed fixture", () => {
  const fx = loadFixture();
  for (const c of fx.kmeans) {
    const data = Float32Array.from(fx.data[c.data]);
    const k = 2 ** c.bits;
    const slot = sortedSlot(Float64Array.from(data));
    const init = quantileInit(slot, k);
    init.forEach((v, j) =>
      assert.ok(Math.abs(v - c.init[j]) <= 1e-12 * Math.max(1, Math.abs(v)), `${c.data}/${c.bits}: init ${j}`)
    );
    const r = lloydMax(slot, k, { maxIterations: 100000 });
    assert.ok(r.converged);
    r.levels.forEach((v, j) => {
      assert.ok(Math.abs(v - c.centers[j]) <= 1e-9, `${c.data}/${c.bits} level ${j}: ${v} vs sklearn ${c.centers[j]}`);
    });
    const sse = r.history[r.history.length - 1];
    assert.ok(Math.abs(sse - c.inertia) <= 1e-9 * c.inertia, `${c.data}/${c.bits}: sse ${sse} vs inertia ${c.inertia}`);
    // sklearn counts the final (unchanged) assignment pass as an iteration too
    assert.ok(Math.abs(r.iterations - c.n_iter) <= 1, `${c.data}/${c.bits}: ${r.iterations} vs ${c.n_iter} iterations`);
    // the builder path gives the same float32 codebook; explicit init levels too
    const fq = nonUniform().bits(c.bits).fit(data);
    assert.deepStrictEqual(Array.from(fq.codebook), c.centers.map(Math.fround));
    const fq2 = nonUniform().bits(c.bits).init(c.init).fit(data);
    assert.deepStrictEqual(Array.from(fq2.codebook), c.centers.map(Math.fround));
  }
});

Deno.test("Lloyd-Max objective never increases; seeds are deterministic; tolerance stops early", () => {
  const rng = new Prng(5);
  const x = new Float64Array(5000);
  for (let i = 0; i < x.length; i++) x[i] = i % 3 === 0 ? rng.nextLaplace(0.3) : rng.nextNormal() + 2;
  for (const seed of [0, 1, 2, 3]) {
    for (const k of [2, 8, 32]) {
      const r = lloydMax(sortedSlot(x.slice()), k, { init: "random", seed });
      nonIncreasing(r.history, `seed ${seed} k ${k}`);
      assert.ok(r.history.length === r.iterations + 1);
    }
  }
  const s = sortedSlot(x.slice());
  assert.deepStrictEqual(lloydRandomInit(s, 16, 9), lloydRandomInit(s, 16, 9));
  assert.notDeepStrictEqual(lloydRandomInit(s, 16, 9), lloydRandomInit(s, 16, 10));
  const a = lloydMax(s, 16, { init: "random", seed: 9 }), b = lloydMax(s, 16, { init: "random", seed: 9 });
  assert.deepStrictEqual(a.levels, b.levels);
  const full = lloydMax(s, 64);
  const early = lloydMax(s, 64, { tolerance: 1e-3 });
  assert.ok(early.iterations < full.iterations, `${early.iterations} vs ${full.iterations}`);
  assert.ok(!early.converged || early.iterations === full.iterations);
  // more distinct values than levels needed: fewer values than levels are reproduced exactly
  const few = lloydMax(sortedSlot(new Float64Array([3, 1, 2])), 4);
  assert.deepStrictEqual(Array.from(few.levels), [1, 2, 3, 3]);
  assert.strictEqual(few.history[few.history.length - 1], 0);
});
