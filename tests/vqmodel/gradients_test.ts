// Centroid gradients (codes frozen) against PyTorch autograd through an index-based reconstruction w = C[codes]:
// k-means = sum of member gradients, PQ = mean over member blocks (flat and channel block layouts).
import assert from "node:assert/strict";
import { buildGradientGraph } from "../../lib/grad/compiler.ts";
import { crossEntropyLoss } from "../../lib/grad/losses.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { reconstructedModel } from "../../lib/vqmodel/finetune.ts";
import { assertClose, b64f32, fixtureInput, fixtureLayers, fixtures, tinyModel } from "./_fixtures.ts";

for (const c of fixtures.cases) {
  Deno.test(`centroid gradients match PyTorch autograd through C[codes]: ${c.name} (${c.reduce})`, async () => {
    const float = await tinyModel();
    const layers = fixtureLayers(float, c);
    const model = reconstructedModel(float, layers);
    const x = fixtureInput();
    const labels = new Tensor<"int32">(Int32Array.from(fixtures.labels), [fixtures.labels.length]);
    const tg = await buildGradientGraph(model, {
      loss: crossEntropyLoss("logits", "labels"),
      wrt: layers.map((l) => l.weight),
      feeds: { input: x, labels },
    });
    const gs = await GradientSession.create(tg);
    const r = await gs.run({ input: x, labels }, tg.initialParams());
    await gs.release();
    assert.ok(Math.abs(r.loss - c.loss) < 1e-5, `loss ${r.loss} vs PyTorch ${c.loss}`);
    c.layers.forEach((fl, i) => {
      const got = layers[i].centroidGradient(r.grads.get(fl.weight)!, c.reduce);
      assertClose(got, b64f32(fl.grad), 1e-4, `${c.name} ${fl.weight}`);
    });
    // the other reduction differs (a test that could not fail would be no test)
    const other = layers[0].centroidGradient(r.grads.get(c.layers[0].weight)!, c.reduce === "sum" ? "mean" : "sum");
    const want = b64f32(c.layers[0].grad);
    assert.ok(other.some((v, i) => Math.abs(v - want[i]) > 1e-3 * Math.max(1e-6, Math.abs(want[i]))));
  });
}
