import assert from "node:assert/strict";
import { erfc } from "../../lib/quant/calibrate/aciq_alpha.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { binaryTernaryComparison, extremeMethods, thresholdSweep } from "../../lib/experiments/binary_ternary.ts";
import { syntheticWeights } from "../../lib/experiments/weights.ts";
import { sqnr } from "../../lib/quant/metrics.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

const resnet = await Deno.readFile(new URL("../fixtures/models/resnet8_op13.onnx", import.meta.url));
const byName = (name: string) => extremeMethods().find((m) => m.name.startsWith(name))!;

Deno.test("binary/ternary: methods on a known tensor give the closed-form values, scales and sparsity", () => {
  // two output channels: [1.2, -2, 0.5] and [0.9, -0.4, 0]; mean|W| = 5 / 6, TWN delta = 0.7 * 5/6 = 0.5833
  const w = Tensor.from([1.2, -2, 0.5, 0.9, -0.4, 0], [2, 3]);
  const sign = byName("binary").run(w);
  assert.deepEqual(sign.values.toArray(), [1, -1, 1, 1, -1, 1]);
  const xnor = byName("XNOR").run(w);
  const a0 = Math.fround(3.7 / 3), a1 = Math.fround(1.3 / 3);
  assert.deepEqual(xnor.values.toArray(), [a0, -a0, a0, a1, -a1, a1]);
  assert.equal(xnor.bitsPerWeight, 1 + (2 * 32) / 6);
  const twn = byName("TWN").run(w);
  const a = Math.fround(4.1 / 3); // mean of |w| > delta: {1.2, 2, 0.9}
  assert.deepEqual(twn.values.toArray(), [a, -a, 0, a, 0, 0]);
  assert.equal(twn.sparsity, 0.5);
  assert.equal(twn.bitsPerWeight, 2 + 32 / 6);
  const ttq = byName("TTQ scales (Δ = 0.7").run(w);
  assert.deepEqual(ttq.values.toArray(), [Math.fround(1.05), -2, 0, Math.fround(1.05), 0, 0]);
  assert.deepEqual([ttq.scale, ttq.negativeScale], [Math.fround(1.05), 2]);
  // TTQ's paper threshold: 0.05 * max|W| = 0.1 keeps every non-zero weight
  assert.equal(byName("TTQ scales (Δ = 0.05").run(w).sparsity, 1 / 6);
});

Deno.test("binary/ternary: on Gaussian weights XNOR and TWN reach their closed-form SQNR", () => {
  // w ~ N(0, 1) per channel. XNOR: alpha = E|w| = sqrt(2/pi), MSE = 1 - 2/pi.
  // TWN: delta = 0.7 sqrt(2/pi); P = P(|w| > delta) = erfc(delta / sqrt 2); E[|w|; |w| > delta] = 2 phi(delta);
  // alpha = 2 phi(delta) / P; MSE = 1 - alpha * 2 phi(delta).
  const w = syntheticWeights([64, 2048], { seed: 4, spread: 0, std: 1 }).tensor;
  const xnor = sqnr(w, byName("XNOR").run(w).values);
  assert.ok(Math.abs(xnor - -10 * Math.log10(1 - 2 / Math.PI)) < 0.05, `XNOR ${xnor}`);
  const delta = 0.7 * Math.sqrt(2 / Math.PI);
  const p = erfc(delta / Math.SQRT2), m = 2 * Math.exp(-delta * delta / 2) / Math.sqrt(2 * Math.PI);
  const twnExpected = -10 * Math.log10(1 - (m / p) * m);
  const r = byName("TWN").run(w);
  assert.ok(Math.abs(sqnr(w, r.values) - twnExpected) < 0.05, `TWN ${sqnr(w, r.values)} vs ${twnExpected}`);
  assert.ok(Math.abs(r.sparsity - (1 - p)) < 0.005, `sparsity ${r.sparsity} vs ${1 - p}`);
});

Deno.test("binary/ternary: the threshold sweep's sparsity grows with the threshold", () => {
  const w = syntheticWeights([16, 256], { seed: 9 }).tensor;
  const s = thresholdSweep(w, [0.01, 0.3, 0.7, 1.2, 3]);
  for (let i = 1; i < s.length; i++) assert.ok(s[i].sparsity >= s[i - 1].sparsity);
  assert.ok(s[0].sparsity < 0.03 && s[4].sparsity > 0.95, JSON.stringify(s));
  // error-optimal threshold for bell-shaped weights is inside (0.3, 1.2), not at the ends
  assert.ok(s[2].sqnr > s[0].sqnr && s[2].sqnr > s[4].sqnr);
});

Deno.test("binary/ternary: the quick experiment's tables, charts and ordering of errors", async () => {
  const r = await binaryTernaryComparison({ quick: true, progress: "none" });
  const methods = extremeMethods().length;
  assert.equal(r.table("layers").rows.length, 3 * methods);
  assert.equal(r.table("summary").rows.length, methods);
  assert.deepEqual(r.charts.map((c) => c.title).length, 3);
  for (const id of ["sqnr-by-layer", "threshold-sqnr", "threshold-sparsity"]) assert.ok(r.chart(id));
  const n = r.numbers;
  assert.ok(n["mean.sqnr.sign"] < 0 && n["mean.sqnr.sign"] < n["mean.sqnr.xnor"]);
  assert.ok(n["mean.sqnr.xnor"] < n["mean.sqnr.twn"] && n["mean.sqnr.twn"] < n["mean.sqnr.int4"] - 8);
  assert.ok(n["mean.sqnr.ttq"] >= n["mean.sqnr.twn"] - 1e-9, "least-squares Wp/Wn are never worse than one alpha");
  assert.ok(n["mean.sparsity.twn"] > 0.3 && n["mean.sparsity.twn"] < 0.6);
  assert.ok(n["mean.sparsity.ttqMax"] < n["mean.sparsity.twn"]);
  for (const row of r.table("layers").rows) {
    if (String(row.method).startsWith("binary") || String(row.method).startsWith("XNOR")) {
      assert.equal(row.sparsity, 0);
    }
  }
  assert.match(r.toString(), /SYNTHETIC layers/);
});

Deno.test("binary/ternary: with a model every Conv/Gemm weight is used, or the layers asked for", async () => {
  const r = await binaryTernaryComparison({ quick: true, progress: "none", model: resnet, modelLabel: "ResNet-8" });
  assert.equal(r.table("layers").rows.length, 10 * extremeMethods().length);
  assert.match(r.toString(), /10 layers of ResNet-8 \(real trained weights\)/);
  const one = await binaryTernaryComparison({ progress: "none", model: resnet, layers: ["fc.weight"] });
  assert.equal(one.table("layers").rows.length, extremeMethods().length);
  await assert.rejects(
    () => binaryTernaryComparison({ progress: "none", model: resnet, layers: ["nope"] }),
    (e: unknown) => e instanceof QuantlabError && /nope.*fc\.weight/.test(e.message),
  );
});
