/**
 * QAT training-graph gradients (lib/qat buildQatGraph) against PyTorch autograd on a tiny conv net at W4A4:
 * STE (weights torch.fake_quantize_per_channel_affine, activations clip-then-round by hand), LSQ (the paper's code
 * in PyTorch: per-channel weight steps from the PTQ scales, and per-tensor weight steps from LSQ's init
 * 2 mean|w| / sqrt(Qp) at W4A8), PACT (by hand) and DoReFa weights (tensorpack's fw times a fixed range).
 * Fixture: tests/fixtures/make_qat_fixtures.py.
 */
import assert from "node:assert/strict";
import { crossEntropyLoss } from "../../lib/grad/losses.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { initialState, type PtqState } from "../../lib/ptq/pass.ts";
import { buildPlan } from "../../lib/ptq/policy.ts";
import type { QuantParams } from "../../lib/quant/params.ts";
import { quantizer, UniformWeights } from "../../lib/quant/quantizer.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { buildQatGraph, qat } from "../../lib/qat/qat.ts";
import { b64f32 } from "../onnx/_fixtures.ts";

const FIX = JSON.parse(await Deno.readTextFile(new URL("../fixtures/qat_fixtures.json", import.meta.url)));
const MODEL = new URL("../fixtures/models/qat_tiny.onnx", import.meta.url);
const WEB = { backend: "web" as const, threads: 1 };

/** The fixture's state; `perTensor`: per-tensor weights fitted here (not pinned), 8-bit activations at `scales8`. */
async function fixtureState(perTensor = false, scales8?: number[]): Promise<PtqState> {
  const model = await OnnxModel.load(MODEL);
  const wq = perTensor ? quantizer().int(4).symmetric() : quantizer().int(4).symmetric().perChannel();
  const bits = scales8 ? 8 : 4;
  const plan = buildPlan(model, {
    weights: wq,
    activations: quantizer().uint(bits).asymmetric(),
    placement: "weight-inputs",
  });
  const scales: Record<string, number> = scales8
    ? Object.fromEntries((FIX.layerInputs as string[]).map((t, i) => [t, scales8[i]]))
    : FIX.activationScales;
  const act = (s: number): QuantParams => ({
    bits,
    signed: false,
    symmetric: false,
    range: "full",
    qmin: 0,
    qmax: 2 ** bits - 1,
    scale: new Float32Array([s]),
    zeroPoint: new Int32Array([0]),
    granularity: { kind: "tensor" },
  });
  const activationParams = new Map<string, QuantParams>();
  for (const e of plan.activations) {
    // The plan quantizes the pooled value and lets Flatten share it; PyTorch quantizes after the flatten.
    const sharer = plan.activations.find((a) => a.sharesWith === e.tensor)?.tensor ?? "";
    const s = scales[e.tensor] ?? scales[e.sharesWith ?? ""] ?? scales[sharer];
    assert.ok(s !== undefined, `no fixture scale for planned activation ${e.tensor}`);
    activationParams.set(e.tensor, act(s));
  }
  const inits = indexGraph(model.graph).initializers;
  const weightFits = new Map();
  for (const e of perTensor ? [] : plan.weights) {
    const t = inits.get(e.tensor)!;
    const w = new Tensor<"float32">(tensorValues(t) as Float32Array, t.dims, e.tensor);
    const f = wq.fitWeights(w, { axis: e.axis, name: e.tensor }) as UniformWeights;
    const scale = b64f32(FIX.weightScales[e.tensor]);
    weightFits.set(e.tensor, new UniformWeights(f.config, { ...f.affine, scale }, w, e.tensor));
  }
  return { ...initialState(model), plan, activationParams, weightFits };
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-12);
}

for (const kind of ["ste", "lsq", "pact"] as const) {
  Deno.test(`QAT ${kind} gradients match PyTorch autograd (tiny conv net, W4A4)`, async () => {
    const state = await fixtureState();
    const ref = FIX.recipes[kind];
    const x = new Tensor<"float32">(b64f32(FIX.input), FIX.shape);
    const labels = new Tensor(Int32Array.from(FIX.labels as number[]), [FIX.labels.length]);
    const recipe = {
      ...qat(state.model).recipe,
      weights: kind === "lsq" ? "lsq" as const : "ste" as const,
      activations: kind,
      pactInit: "calibrated" as const,
    };
    const g = await buildQatGraph(state, recipe, {
      loss: crossEntropyLoss("logits", "labels"),
      feeds: { input: x, labels },
      session: WEB,
    });
    const gs = await GradientSession.create(g.graph, WEB);
    const r = await gs.run({ input: x, labels }, g.params);
    await gs.release();
    assert.ok(Math.abs(r.loss - ref.loss) < 1e-5, `loss ${r.loss} vs ${ref.loss}`);
    const names: Record<string, string> = {};
    for (const k of Object.keys(ref.grads)) {
      if (k.startsWith("step:")) names[k] = g.trainable.quantizerParams.get(k.slice(5))!.param;
      else if (k.startsWith("act:")) names[k] = g.trainable.quantizerParams.get(k.slice(4))?.param ?? "";
      else names[k] = k;
    }
    const worst: string[] = [];
    for (const [k, b64] of Object.entries(ref.grads) as [string, string][]) {
      const ours = r.grads.get(names[k]);
      assert.ok(ours, `no gradient for ${k} (${names[k]}); have ${[...r.grads.keys()]}`);
      const e = relErr(ours, b64f32(b64));
      worst.push(`${k} ${e.toExponential(1)}`);
      if (!(e < 2e-4)) worst.push(`FAIL ${k}`);
    }
    assert.ok(!worst.some((w) => w.startsWith("FAIL")), `${kind}: ${worst.join("; ")}`);
    // Every learnable tensor was checked.
    assert.equal(Object.keys(ref.grads).length, g.learnable.length, `${g.learnable} vs ${Object.keys(ref.grads)}`);
  });
}

Deno.test("QAT DoReFa weight gradients match PyTorch autograd (tiny conv net, W4 DoReFa, A4 STE)", async () => {
  const state = await fixtureState();
  const ref = JSON.parse(await Deno.readTextFile(new URL("../fixtures/qat_dorefa_fixtures.json", import.meta.url)));
  const x = new Tensor<"float32">(b64f32(FIX.input), FIX.shape);
  const labels = new Tensor(Int32Array.from(FIX.labels as number[]), [FIX.labels.length]);
  const g = await buildQatGraph(state, { ...qat(state.model).recipe, weights: "dorefa" }, {
    loss: crossEntropyLoss("logits", "labels"),
    feeds: { input: x, labels },
    session: WEB,
    keep: ["logits"],
  });
  assert.equal(g.dorefa.size, 3);
  assert.equal(g.trainable.weights.size, 0, "DoReFa latent weights are not clamped to a grid");
  for (const [w, d] of g.dorefa) assert.ok(Math.abs(d.range - ref.range[w.split(".")[0]]) < 1e-6, w);
  const gs = await GradientSession.create(g.graph, WEB);
  const r = await gs.run({ input: x, labels }, g.params);
  await gs.release();
  assert.ok(Math.abs(r.loss - ref.loss) < 1e-5, `loss ${r.loss} vs ${ref.loss}`);
  assert.ok(relErr(r.outputs.logits.data as Float32Array, b64f32(ref.logits)) < 1e-5, "logits");
  const errs = Object.entries(ref.grads as Record<string, string>).map(([k, b64]) => {
    const ours = r.grads.get(k);
    assert.ok(ours, `no gradient for ${k}`);
    return [k, relErr(ours, b64f32(b64))] as const;
  });
  assert.ok(errs.every(([, e]) => e < 2e-4), errs.map(([k, e]) => `${k} ${e.toExponential(1)}`).join("; "));
  assert.equal(errs.length, g.learnable.length);
});

Deno.test("QAT LSQ per-tensor weights from float (W4A8): init 2 mean|w| / sqrt(Qp), g = 1 / sqrt(N Qp), match PyTorch", async () => {
  const ref = FIX.recipes.lsq_tensor;
  const state = await fixtureState(true, ref.activationScales);
  const x = new Tensor<"float32">(b64f32(ref.input), FIX.shape);
  const labels = new Tensor(Int32Array.from(FIX.labels as number[]), [FIX.labels.length]);
  const g = await buildQatGraph(state, {
    ...qat(state.model).recipe,
    weights: "lsq",
    activations: "lsq",
    start: "float",
  }, {
    loss: crossEntropyLoss("logits", "labels"),
    feeds: { input: x, labels },
    session: WEB,
  });
  const inits = indexGraph(state.model.graph).initializers;
  for (const e of state.plan!.weights) {
    const w = tensorValues(inits.get(e.tensor)!) as Float32Array;
    const init = (2 * w.reduce((a, v) => a + Math.abs(v), 0) / w.length) / Math.sqrt(7);
    const step = g.params.get(g.trainable.quantizerParams.get(e.tensor)!.param)!;
    assert.equal(step.length, 1, "one step per tensor");
    assert.ok(Math.abs(step[0] - init) < 1e-6 * init, `${e.tensor}: step ${step[0]} vs LSQ init ${init}`);
  }
  const gs = await GradientSession.create(g.graph, WEB);
  const r = await gs.run({ input: x, labels }, g.params);
  await gs.release();
  assert.ok(Math.abs(r.loss - ref.loss) < 1e-5, `loss ${r.loss} vs ${ref.loss}`);
  const errs = Object.entries(ref.grads as Record<string, string>).map(([k, b64]) => {
    const name = k.startsWith("step:")
      ? g.trainable.quantizerParams.get(k.slice(5))!.param
      : k.startsWith("act:")
      ? g.trainable.quantizerParams.get(k.slice(4))!.param
      : k;
    const ours = r.grads.get(name);
    assert.ok(ours, `no gradient for ${k}`);
    // Step gradients are sums over every element of a tensor (with cancellation): 1e-3; weights and biases 2e-4.
    return [k, relErr(ours, b64f32(b64)), k.startsWith("step:") || k.startsWith("act:") ? 1e-3 : 2e-4] as const;
  });
  assert.ok(errs.every(([, e, tol]) => e < tol), errs.map(([k, e]) => `${k} ${e.toExponential(1)}`).join("; "));
  assert.equal(errs.length, g.learnable.length);
});
