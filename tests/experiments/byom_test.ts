import assert from "node:assert/strict";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { byomPipeline, compareByom, loadByom } from "../../lib/experiments/byom.ts";
import { withNormalization } from "../../lib/data/images.ts";
import { evaluateAccuracy } from "../../lib/ptq/evaluate.ts";
import { fashionMnistAvailable } from "../onnx/_fixtures.ts";

const NODE = { backend: "node" } as const;

Deno.test({
  name: "bring your own model: every PyTorch min-max PTQ row reproduced within 0.3 points on the full test set",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const { reference, folded, bn } = await loadByom();
    const [train, test] = await Promise.all([loadFashionMnist("train"), loadFashionMnist("test")]);
    assert.equal(test.count, 10000);
    const rows = await compareByom(folded, reference, train, test, { session: NODE });
    assert.equal(rows.length, 8);
    for (const r of rows) {
      assert.ok(
        Math.abs(r.diff) <= 0.3,
        `W${r.weightBits}A${r.activationBits} ${r.weights}: ${r.quantlab} vs ${r.top1}`,
      );
    }
    // The float model with its own preprocessing, and the BN-kept export folded by quantlab itself.
    const testN = withNormalization(test, { mean: [reference.normalization.mean], std: [reference.normalization.std] });
    const float = (await evaluateAccuracy(folded, testN, { ...NODE, batchSize: 500 })).top1;
    assert.ok(Math.abs(100 * (float - reference.float)) <= 0.05, `float ${float} vs ${reference.float}`);
    const [w8] = await compareByom(bn, reference, train, test, { session: NODE, rows: [reference.rows[0]] });
    assert.ok(Math.abs(w8.diff) <= 0.3, `BN kept: ${w8.quantlab} vs ${w8.top1}`);
    // Weights-only rows place no activation quantizer at all.
    const a32 = await byomPipeline(folded, reference.rows.find((r) => r.activationBits === 32)!).plan();
    assert.equal(a32.activations.length, 0);
    assert.equal(a32.biases.length, 0);
  },
});
