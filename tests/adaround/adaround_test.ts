import assert from "node:assert/strict";
import { loadDigits } from "../../lib/data/digits.ts";
import { subset } from "../../lib/data/batching.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { QuantlabError } from "../../lib/errors.ts";
import {
  adaRound,
  type AdaRoundDetails,
  annealedBeta,
  rectifiedSigmoid,
  ROUNDING_NAMES,
  roundingGradientGraph,
  roundingRegularizer,
  splitWeights,
  stochasticRoundingTrials,
} from "../../lib/adaround/mod.ts";

const FIX = JSON.parse(await Deno.readTextFile(new URL("../fixtures/adaround_fixtures.json", import.meta.url)));
const f32 = (s: string) => new Float32Array(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer);
const session = { backend: "node" as const };

function maxRel(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

Deno.test("rectified sigmoid, regulariser and its gradient match torch autograd", () => {
  const g = FIX.grad;
  const v = f32(g.v);
  assert.ok(maxRel(rectifiedSigmoid(v), f32(g.h)) < 1e-6);
  const grad = new Float32Array(v.length);
  const r = roundingRegularizer(v, g.beta, grad);
  assert.ok(Math.abs(r - g.regularizer) / g.regularizer < 1e-5, `${r} vs ${g.regularizer}`);
  assert.ok(maxRel(grad, f32(g.regularizerGrad)) < 1e-4, `${maxRel(grad, f32(g.regularizerGrad))}`);
  for (const [it, beta] of g.betaSchedule) assert.ok(Math.abs(annealedBeta(it, 1000, [20, 2], 0.2) - beta) < 1e-9);
});

Deno.test("AdaRound loss and gradient graph (grouped conv + ReLU) match torch autograd", async () => {
  const g = FIX.grad;
  const w = f32(g.w), scale = f32(g.scale);
  const params = { ...quantizer().int(4).symmetric().perChannel().fit(w, g.wDims).params };
  assert.ok(maxRel(params.scale, scale) < 1e-6);
  const { base } = splitWeights(w, g.wDims, 0, params);
  const layer = {
    label: "grouped",
    node: {
      input: ["x", "w", "b"],
      output: ["y"],
      name: "grouped",
      opType: "Conv",
      domain: "",
      attribute: [{ name: "group", type: 2, i: 2 }, { name: "pads", type: 7, ints: [1, 1, 1, 1] }],
    },
    weight: w,
    dims: g.wDims,
    axis: 0,
    params,
    bias: { values: f32(g.b), dims: [g.wDims[0]] },
    activation: { opType: "Relu" as const },
  };
  const x = new Tensor<"float32">(f32(g.x), g.xDims), t = new Tensor<"float32">(f32(g.target), g.tDims);
  const tg = await roundingGradientGraph(layer, base, f32(g.v), x, t, session);
  const gs = await GradientSession.create(tg, session);
  const N = ROUNDING_NAMES;
  const s = (v: number) => new Tensor<"float32">(new Float32Array([v]), []);
  const r = await gs.run({ [N.input]: x, [N.target]: t, [N.beta]: s(g.beta), [N.reg]: s(g.reg) }, tg.initialParams());
  await gs.release();
  assert.ok(Math.abs(r.loss - g.loss) / g.loss < 1e-4, `${r.loss} vs ${g.loss}`);
  const rel = maxRel(r.grads.get(N.variable)!, f32(g.lossGrad));
  assert.ok(rel < 1e-3, `gradient max rel error ${rel}`);
});

Deno.test("AdaRound parity with the PyTorch reimplementation (digits CNN conv2 + ReLU, fc)", async () => {
  const model = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url));
  const data = subset(await loadDigits(), 0, 64);
  const P = FIX.parity;
  const run = ptq(model)
    .weights(quantizer().int(4).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric())
    .session(session)
    .use(adaRound({
      layers: (l) => l === "conv2" || l === "fc",
      inputs: "float",
      samples: P.samples,
      batchSize: P.batch,
      iterations: P.iterations,
      lr: P.lr,
    }))
    .calibrateOn(data, { count: 64 });
  const q = await run.quantize();
  const details = q.state.records.find((r) => r.pass === "adaRound")!.details as AdaRoundDetails;
  assert.deepEqual(details.layers.map((l) => l.layer), ["conv2", "fc"]);
  for (const l of details.layers) {
    const ref = P.layers[l.layer];
    assert.ok(Math.abs(l.mseNearest - ref.mseNearest) / ref.mseNearest < 0.01, `${l.layer} nearest ${l.mseNearest}`);
    assert.ok(
      Math.abs(l.mseAdaRound - ref.mseAdaRound) / ref.mseAdaRound < 0.1,
      `${l.layer} AdaRound MSE ${l.mseAdaRound} vs torch ${ref.mseAdaRound}`,
    );
    // The codes materialization stores are AdaRound's, and mostly equal to torch's.
    const wName = l.weight;
    const qInit = indexGraph(q.qdq.graph).initializers.get(`${wName}_quantized`)!;
    const codes = tensorValues(qInit) as Int8Array;
    let same = 0;
    for (let i = 0; i < codes.length; i++) if (codes[i] === ref.codes[i]) same++;
    assert.ok(same / codes.length > 0.95, `${l.layer}: ${same}/${codes.length} codes equal torch's`);
    assert.ok(l.flipped > 0.05, `${l.layer} flipped ${l.flipped}`);
    console.log(
      `${l.layer}: MSE nearest ${l.mseNearest.toPrecision(4)} (torch ${ref.mseNearest.toPrecision(4)}), AdaRound ` +
        `${l.mseAdaRound.toPrecision(4)} (torch ${
          ref.mseAdaRound.toPrecision(4)
        }), codes equal ${same}/${codes.length}`,
    );
  }
});

Deno.test("adaRound validates options and needs data", () => {
  assert.throws(() => adaRound({ iterations: 0 }), QuantlabError);
  assert.throws(() => adaRound({ warmStart: 1 }), QuantlabError);
  assert.throws(() => adaRound({ preset: "fast" as "small" }), QuantlabError);
  assert.ok(adaRound().toString().includes("iterations=auto"));
  assert.ok(adaRound({ preset: "small" }).toString().includes("iterations=2000"));
});

Deno.test("stochastic rounding: seeded, floor or ceil, unbiased on average", async () => {
  const model = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url));
  const data = subset(await loadDigits(), 0, 32);
  const state = await ptq(model)
    .weights(quantizer().int(4).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric())
    .session(session)
    .calibrateOn(data, { count: 32 })
    .state();
  const [a, b] = stochasticRoundingTrials(state, { draws: 2, seed: 5 });
  const [a2] = stochasticRoundingTrials(state, { draws: 1, seed: 5 });
  const w = state.plan!.weights.find((e) => e.node === "conv3")!.tensor;
  const folded = tensorValues(indexGraph(state.model.graph).initializers.get(w)!) as Float32Array;
  const va = a.weightValues.get(w)!, vb = b.weightValues.get(w)!;
  assert.deepEqual(va, a2.weightValues.get(w));
  assert.notDeepEqual(va, vb);
  const p = a.weightFits.get(w)!.affine!;
  const inner = folded.length / p.scale.length;
  let bias = 0;
  for (let i = 0; i < folded.length; i++) {
    const s = p.scale[Math.floor(i / inner)];
    const r = folded[i] / s, q = Math.round(va[i] / s);
    assert.ok(q === Math.floor(r) || q === Math.ceil(r) || q === p.qmax || q === p.qmin, `${r} -> ${q}`);
    bias += q - r;
  }
  assert.ok(Math.abs(bias / folded.length) < 0.05, `mean rounding bias ${bias / folded.length}`);
});

Deno.test("adaRound from the pass registry with inputs from the QDQ model (smoke)", async () => {
  const { PTQ_PASSES } = await import("../../lib/ptq/pass.ts");
  const model = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url));
  const data = subset(await loadDigits(), 0, 32);
  const pass = PTQ_PASSES.adaRound({ iterations: 5, samples: 32, batchSize: 8, inputs: "qdq", curveEvery: 2 });
  const q = await ptq(model)
    .weights(quantizer().int(3).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric())
    .session(session)
    .use(pass)
    .calibrateOn(data, { count: 32 })
    .quantize();
  const d = q.state.records.find((r) => r.pass === "adaRound")!.details as AdaRoundDetails;
  assert.equal(d.layers.length, 4);
  assert.deepEqual(d.layers[0].curve.map((c) => c.iteration), [0, 2, 4]);
  assert.equal(d.settings.inputs, "qdq");
  assert.equal(q.state.weightValues.size, 4);
});
