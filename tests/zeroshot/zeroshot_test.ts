import assert from "node:assert/strict";
import { GradientSession } from "../../lib/grad/session.ts";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { subset } from "../../lib/data/batching.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { exposeValues } from "../../lib/onnx/capture.ts";
import { foldBatchNorm } from "../../lib/onnx/fold_bn.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { evaluateAccuracy } from "../../lib/ptq/evaluate.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import {
  channelStatistics,
  clampToGrid,
  findBatchNormTaps,
  fineTuneZeroShot,
  qatModel,
  quantizeZeroShot,
  zeroqTerms,
  zeroShot,
} from "../../lib/zeroshot/mod.ts";
import { b64f32, fashionMnistAvailable } from "../onnx/_fixtures.ts";

const FIX = JSON.parse(await Deno.readTextFile(new URL("../fixtures/zeroq_fixtures.json", import.meta.url)));
const MODEL = new URL("../fixtures/models/resnet8_op13.onnx", import.meta.url);
const WEB = { backend: "web" as const, threads: 1 };
const NODE = { backend: "node" as const, threads: 2 };
const x0 = new Tensor<"float32">(b64f32(FIX.input), FIX.shape);

function relMax(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

Deno.test("zeroShot: models without BatchNorm, or with BN folded, get a typed error saying how to export", async () => {
  const m = await OnnxModel.load(MODEL);
  const folded = foldBatchNorm(m).model;
  assert.throws(() => zeroShot(folded), (e: unknown) => {
    assert.ok(e instanceof QuantlabError && e.code === "UNSUPPORTED");
    assert.match(e.message, /no BatchNormalization/);
    assert.match(e.message, /folded/);
    assert.match(e.message, /TrainingMode\.PRESERVE/);
    assert.match(e.message, /do_constant_folding=False/);
    return true;
  });
  // The taps of the unfolded model: every BN input is a Conv output, in graph order (as the PyTorch script).
  const taps = findBatchNormTaps(m);
  assert.deepEqual(taps.map((t) => t.value), FIX.bnInputs);
  assert.ok(taps.every((t) => t.producer === "Conv"));
});

Deno.test("zeroShot: builder validates eagerly and is immutable", async () => {
  const z = zeroShot(await OnnxModel.load(MODEL));
  assert.equal(z.batch(8).config.batch, 8);
  assert.equal(z.config.batch, 32);
  assert.equal(z.config.iterations, 500);
  assert.equal(z.config.lr, 0.5);
  assert.deepEqual(z.config.plateau, { patience: 100, minLr: 1e-4, factor: 0.1 });
  assert.throws(() => z.batch(1), /batch must be >= 2/);
  assert.throws(() => z.iterations(0), /iterations/);
  assert.throws(() => z.lr(-1), /lr/);
  assert.throws(() => z.labels([]), /labels/);
  assert.match(z.labels("balanced").toString(), /labels=balanced/);
});

Deno.test("zeroShot: BN-statistics loss and its input gradient match PyTorch (both backends)", async (t) => {
  const m = await OnnxModel.load(MODEL);
  // CPU terms from the exposed BN inputs vs the PyTorch per-layer terms.
  const taps = findBatchNormTaps(m);
  const s = await createSession(exposeValues(m, taps.map((t) => t.value), { replace: true }), WEB);
  const out = await s.run({ input: x0 });
  taps.forEach((tap, i) => {
    const v = out[tap.value];
    const [lm, ls] = zeroqTerms(channelStatistics(v.data as Float32Array, v.shape), tap.mean, tap.std);
    assert.ok(Math.abs(lm - FIX.loss.terms[i][0]) <= 1e-4 * (1 + FIX.loss.terms[i][0]), `${tap.value} mean term`);
    assert.ok(Math.abs(ls - FIX.loss.terms[i][1]) <= 1e-4 * (1 + FIX.loss.terms[i][1]), `${tap.value} std term`);
  });
  for (const session of [WEB, NODE]) {
    await t.step(`${session.backend}: loss and gradient`, async () => {
      const g = await zeroShot(m).session(session).lossGraph(4);
      const gs = await GradientSession.create(g.graph, session);
      const r = await gs.run({ [g.input]: x0 }, new Map());
      assert.ok(Math.abs(r.loss - FIX.loss.total) <= 1e-5 * FIX.loss.total, `loss ${r.loss} vs ${FIX.loss.total}`);
      const rel = relMax(r.grads.get(g.input)!, b64f32(FIX.loss.grad));
      assert.ok(rel < 1e-4, `gradient max rel diff ${rel}`);
    });
  }
  await t.step("label-conditioned variant: + cross-entropy toward the targets", async () => {
    const g = await zeroShot(m).session(WEB).labels(FIX.labels.labels).lossGraph(4);
    assert.equal(g.classes, 10);
    const gs = await GradientSession.create(g.graph, WEB);
    const r = await gs.run(
      { [g.input]: x0, [g.labels!]: new Tensor(Int32Array.from(FIX.labels.labels), [4]) },
      new Map(),
    );
    assert.ok(Math.abs(r.loss - FIX.labels.total) <= 1e-5 * FIX.labels.total);
    assert.ok(relMax(r.grads.get(g.input)!, b64f32(FIX.labels.grad)) < 1e-4);
  });
});

Deno.test("zeroShot: Adam + plateau trajectory matches PyTorch's for 25 iterations", async () => {
  const m = await OnnxModel.load(MODEL);
  const d = await zeroShot(m).session(WEB).startFrom(x0).iterations(FIX.adam.iterations).generate();
  const ours = d.losses[0];
  for (let i = 0; i < ours.length; i++) {
    const ref = FIX.adam.losses[i];
    assert.ok(Math.abs(ours[i] - ref) <= 2e-3 * ref, `iteration ${i}: ${ours[i]} vs ${ref}`);
  }
  assert.ok(Math.abs(d.finalLosses[0] - FIX.adam.finalLoss) <= 5e-3 * FIX.adam.finalLoss);
  const rel = relMax(d.tensors[0].data as Float32Array, b64f32(FIX.adam.final));
  assert.ok(rel < 2e-3, `final images max rel diff ${rel}`);
});

Deno.test("zeroShot: a short distillation lowers the loss by a large factor; same seed, same images", async () => {
  const m = await OnnxModel.load(MODEL);
  const z = zeroShot(m).session(WEB).batch(4).iterations(60).seed(3);
  const a = await z.generate();
  assert.ok(a.finalLosses[0] < a.losses[0][0] / 20, `${a.losses[0][0]} -> ${a.finalLosses[0]}`);
  // The init is ZeroQ's quirk: uniform with std ~0.0136, not 1.
  const first = zeroShot(m).session(WEB).batch(4).iterations(1).seed(3);
  const b = await z.generate();
  assert.deepEqual(b.tensors[0].data, a.tensors[0].data);
  const c = await z.seed(4).generate();
  assert.notDeepEqual(c.tensors[0].data, a.tensors[0].data);
  const one = await first.generate();
  assert.equal(one.losses[0][0], a.losses[0][0]);
  // Distilled inputs end near mean 0 / std 1, as the input term asks.
  const st = channelStatistics(a.tensors[0].data as Float32Array, a.tensors[0].shape);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(st.std[i] - 1) < 0.2 && Math.abs(st.mean[i]) < 0.2);
  // Noise baseline: same shape, seeded.
  const n = z.noise();
  assert.deepEqual(n.tensors[0].shape, [4, 1, 28, 28]);
  assert.deepEqual(n.tensors[0].data, z.noise().tensors[0].data);
});

Deno.test("clampToGrid clamps each channel to its grid", () => {
  const p = { qmin: -7, qmax: 7, scale: new Float32Array([0.5, 1]), zeroPoint: new Int32Array([0, 0]) };
  const w = new Float32Array([9, -9, 1, 9, -9, 1]);
  clampToGrid(w, [2, 3], 0, p as never);
  assert.deepEqual(Array.from(w), [3.5, -3.5, 1, 7, -7, 1]);
});

Deno.test({
  name: "zeroShot accuracy (small CI settings): ZeroQ-calibrated W8A8 within 1 point of real data; level 2 runs",
  ignore: !fashionMnistAvailable(),
  fn: async () => {
    const m = await OnnxModel.load(MODEL);
    const test = subset(await loadFashionMnist("test"), 0, 1000);
    const real = subset(await loadFashionMnist("train"), 0, 16);
    const data = await zeroShot(m).session(NODE).batch(16).iterations(150).generate();
    const acc = async (q: OnnxModel) => (await evaluateAccuracy(q, test, { ...NODE, batchSize: 250 })).top1;
    const zq = await quantizeZeroShot(m, data, { session: NODE });
    const rq = await quantizeZeroShot(m, real, { session: NODE });
    const [az, ar] = [await acc(zq.model), await acc(rq.model)];
    assert.ok(az >= ar - 0.01, `W8A8 ZeroQ ${az} vs real ${ar}`);
    // The input stays float, activations only after ReLU (ZeroQ's placement).
    assert.ok(!zq.model.graph.node.some((n) => n.opType === "QuantizeLinear" && n.input[0] === "input"));
    // Level 2: the trainable graph quantizes the same weights; a few KD steps keep the weights on their grids.
    const q4 = await quantizeZeroShot(m, data, { weightBits: 4, activationBits: 4, session: NODE });
    const qat = qatModel(q4);
    assert.equal(qat.weights.size, 10);
    assert.deepStrictEqual([...qat.weights.keys()], q4.ptq.plan.weights.map((w) => w.tensor));
    assert.ok(q4.ptq.plan.activations.every((e) => e.role === "constant" || e.opType === "Relu" || e.sharesWith));
    const ft = await fineTuneZeroShot(q4, m, data, { epochs: 2, lr: 1e-4, session: NODE });
    assert.equal(ft.losses.length, 2);
    assert.ok(ft.losses.every(Number.isFinite));
    assert.ok(await acc(ft.model) > 0.5);
  },
});
