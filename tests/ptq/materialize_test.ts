import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { materializeQdq } from "../../lib/ptq/materialize.ts";
import { buildPlan } from "../../lib/ptq/policy.ts";
import type { QuantPlan } from "../../lib/ptq/plan.ts";
import type { QuantParams } from "../../lib/quant/params.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { b64f32, modelPath, reference } from "../onnx/_fixtures.ts";

/** Parameters for every observed activation and constant of a plan, from a fixed range. */
function fixedParams(plan: QuantPlan, lo = -1, hi = 3): Map<string, QuantParams> {
  const p = quantizer().uint(8).asymmetric().fit([lo, hi]).params;
  return new Map(plan.activations.filter((e) => !e.sharesWith).map((e) => [e.tensor, p]));
}

Deno.test("QDQ weights equal torch.fake_quantize_per_channel_affine bit for bit (every Conv/Gemm weight)", async () => {
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const plan = buildPlan(m, { weights: quantizer().int(8).symmetric().perChannel() });
  const q = materializeQdq({ model: m, plan, activationParams: fixedParams(plan) });
  const g = q.model.graph;
  const ix = indexGraph(g);
  const refs = Object.entries(reference.resnet8_weight_fake_quant);
  assert.equal(refs.length, 10);
  for (const [name, ref] of refs) {
    const p = q.weightParams.get(name)!;
    assert.deepStrictEqual(p.scale, b64f32(ref.scale), `${name} scales`);
    // Dequantize the stored codes exactly as DequantizeLinear does: (q - zp) * scale in float32.
    const dqNode = g.node.find((n) => n.opType === "DequantizeLinear" && n.input[0] === `${name}_quantized`)!;
    const codes = tensorValues(ix.initializers.get(dqNode.input[0])!);
    const scale = tensorValues(ix.initializers.get(dqNode.input[1])!) as Float32Array;
    const inner = codes.length / scale.length;
    const want = b64f32(ref.values);
    for (let i = 0; i < codes.length; i++) {
      const c = Math.floor(i / inner);
      assert.equal(Math.fround(Number(codes[i]) * scale[c]), want[i], `${name}[${i}]`);
    }
  }
  assert.equal(q.weightBits, 8);
  assert.ok(q.bitsPerWeight > 8 && q.bitsPerWeight < 9, `storage ${q.bitsPerWeight} bits/weight`);
});

Deno.test("default plan: Relu fusion, shared data-movement parameters, constants, int32 biases", async () => {
  const m = await OnnxModel.load(modelPath("poolnet_op17"));
  const plan = buildPlan(m);
  assert.ok(!plan.has("/conv1/Conv_output_0"), "Conv output feeding a Relu is fused");
  const mp = plan.get("/MaxPool_output_0");
  assert.ok(mp?.kind === "activation" && mp.sharesWith === "/Relu_output_0");
  const fl = plan.get("/Flatten_output_0");
  assert.ok(fl?.kind === "activation" && fl.sharesWith === "/AveragePool_output_0");
  assert.deepStrictEqual(plan.activations.filter((e) => e.role === "constant").map((e) => e.tensor), ["b_out"]);
  assert.ok(plan.biases.length >= 1 && plan.biases.every((b) => plan.get(b.input)?.kind === "activation"));
  assert.ok(!plan.observed.includes("/MaxPool_output_0"), "shared tensors have no observer");
});

Deno.test("QDQ materialization errors: missing calibration, wide activations; per-group weights stay fake-quantized floats", async () => {
  const m = await OnnxModel.load(modelPath("poolnet_op17"));
  const plan = buildPlan(m);
  assert.throws(
    () => materializeQdq({ model: m, plan, activationParams: new Map() }),
    (e: unknown) => e instanceof QuantlabError && e.code === "NOT_CALIBRATED" && e.message.includes("/"),
  );
  const wide = new Map([...fixedParams(plan)].map(([k]) => [k, quantizer().int(16).fit([0, 1]).params]));
  assert.throws(
    () => materializeQdq({ model: m, plan, activationParams: wide }),
    (e: unknown) => e instanceof QuantlabError && e.code === "UNSUPPORTED",
  );
  // Per-group weights have no QDQ form before opset 21: they are stored as their fake-quantized values.
  const grouped = buildPlan(m, { weights: quantizer().int(4).symmetric().perGroup(1) });
  const q = materializeQdq({ model: m, plan: grouped, activationParams: fixedParams(grouped) });
  const weightDq = q.model.graph.node.filter((n) =>
    n.opType === "DequantizeLinear" && n.input[0].endsWith("_quantized") &&
    grouped.weights.some((w) => n.input[0] === `${w.tensor}_quantized`)
  );
  assert.equal(weightDq.length, 0);
  assert.equal(q.weightParams.size, 0);
  assert.ok(q.model.graph.initializer.some((t) => t.name.endsWith("_fake_quantized")));
});
