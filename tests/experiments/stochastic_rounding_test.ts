import assert from "node:assert/strict";
import { meanRoundingError, stochasticRounding, trainSoftmax } from "../../lib/experiments/stochastic_rounding.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { trainTestSplit } from "../../lib/data/batching.ts";

Deno.test("stochastic rounding: nearest has a fixed bias, stochastic is within 5 sigma of 0", () => {
  const f = Math.fround(5.3) - 5;
  assert.ok(Math.abs(meanRoundingError(5.3, 1000, "nearest-even", 0) + f) < 1e-12);
  for (const seed of [1, 2, 3]) {
    const n = 200000;
    const sigma = Math.sqrt(f * (1 - f) / n);
    assert.ok(Math.abs(meanRoundingError(5.3, n, "stochastic", seed)) < 5 * sigma);
  }
});

Deno.test("stochastic rounding: float training learns; 6-bit nearest cannot move from zero", async () => {
  const { train, test } = trainTestSplit(await loadDigits(), { seed: 0 });
  const f = trainSoftmax(train, test, { rounding: "nearest-even", epochs: 5 });
  assert.equal(f.length, 6);
  assert.ok(f[5].accuracy > 0.9 && f[5].loss < f[0].loss);
  // With a 6-bit grid over [-2, 2] (step 0.065), lr 0.05 updates are below half a step: nothing changes.
  const n6 = trainSoftmax(train, test, { bits: 6, rounding: "nearest-even", epochs: 2 });
  assert.ok(n6.every((e) => e.changed === 0));
  const s6 = trainSoftmax(train, test, { bits: 6, rounding: "stochastic", epochs: 2 });
  assert.ok(s6[2].changed > 0 && s6[2].accuracy > 0.5);
  assert.deepEqual(
    trainSoftmax(train, test, { bits: 8, rounding: "stochastic", epochs: 1, seed: 3 }),
    trainSoftmax(train, test, { bits: 8, rounding: "stochastic", epochs: 1, seed: 3 }),
  );
});

Deno.test("stochastic rounding: the experiment shows stochastic training beating nearest at 8 bits", async () => {
  const r = await stochasticRounding({ quick: true, progress: "none" });
  assert.ok(r.numbers["train.stochastic8"] > r.numbers["train.nearest8"] + 0.2, r.findingsText());
  assert.ok(r.numbers["train.stochastic8"] > 0.85);
  assert.ok(r.numbers["bias.stochastic"] < 0.05 * r.numbers["bias.nearest"]);
  assert.ok(r.findings.every((f) => f.holds), r.findingsText());
});
