/**
 * QAT training-graph gradients (lib/qat buildQatGraph) against PyTorch autograd on a tiny conv net at W4A4:
 * STE (torch.fake_quantize_per_{channel,tensor}_affine), LSQ (torch._fake_quantize_learnable_*_affine with LSQ's
 * gradient factor) and PACT (by hand). Fixture: tests/fixtures/make_qat_fixtures.py.
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

async function fixtureState(): Promise<PtqState> {
  const model = await OnnxModel.load(MODEL);
  const wq = quantizer().int(4).symmetric().perChannel();
  const plan = buildPlan(model, {
    weights: wq,
    activations: quantizer().uint(4).asymmetric(),
    placement: "weight-inputs",
  });
  const act = (s: number): QuantParams => ({
    bits: 4,
    signed: false,
    symmetric: false,
    range: "full",
    qmin: 0,
    qmax: 15,
    scale: new Float32Array([s]),
    zeroPoint: new Int32Array([0]),
    granularity: { kind: "tensor" },
  });
  const activationParams = new Map<string, QuantParams>();
  for (const e of plan.activations) {
    // The plan quantizes the pooled value and lets Flatten share it; PyTorch quantizes after the flatten.
    const sharer = plan.activations.find((a) => a.sharesWith === e.tensor)?.tensor ?? "";
    const s = FIX.activationScales[e.tensor] ?? FIX.activationScales[e.sharesWith ?? ""] ??
      FIX.activationScales[sharer];
    assert.ok(s !== undefined, `no fixture scale for planned activation ${e.tensor}`);
    activationParams.set(e.tensor, act(s));
  }
  const inits = indexGraph(model.graph).initializers;
  const weightFits = new Map();
  for (const e of plan.weights) {
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
