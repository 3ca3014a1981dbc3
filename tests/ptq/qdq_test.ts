import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { insertQdq, planActivations } from "../../lib/ptq/qdq.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { b64f32, modelPath, reference } from "../onnx/_fixtures.ts";

Deno.test("QDQ weights equal torch.fake_quantize_per_channel_affine bit for bit (every Conv/Gemm weight)", async () => {
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const plan = planActivations(m);
  const act = quantizer().uint(8).asymmetric();
  const params = new Map([...plan.observe, ...plan.constants].map((t) => [t, act.fit([-1, 3]).params]));
  const q = insertQdq(m, params, quantizer().int(8).symmetric().perChannel());
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
});

Deno.test("activation plan: Relu fusion, shared pass-through parameters, constants", async () => {
  const m = await OnnxModel.load(modelPath("poolnet_op17"));
  const plan = planActivations(m);
  assert.ok(!plan.observe.includes("/conv1/Conv_output_0"), "Conv output feeding a Relu is fused");
  assert.equal(plan.share.get("/MaxPool_output_0"), "/Relu_output_0");
  assert.equal(
    plan.share.get("/Flatten_output_0"),
    plan.share.get("/Pad_output_0") ? "/AveragePool_output_0" : "/AveragePool_output_0",
  );
  assert.deepStrictEqual(plan.constants, ["b_out"]);
});

Deno.test("QDQ insertion errors: missing calibration, per-group weights, wide activations", async () => {
  const m = await OnnxModel.load(modelPath("poolnet_op17"));
  assert.throws(
    () => insertQdq(m, new Map(), quantizer().int(8)),
    (e: unknown) => e instanceof QuantlabError && e.code === "NOT_CALIBRATED",
  );
  const plan = planActivations(m);
  const params = new Map(
    [...plan.observe, ...plan.constants].map((t) => [t, quantizer().uint(8).asymmetric().fit([0, 1]).params]),
  );
  assert.throws(
    () => insertQdq(m, params, quantizer().int(8).perGroup(4)),
    (e: unknown) => e instanceof QuantlabError && e.code === "UNSUPPORTED",
  );
  const wide = new Map([...params].map(([k]) => [k, quantizer().int(16).fit([0, 1]).params]));
  assert.throws(
    () => insertQdq(m, wide, quantizer().int(8)),
    (e: unknown) => e instanceof QuantlabError && e.code === "UNSUPPORTED",
  );
});
