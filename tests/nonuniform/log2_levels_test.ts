import assert from "node:assert";
import { fitLog2Scale, log2Levels } from "../../lib/nonuniform/log2_levels.ts";
import { cellEnds, sortedSlot, sortedSSE } from "../../lib/nonuniform/sorted_slot.ts";
import { nonUniform } from "../../lib/nonuniform/nonuniform_quantizer.ts";
import { mseOf, normal, throwsCode } from "./helpers.ts";

function isPow2(v: number): boolean {
  const e = Math.log2(Math.abs(v));
  return Number.isInteger(e);
}

Deno.test("log2 levels are ±alpha 2^-k plus zero; power-of-two scale makes them exact powers of two", () => {
  assert.deepStrictEqual(Array.from(log2Levels(2, 2)), [-2, 0, 2]);
  assert.strictEqual(log2Levels(1, 8).length, 255);
  const w = normal(4000, 2, 0.3);
  for (const bits of [2, 3, 4, 8]) {
    for (const scale of ["max", "mse"] as const) {
      const fq = nonUniform().levels("log2").bits(bits).scale(scale).fit(w);
      const alpha = fq.params[0];
      const lv = fq.levelsOf(0);
      assert.strictEqual(lv.length, 2 ** bits - 1);
      assert.strictEqual(lv.filter((v) => v === 0).length, 1, "exactly one zero level");
      for (const v of lv) if (v !== 0) assert.ok(isPow2(v / alpha), `${v} / ${alpha}`);
      const p2 = nonUniform().levels("log2").bits(bits).scale(scale, { powerOfTwo: true }).fit(w);
      for (const v of p2.levelsOf(0)) if (v !== 0) assert.ok(isPow2(v), `${scale}: ${v} is not a power of two`);
      // symmetric
      for (let j = 0; j < lv.length; j++) assert.ok(lv[j] + lv[lv.length - 1 - j] === 0, `level ${j}`);
    }
  }
  const fq = nonUniform().levels("log2").bits(3).scale("max").fit([-0.75, 0.5, 0.1]);
  assert.strictEqual(fq.params[0], 0.75);
  assert.strictEqual(nonUniform().levels("log2").scale("max", { powerOfTwo: true }).fit([-0.75, 0.5]).params[0], 1);
  throwsCode(() => nonUniform().levels("log2").bits(1), "BITS_OUT_OF_RANGE");
  throwsCode(() => nonUniform().bits(1).levels("log2"), "BITS_OUT_OF_RANGE");
  throwsCode(() => log2Levels(1, 9), "BITS_OUT_OF_RANGE");
});

Deno.test("log2 MSE scale is no worse than max and close to a dense search", () => {
  const w = new Float32Array(normal(20000, 6));
  w[0] = 9; // an outlier makes max|r| a poor scale
  const slot = sortedSlot(Float64Array.from(w));
  const sse = (a: number, bits: number) => {
    const lv = log2Levels(a, bits);
    return sortedSSE(slot, lv, cellEnds(slot.sorted, lv));
  };
  for (const bits of [2, 3, 4]) {
    const aMse = fitLog2Scale(slot, bits, "mse", false);
    const aMax = fitLog2Scale(slot, bits, "max", false);
    assert.strictEqual(aMax, 9);
    assert.ok(sse(aMse, bits) <= sse(aMax, bits));
    let best = Infinity;
    for (let i = 0; i <= 4000; i++) best = Math.min(best, sse(9 * 2 ** (-4 * i / 4000), bits));
    assert.ok(sse(aMse, bits) <= best * (1 + 1e-3), `bits ${bits}: ${sse(aMse, bits)} vs dense ${best}`);
    // and the fitted quantizer's fake-quantized error matches the sorted-data objective
    const fq = nonUniform().levels("log2").bits(bits).fit(w);
    const direct = mseOf(w, fq.fakeQuantize(w).data) * w.length;
    assert.ok(Math.abs(direct - sse(fq.params[0], bits)) <= 1e-3 * direct, `${direct}`);
  }
});

Deno.test("log2 with max scale: error is non-increasing in bits (levels nest)", () => {
  const w = normal(10000, 9);
  let prev = Infinity;
  for (const bits of [2, 3, 4, 5, 6, 7, 8]) {
    const fq = nonUniform().levels("log2").bits(bits).scale("max").fit(w);
    const e = mseOf(w, fq.fakeQuantize(w).data);
    assert.ok(e <= prev, `bits ${bits}: ${e} > ${prev}`);
    prev = e;
  }
  // all-zero data: alpha 1, everything on the zero level
  const z = nonUniform().levels("log2").bits(3).fit([0, 0, 0]);
  assert.strictEqual(z.params[0], 1);
  assert.deepStrictEqual(z.fakeQuantize([0, 0]).toArray(), [0, 0]);
});
