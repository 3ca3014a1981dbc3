// Hessian-vector products (exact double backprop and central differences) and Hutchinson traces against
// PyTorch double backprop (tests/fixtures/make_grad_fixtures.py, "hvp").
import assert from "node:assert/strict";
import { buildGradientGraph, crossEntropyLoss, HessianSession } from "../../lib/grad/mod.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { assertClose, b64f32, FIXTURES, gradFixtures } from "./_fixtures.ts";

const FIX = FIXTURES;
const h = gradFixtures.hvp;
const feeds = {
  input: new Tensor(b64f32(h.input), h.shape),
  labels: new Tensor(Int32Array.from(h.labels), [h.labels.length]),
};

async function session(backend: "node" | "web") {
  const model = await OnnxModel.load(new URL("grad_tiny.onnx", FIX).pathname);
  const tg = await buildGradientGraph(model, {
    loss: crossEntropyLoss("logits", "labels"),
    wrt: h.names,
    feeds,
    session: { backend: "node", threads: 1 },
  });
  return { tg, hs: await HessianSession.create(tg, feeds, { session: { backend, threads: 1 } }) };
}

Deno.test("H v: exact (double backprop through the gradient graph) and central differences match PyTorch", async () => {
  const v = new Map<string, Float32Array>(h.names.map((n: string) => [n, b64f32(h.v[n])]));
  for (const backend of ["node", "web"] as const) {
    const { tg, hs } = await session(backend);
    const params = tg.initialParams();
    const exact = await hs.hvp(feeds, params, v, { method: "exact" });
    const central = await hs.hvp(feeds, params, v, { method: "central" });
    for (const n of h.names) {
      assertClose(exact.get(n)!, b64f32(h.hv[n]), 1e-4, `${backend} exact Hv ${n}`);
      assertClose(central.get(n)!, b64f32(h.hv[n]), 2e-2, `${backend} central Hv ${n}`);
    }
  }
});

Deno.test("Hutchinson traces per parameter tensor converge to PyTorch's exact traces", async () => {
  const { tg, hs } = await session("node");
  const est = await hs.hutchinson(feeds, tg.initialParams(), { samples: 200, seed: 7 });
  for (const n of h.names) {
    const { trace, stderr } = est.get(n)!;
    const want = h.trace[n];
    assert.ok(
      Math.abs(trace - want) <= 4 * stderr + 1e-3 * Math.abs(want),
      `${n}: ${trace} +- ${stderr} vs exact ${want}`,
    );
  }
  // Same seed, same estimate.
  const again = await hs.hutchinson(feeds, tg.initialParams(), { samples: 3, seed: 7 });
  const once = await hs.hutchinson(feeds, tg.initialParams(), { samples: 3, seed: 7 });
  for (const n of h.names) assert.equal(again.get(n)!.trace, once.get(n)!.trace);
});

Deno.test("H v through training-mode BatchNorm (batch statistics): exact double backprop agrees with central differences", async () => {
  const { NetBuilder } = await import("../../lib/models/layers.ts");
  const { Prng } = await import("../../lib/tensor/prng.ts");
  const net = new NetBuilder({ channels: 2, height: 6, width: 6, seed: 4 });
  let x = net.relu(net.batchNorm("bn1", net.conv("conv1", net.input, 2, 4, {}), 4));
  x = net.relu(net.batchNorm("bn2", net.conv("conv2", x, 4, 4, {}), 4));
  const model = net.finish(net.linear("fc", net.flatten(net.globalAveragePool(x)), 4, 3), "bn-hvp");
  // Smooth everywhere, so central differences converge: Tanh in place of Relu.
  for (const n of model.graph.node) if (n.opType === "Relu") n.opType = "Tanh";
  const rng = new Prng(5), input = new Float32Array(5 * 2 * 36);
  rng.fillNormal(input);
  const f = { input: new Tensor(input, [5, 2, 6, 6]), labels: new Tensor(Int32Array.from([0, 1, 2, 0, 1]), [5]) };
  const tg = await buildGradientGraph(model, {
    loss: crossEntropyLoss("logits", "labels"),
    wrt: "parameters",
    feeds: f,
    batchNorm: "train",
    session: { backend: "node", threads: 1 },
  });
  const hs = await HessianSession.create(tg, f, { session: { backend: "node", threads: 1 } });
  const params = tg.initialParams();
  const v = new Map([...params].map(([k, p]) => {
    const r = new Float32Array(p.length);
    rng.fillNormal(r);
    return [k, r] as const;
  }));
  const exact = await hs.hvp(f, params, v, { method: "exact" });
  const central = await hs.hvp(f, params, v, { method: "central" });
  for (const [k] of params) assertClose(exact.get(k)!, central.get(k)!, 2e-2, `Hv ${k}`);
  // Every BN parameter takes part (a gradient path through the batch statistics that dropped out would show here).
  for (const k of ["bn1.weight", "bn1.bias", "bn2.weight"]) assert.ok(exact.get(k)!.some((z) => z !== 0), k);
});
