import assert from "node:assert/strict";
import { QuantlabError } from "../../../lib/errors.ts";
import { calibrate } from "../../../lib/quant/calibrate/mod.ts";
import type { Calibrator } from "../../../lib/quant/calibrate/observer.ts";
import { calibratorFromRecipe, calibratorRecipe } from "../../../lib/quant/calibrate/recipe.ts";
import { Prng } from "../../../lib/tensor/prng.ts";
import { Tensor } from "../../../lib/tensor/tensor.ts";

const SCHEME = { bits: 4, signed: true, symmetric: false, range: "full" } as const;

Deno.test("every calibrator round-trips through its JSON recipe: same name, settings and ranges", () => {
  const all: Calibrator[] = [
    calibrate.minMax(),
    calibrate.movingAverage({ averagingConstant: 0.5 }),
    calibrate.percentile(),
    calibrate.percentile({ percentile: 99.5, lowerPercentile: 1, bins: 512 }),
    calibrate.entropy(),
    calibrate.entropy({ bins: 512, quantizedBins: 16, startBin: 32 }),
    calibrate.mse({ bins: 256, grid: 20 }),
    calibrate.aciq(),
    calibrate.aciq({ prior: "gaussian" }),
    calibrate.aciq({ bins: 512 }),
  ];
  const x = Tensor.from(new Prng(7).fillNormal(new Float32Array(4000)) as Float32Array, [4, 1000]);
  for (const c of all) {
    const r = calibratorRecipe(c);
    assert.equal(r.name, c.name);
    const back = calibratorFromRecipe(JSON.parse(JSON.stringify(r)));
    assert.equal(back.toString(), c.toString());
    assert.deepEqual(back.toRecipe!(), r);
    const a = c.create({ scheme: SCHEME, axis: 0 }), b = back.create({ scheme: SCHEME, axis: 0 });
    a.observe(x);
    b.observe(x);
    assert.deepEqual(a.range(), b.range(), c.toString());
  }
});

Deno.test("calibrator recipes: unknown names, bad options and recipe-less calibrators give typed errors", () => {
  const code = (fn: () => unknown, c: string) =>
    assert.throws(fn, (e: unknown) => e instanceof QuantlabError && e.code === c);
  code(() => calibratorFromRecipe({ name: "kl", options: {} }), "INVALID_ARGUMENT");
  code(() => calibratorFromRecipe({ name: "toString", options: {} }), "INVALID_ARGUMENT");
  code(() => calibratorFromRecipe(null as never), "INVALID_ARGUMENT");
  code(() => calibratorFromRecipe({ name: "percentile", options: { percentile: 120 } }), "INVALID_ARGUMENT");
  const handMade: Calibrator = { name: "mine", create: calibrate.minMax().create, toString: () => "mine()" };
  code(() => calibratorRecipe(handMade), "UNSUPPORTED");
});
