// Activation sensitivity (lib/mixed/activations.ts): the probe trick gives the Hessian with respect to an activation,
// checked against the closed form of softmax cross-entropy (H_h = W2 (diag p - p p^T) W2^T per example, 1/B for the
// batch mean); on ResNet-8 (tiny settings) the joint W{b}A{b} program sets both widths and ptq() consumes the plan.
import assert from "node:assert/strict";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import {
  activationSensitivities,
  withActivationProbes,
  withActivationSensitivity,
} from "../../lib/mixed/activations.ts";
import { hawqAnalysis } from "../../lib/mixed/hawq.ts";
import { LayerHessian } from "../../lib/mixed/traces.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

Deno.test("Hessian w.r.t. an activation through a zero probe equals the closed form of softmax cross-entropy", async () => {
  const B = 4, D = 2, H = 3, C = 3;
  const rng = new Prng(5);
  const w1 = Float32Array.from({ length: D * H }, () => rng.nextNormal());
  const w2 = Float32Array.from({ length: H * C }, () => rng.nextNormal());
  const x = Float32Array.from({ length: B * D }, () => rng.nextNormal());
  const labels = [0, 2, 1, 2];
  const p = emptyModel(17);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: B }, { value: D }] } } });
  p.graph.initializer.push(makeTensorProto("W1", w1, [D, H]), makeTensorProto("W2", w2, [H, C]));
  p.graph.node.push(
    { input: ["x", "W1"], output: ["h"], name: "fc1", opType: "MatMul", domain: "", attribute: [] },
    { input: ["h", "W2"], output: ["logits"], name: "fc2", opType: "MatMul", domain: "", attribute: [] },
  );
  p.graph.output.push({ name: "logits", type: { tensorType: { elemType: 1 } } });
  const { model, probes } = withActivationProbes(OnnxModel.fromProto(p), ["h"], new Map([["h", [B, H]]]));
  const hess = await LayerHessian.create(model, probes, [{ inputs: { x: new Tensor(x, [B, D]) }, labels }], {
    session: { backend: "node", threads: 1 },
  });
  const exact = (await hess.exactTraces()).get(probes[0])!;
  // closed form
  let want = 0;
  for (let i = 0; i < B; i++) {
    const h = new Float64Array(H);
    for (let j = 0; j < H; j++) for (let d = 0; d < D; d++) h[j] += x[i * D + d] * w1[d * H + j];
    const z = new Float64Array(C);
    for (let c = 0; c < C; c++) for (let j = 0; j < H; j++) z[c] += h[j] * w2[j * C + c];
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    const pr = e.map((v) => v / s);
    // tr(W2 S W2^T) = sum_j sum_{c,c'} W2[j,c] S[c,c'] W2[j,c']
    for (let j = 0; j < H; j++) {
      for (let c = 0; c < C; c++) {
        for (let c2 = 0; c2 < C; c2++) {
          const S = (c === c2 ? pr[c] : 0) - pr[c] * pr[c2];
          want += w2[j * C + c] * S * w2[j * C + c2] / B;
        }
      }
    }
  }
  assert.ok(Math.abs(exact - want) <= 1e-4 * Math.max(1, Math.abs(want)), `${exact} vs ${want}`);
  const est = (await hess.traces({ maxIterations: 400, tolerance: 0, seed: 2 }))[0];
  assert.ok(Math.abs(est.trace - want) <= 4 * est.stderr + 1e-5, `${est.trace} +- ${est.stderr} vs ${want}`);
  await hess.release();
});

Deno.test("ResNet-8 (tiny settings): activation sensitivities, joint W{b}A{b} allocation, plan consumed by ptq()", async () => {
  const resnet = await OnnxModel.load(new URL("../../datasets/models/resnet8_fashion.onnx", import.meta.url).pathname);
  const train = await loadFashionMnist("train", { source: "embedded" });
  const session = { backend: "node" as const, threads: 1 };
  const base = ptq(resnet).weights(quantizer().int(8).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric()).firstLast(8).calibrateOn(train, { count: 32 }).session(session);
  const a = await hawqAnalysis(base, train, { count: 16, batchSize: 16, trace: { maxIterations: 2, seed: 1 } });
  const folded = (await base.state()).model;
  const acts = await activationSensitivities(folded, a, train, {
    count: 16,
    batchSize: 8,
    trace: { maxIterations: 3, seed: 1 },
    session,
  });
  // One activation per distinct input of the searched layers (the tied pairs share theirs).
  const searched = a.layers.filter((l) => l.fixed === undefined);
  assert.equal(acts.length, new Set(searched.map((l) => l.inputActivation)).size);
  for (const s of acts) {
    assert.ok(s.delta2[2] > s.delta2[3] && s.delta2[3] > s.delta2[4] && s.delta2[4] > s.delta2[8] && s.delta2[8] > 0);
    assert.ok(s.elements > 0 && s.trace.iterations === 3);
    assert.ok(
      Math.abs(s.sensitivity[4] - s.tracePerElement * s.delta2[4]) <= 1e-12 * Math.abs(s.sensitivity[4]) + 1e-30,
    );
  }
  const joint = withActivationSensitivity(a, acts);
  const budget = joint.usage(joint.uniform(4)).bops;
  const mixed = await joint.allocate({ bops: budget });
  assert.ok(mixed.usage.bops <= budget * (1 + 1e-9));
  const plan = await mixed.apply(base).plan();
  for (const l of joint.layers.filter((x) => x.activationFollows)) {
    assert.equal(plan.get(l.inputActivation!)?.bits, mixed.bits[l.node], l.node);
    assert.equal(plan.weightBits()[l.node], mixed.bits[l.node]);
  }
  // BOPs at b x b: uniform 4 costs a quarter of uniform 8 on the searched layers.
  const w4 = joint.usage(joint.uniform(4)).bops, w8 = joint.usage(joint.uniform(8)).bops;
  const fixedBops = joint.layers.filter((l) => l.fixed !== undefined).reduce(
    (s, l) => s + l.macs * 8 * l.activationBits,
    0,
  );
  assert.ok(Math.abs((w4 - fixedBops) * 4 - (w8 - fixedBops)) <= 1e-6 * w8);
  const m = await mixed.apply(base).quantize();
  assert.ok(m.qdq.graph.node.length > resnet.graph.node.length);
});
