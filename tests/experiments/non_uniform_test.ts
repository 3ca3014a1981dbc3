import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { levelMethods, nonUniformComparison } from "../../lib/experiments/non_uniform.ts";
import { sample } from "../../lib/experiments/sources.ts";
import {
  describeWeight,
  modelWeights,
  pickWeight,
  syntheticWeights,
  weightStats,
} from "../../lib/experiments/weights.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { toTensor } from "../../lib/onnx/tensor_data.ts";
import { sqnr } from "../../lib/quant/metrics.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

const models = new URL("../fixtures/models/", import.meta.url);
const resnet = await Deno.readFile(new URL("resnet8_op13.onnx", models));
const poolnet = await Deno.readFile(new URL("poolnet_op17.onnx", models));

Deno.test("weights: modelWeights takes Conv/Gemm/MatMul weights, output channels first", () => {
  const all = modelWeights(resnet, "ResNet-8");
  assert.equal(all.length, 10);
  assert.ok(all.every((w) => !w.synthetic && w.source === "ResNet-8"));
  const conv = all.find((w) => w.name === "layer3.conv2.weight")!;
  assert.deepEqual(conv.tensor.shape, [32, 32, 3, 3]);
  assert.equal(conv.kind, "conv");
  assert.equal(all.find((w) => w.name === "fc.weight")!.kind, "linear");
  // poolnet: a MatMul weight [in = 32, out = 10] is transposed to [10, 32]
  const pw = modelWeights(OnnxModel.decode(poolnet));
  const mm = pw.find((w) => w.name === "w_out")!;
  assert.deepEqual(mm.tensor.shape, [10, 32]);
  const raw = toTensor(OnnxModel.decode(poolnet).graph.initializer.find((t) => t.name === "w_out")!);
  const r = raw.data as Float32Array;
  for (let i = 0; i < 32; i++) for (let j = 0; j < 10; j++) assert.equal(mm.tensor.data[j * 32 + i], r[i * 10 + j]);
  // Gemm with transB = 1 keeps [out, in]
  assert.deepEqual(pw.find((w) => w.name === "fc.weight")!.tensor.shape, [32, 784]);
});

Deno.test("weights: pickWeight picks the largest or a named weight and names the choices on error", () => {
  assert.equal(pickWeight(resnet).name, "layer3.conv2.weight");
  assert.equal(pickWeight(poolnet).name, "fc.weight");
  assert.equal(pickWeight(resnet, "fc.weight").tensor.size, 320);
  assert.throws(() => pickWeight(resnet, "nope"), (e: unknown) => {
    assert.ok(e instanceof QuantlabError && e.code === "INVALID_ARGUMENT");
    assert.match(e.message, /nope.*layer3\.conv2\.weight \[32,32,3,3\]/);
    return true;
  });
  assert.throws(() => pickWeight(new Uint8Array(0)), QuantlabError);
});

Deno.test("weights: synthetic weights are seeded, labelled and have the asked shape and spread", () => {
  const a = syntheticWeights([64, 256], { seed: 3, spread: 0 });
  assert.deepEqual(a.tensor.data, syntheticWeights([64, 256], { seed: 3, spread: 0 }).tensor.data);
  assert.ok(a.synthetic && /^SYNTHETIC/.test(describeWeight(a)));
  const s = weightStats(a.tensor.data);
  assert.ok(Math.abs(s.std - 0.1) < 0.003 && Math.abs(s.kurtosis - 3) < 0.2, JSON.stringify(s));
  const l = weightStats(syntheticWeights([64, 256], { seed: 3, spread: 0, distribution: "laplacian" }).tensor.data);
  assert.ok(Math.abs(l.kurtosis - 6) < 0.8, JSON.stringify(l));
  assert.match(describeWeight(pickWeight(resnet)), /real trained weights/);
  assert.throws(() => syntheticWeights([5]), QuantlabError);
  assert.throws(() => syntheticWeights([2, 2], { std: 0 }), QuantlabError);
});

Deno.test("non-uniform: Lloyd-Max matches Max's (1960) optimal Gaussian quantizer errors", () => {
  // Max, "Quantizing for minimum distortion", Table I: MSE of the optimal N-level quantizer of N(0, 1).
  const max1960: Record<number, number> = { 2: 0.1175, 3: 0.03454, 4: 0.009497 };
  const x = Tensor.from(sample("gaussian", 1 << 16, 11));
  const lm = levelMethods().find((m) => m.name.startsWith("Lloyd-Max"))!;
  for (const b of [2, 3, 4]) {
    const s = sqnr(x, lm.run(x, b).values);
    const expected = -10 * Math.log10(max1960[b]);
    assert.ok(Math.abs(s - expected) < 0.15, `${b} bits: ${s} vs ${expected}`);
  }
});

Deno.test("non-uniform: every method's levels have the documented count and error falls with bits", () => {
  const x = Tensor.from(sample("laplacian", 4096, 2));
  for (const m of levelMethods()) {
    let prev = -Infinity;
    for (const b of [2, 3, 4]) {
      const r = m.run(x, b);
      assert.ok(r.levels.length <= m.levels(b), `${m.name} ${b}: ${r.levels.length} levels`);
      const s = sqnr(x, r.values);
      assert.ok(s > prev, `${m.name}: ${b}-bit SQNR ${s} not above ${prev}`);
      prev = s;
      for (const v of r.values.data) assert.ok(r.levels.includes(v), `${m.name}: ${v} is not a level`);
    }
  }
});

Deno.test("non-uniform: the quick experiment shows learned levels at least as good as uniform", async () => {
  const r = await nonUniformComparison({ quick: true, progress: "none" });
  assert.equal(r.table("errors").rows.length, 15);
  assert.equal(r.charts.length, 8);
  for (const id of ["sqnr-gaussian", "sqnr-laplacian", "sqnr-weights"]) assert.ok(r.chart(id));
  const hist = JSON.stringify(r.chart("levels-lloyd-max-learned").spec);
  assert.ok(hist.includes("quantization level"), "levels drawn over the histogram");
  for (const d of ["gaussian", "laplacian", "weights"]) {
    for (const b of [2, 3, 4]) {
      const lm = r.numbers[`sqnr.${d}.lloyd-max-learned.${b}`];
      for (const m of ["uniform-min-max", "uniform-mse-clip", "power-of-two", "binary-code"]) {
        assert.ok(lm >= r.numbers[`sqnr.${d}.${m}.${b}`] - 1e-6, `${d} ${b}: Lloyd-Max below ${m}`);
      }
      if (b > 2) assert.ok(lm > r.numbers[`sqnr.${d}.lloyd-max-learned.${b - 1}`] + 4);
    }
  }
  assert.ok(r.findings.length === 4 && r.findings[0].holds, r.findingsText());
  assert.match(r.toString(), /SYNTHETIC conv weight/);
});

Deno.test("non-uniform: with a model the weights are the model's, labelled as real", async () => {
  const r = await nonUniformComparison({
    quick: true,
    progress: "none",
    model: resnet,
    modelLabel: "ResNet-8",
    layers: ["layer2.conv2.weight"],
  });
  assert.match(r.toString(), /"layer2\.conv2\.weight" \[16, 16, 3, 3\] = 2304 weights of ResNet-8 \(real trained/);
  assert.doesNotMatch(r.toString(), /SYNTHETIC/);
});
