// Agreement with PyTorch autograd on models exported by tests/fixtures/make_grad_fixtures.py (both ORT backends).
import assert from "node:assert/strict";
import {
  buildGradientGraph,
  crossEntropyLoss,
  GradientSession,
  klDivLoss,
  type LossTerm,
  mseLoss,
} from "../../lib/grad/mod.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import type { FeedValue } from "../../lib/onnx/session.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { assertClose, b64f32, FIXTURES, gradFixtures } from "./_fixtures.ts";

const FIX = FIXTURES;
const fx = gradFixtures;

async function check(
  name: string,
  loss: LossTerm,
  feeds: Record<string, FeedValue>,
  ref: { loss: number; grads: Record<string, string>; input_grad?: string },
  batchNorm: "train" | "eval",
) {
  const model = await OnnxModel.load(new URL(`grad_${name}.onnx`, FIX).pathname);
  const wrt = [...Object.keys(ref.grads), ...(ref.input_grad ? ["input"] : [])];
  const tg = await buildGradientGraph(model, { loss, wrt, feeds, batchNorm, session: { backend: "node", threads: 1 } });
  const results = [];
  for (const backend of ["node", "web"] as const) {
    const gs = await GradientSession.create(tg, { backend, threads: 1 });
    const r = await gs.run(feeds, tg.initialParams());
    assert.ok(
      Math.abs(r.loss - ref.loss) <= 1e-5 * (1 + Math.abs(ref.loss)),
      `${backend} loss ${r.loss} vs ${ref.loss}`,
    );
    for (const [p, g] of Object.entries(ref.grads)) {
      assertClose(r.grads.get(p)!, b64f32(g), 1e-4, `${name} ${backend} d/d${p}`);
    }
    if (ref.input_grad) assertClose(r.grads.get("input")!, b64f32(ref.input_grad), 1e-4, `${name} ${backend} d/dinput`);
    results.push(r);
  }
  return results;
}

Deno.test("CNN (conv stride/groups/dilation/depthwise, BN, pools, activations) + cross-entropy: BN eval", async () => {
  const c = fx.cnn;
  const feeds = {
    input: new Tensor(b64f32(c.input), c.shape),
    labels: new Tensor(Int32Array.from(c.labels), [c.labels.length]),
  };
  await check("cnn", crossEntropyLoss("logits", "labels"), feeds, c.eval, "eval");
});

Deno.test("CNN + cross-entropy: BN from batch statistics, and the batch statistics themselves", async () => {
  const c = fx.cnn;
  const feeds = {
    input: new Tensor(b64f32(c.input), c.shape),
    labels: new Tensor(Int32Array.from(c.labels), [c.labels.length]),
  };
  const [r] = await check("cnn", crossEntropyLoss("logits", "labels"), feeds, c.train, "train");
  assert.equal(r.batchNorm.length, 2);
  r.batchNorm.forEach((s, i) => {
    assertClose(s.mean, b64f32(c.train.bn_mean[i]), 1e-5, `bn${i} mean`);
    assertClose(s.var, b64f32(c.train.bn_var[i]), 1e-5, `bn${i} var`);
  });
  assert.equal(r.batchNorm[0].count, 4 * 9 * 9);
  assert.equal(r.batchNorm[0].runningMean, "bn1.running_mean");
  assert.ok(Math.abs(r.batchNorm[0].momentum - 0.9) < 1e-6);
});

Deno.test("MLP (Gemm, Softmax, Tanh): MSE and distillation KL with temperature", async () => {
  const c = fx.mlp;
  const input = new Tensor(b64f32(c.input), c.shape);
  const target = new Tensor(b64f32(c.target), [c.shape[0], 4]);
  const teacher = new Tensor(b64f32(c.teacher), [c.shape[0], 4]);
  await check("mlp", mseLoss("logits", "target"), { input, target }, c.mse, "eval");
  await check("mlp", klDivLoss("logits", "teacher", { temperature: c.temperature }), { input, teacher }, c.kl, "eval");
});
