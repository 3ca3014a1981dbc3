import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { cosineSimilarity, maxAbsError, mse, sqnr } from "../../lib/quant/metrics.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

Deno.test("closed forms", () => {
  assert.equal(mse([1, 2, 3], [1, 2, 3]), 0);
  assert.equal(mse([0, 0], [3, 4]), 12.5);
  assert.equal(maxAbsError([1, -2, 3], [1.5, -4, 3]), 2);
  assert.equal(sqnr([1, 2], [1, 2]), Infinity);
  assert.ok(Math.abs(sqnr([3, 4], [3, 3]) - 10 * Math.log10(25)) < 1e-12);
  assert.ok(Math.abs(cosineSimilarity([1, 2], [-1, -2]) + 1) < 1e-12);
  assert.ok(Math.abs(cosineSimilarity([1, 0], [0, 5])) < 1e-12);
  assert.ok(Number.isNaN(cosineSimilarity([0, 0], [1, 1])));
  // float64 accumulation: a long sum stays accurate
  const n = 1 << 20;
  const a = new Float32Array(n).fill(1), b = new Float32Array(n).fill(1.5);
  assert.equal(mse(a, b), 0.25);
  assert.equal(mse(Tensor.from(a), Tensor.from(b)), 0.25);
});

Deno.test("SQNR of uniform quantization grows ~6.02 dB per bit on Gaussian and Laplacian data", () => {
  const rng = new Prng(10);
  const gauss = rng.fillNormal(new Float32Array(50000)) as Float32Array;
  const lap = Float32Array.from({ length: 50000 }, () => rng.nextLaplace());
  for (const x of [gauss, lap]) {
    const s = [6, 8, 10, 12].map((b) => sqnr(x, quantizer().int(b).fakeQuantize(x).values));
    for (let i = 1; i < s.length; i++) {
      const perBit = (s[i] - s[i - 1]) / 2;
      assert.ok(Math.abs(perBit - 6.02) < 0.3, `dB per bit ${perBit}`);
    }
  }
});

Deno.test("bad input: length mismatch and empty tensors", () => {
  for (const fn of [mse, sqnr, maxAbsError, cosineSimilarity]) {
    assert.throws(() => fn([1, 2], [1]), (e: unknown) => e instanceof QuantlabError && e.code === "SHAPE_MISMATCH");
    assert.throws(() => fn([], []), (e: unknown) => e instanceof QuantlabError && e.code === "EMPTY_TENSOR");
  }
});
