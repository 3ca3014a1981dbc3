// Layer fitting: the block Gram matrix of layer inputs against PyTorch (unfold), the activation-aware E-step, and
// the activation-aware objective beating plain k-means on a real layer.
import assert from "node:assert/strict";
import { loadDigits } from "../../lib/data/digits.ts";
import { batches } from "../../lib/data/batching.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { blockGram, captureValues, layerInputName } from "../../lib/vqmodel/activations.ts";
import { fitPqLayer, initializerValues, weightSites } from "../../lib/vqmodel/fit.ts";
import type { VqLayer } from "../../lib/vqmodel/layer.ts";
import { assertClose, fixtureInput, fixtures, tinyModel } from "./_fixtures.ts";

Deno.test("blockGram over all patches equals PyTorch's unfold Gram (conv 3x3 flat and channel blocks, 1x1, Gemm)", async () => {
  const model = await tinyModel();
  const sites = new Map(weightSites(model).map((s) => [s.weight, s]));
  const x = fixtureInput();
  for (const g of fixtures.grams) {
    const site = sites.get(g.weight)!;
    const [xs] = await captureValues(model, [layerInputName(model, site)], [x]);
    const got = blockGram(model, site, xs, g.blockSize, g.order, Infinity, 0);
    assertClose(got, g.gram, 1e-5, `${g.weight} d=${g.blockSize} ${g.order}`);
  }
});

/** `sum over blocks (w - c)^T G (w - c)`: the sampled-activation output error of a layer. */
function activationError(l: VqLayer, w: Float32Array, G: Float64Array): number {
  const d = l.blockSize, rec = l.reconstruct();
  let e = 0;
  const diff = new Float64Array(d);
  for (let b = 0; b < l.blocks; b++) {
    for (let j = 0; j < d; j++) diff[j] = w[b * d + j] - rec[b * d + j];
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) e += diff[i] * G[i * d + j] * diff[j];
  }
  return e;
}

Deno.test("activation-aware PQ: codes are the G-metric argmin; lower ||X (W - W_hat)|| than plain k-means", async () => {
  const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
  const ds = await loadDigits();
  const site = weightSites(model).find((s) => s.weight === "conv3.weight")!;
  const xs = [...batches(ds, { batchSize: 64, count: 128 })].map((b) => b.x);
  const [acts] = await captureValues(model, [layerInputName(model, site)], xs);
  const G = blockGram(model, site, acts, 9, "flat", 4096, 0);
  const w = initializerValues(model, site.weight);
  const aware = fitPqLayer(site, w, { k: 32, blockSize: 9, gram: G, seed: 1 });
  const plain = fitPqLayer(site, w, { k: 32, blockSize: 9, seed: 1 });
  const ea = activationError(aware, w, G), ep = activationError(plain, w, G);
  assert.ok(ea < 0.95 * ep, `activation-aware ${ea} vs plain ${ep}`);
  // E-step: every block's code minimises (w - c)^T G (w - c) over the final codebook (up to rounding)
  const d = 9, C = aware.codebook;
  let worse = 0;
  for (let b = 0; b < aware.blocks; b++) {
    const dist = (c: number) => {
      let e = 0;
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) e += (w[b * d + i] - C[c * d + i]) * G[i * d + j] * (w[b * d + j] - C[c * d + j]);
      }
      return e;
    };
    const mine = dist(aware.codes[b]);
    let best = Infinity;
    for (let c = 0; c < aware.k; c++) best = Math.min(best, dist(c));
    if (mine > best * (1 + 1e-3) + 1e-9) worse++;
  }
  assert.equal(worse, 0, `${worse} blocks not at their G-metric nearest centroid`);
});
