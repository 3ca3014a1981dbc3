import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { foldBatchNorm } from "../../lib/onnx/fold_bn.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { b64f32, modelPath, reference } from "./_fixtures.ts";

Deno.test("BN folding preserves outputs (max abs diff <= 1e-5 of the output range) and keeps the input model", async () => {
  const x = new Tensor(b64f32(reference.inputs), [8, 1, 28, 28]);
  for (const name of ["resnet8_op13", "resnet8_op17"]) {
    const m = await OnnxModel.load(modelPath(name));
    const before = m.encode();
    const { model, folded, skipped } = foldBatchNorm(m);
    assert.equal(folded.length, 9);
    assert.deepStrictEqual(skipped, []);
    assert.ok(!model.graph.node.some((n) => n.opType === "BatchNormalization" || n.opType === "Identity"));
    assert.deepStrictEqual(m.encode(), before, "input model untouched (BN statistics kept)");
    for (const backend of ["node", "web"] as const) {
      const a = (await (await createSession(m, { backend })).run({ input: x })).logits.data as Float32Array;
      const b = (await (await createSession(model, { backend })).run({ input: x })).logits.data as Float32Array;
      let range = 0, diff = 0;
      for (let i = 0; i < a.length; i++) {
        range = Math.max(range, Math.abs(a[i]));
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
      }
      assert.ok(diff <= 1e-5 * range, `${name} ${backend}: ${diff} vs range ${range}`);
    }
  }
});
