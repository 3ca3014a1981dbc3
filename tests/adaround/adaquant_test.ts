import assert from "node:assert/strict";
import { loadDigits } from "../../lib/data/digits.ts";
import { subset } from "../../lib/data/batching.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { compareModels } from "../../lib/ptq/evaluate.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import type { QuantParams } from "../../lib/quant/params.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { QuantlabError } from "../../lib/errors.ts";
import {
  adaQuant,
  ADAQUANT_NAMES,
  type AdaQuantDetails,
  adaQuantGradientGraph,
  type AdaQuantLayer,
} from "../../lib/adaround/mod.ts";

const FIX = JSON.parse(await Deno.readTextFile(new URL("../fixtures/adaquant_fixtures.json", import.meta.url)));
const f32 = (s: string) => new Float32Array(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer);
const session = { backend: "node" as const };
const N = ADAQUANT_NAMES;

function maxRel(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

function params(
  bits: number,
  qmin: number,
  qmax: number,
  symmetric: boolean,
  scale: Float32Array,
  zeroPoint: number[],
  axis?: number,
): QuantParams {
  return {
    bits,
    signed: qmin < 0,
    symmetric,
    range: "restricted",
    qmin,
    qmax,
    scale,
    zeroPoint: Int32Array.from(zeroPoint),
    granularity: axis === undefined ? { kind: "tensor" } : { kind: "channel", axis },
  };
}

async function gradients(layer: AdaQuantLayer, c: Record<string, unknown>) {
  const x = new Tensor<"float32">(f32(c.x as string), c.xDims as number[]);
  const t = new Tensor<"float32">(f32(c.target as string), c.tDims as number[]);
  const tg = await adaQuantGradientGraph(layer, x, t, session);
  const gs = await GradientSession.create(tg, session);
  try {
    return await gs.run({ [N.input]: x, [N.target]: t }, tg.initialParams());
  } finally {
    await gs.release();
  }
}

Deno.test("AdaQuant objective and gradients (grouped conv + ReLU, learned input range/min) match torch autograd", async () => {
  const c = FIX.conv;
  const layer: AdaQuantLayer = {
    label: "grouped",
    node: {
      input: ["x", "w", "b"],
      output: ["y"],
      name: "grouped",
      opType: "Conv",
      domain: "",
      attribute: [{ name: "group", type: 2, i: 2 }, { name: "pads", type: 7, ints: [1, 1, 1, 1] }],
    },
    weight: f32(c.w),
    dims: c.wDims,
    axis: 0,
    weightParams: params(4, -7, 7, true, f32(c.weightScale), [0, 0, 0, 0], 0),
    bias: { values: f32(c.b), dims: [4] },
    inputParams: params(8, 0, 255, false, new Float32Array([c.inputScale]), [c.inputZeroPoint]),
    activation: { opType: "Relu" },
  };
  const r = await gradients(layer, c);
  assert.ok(Math.abs(r.loss - c.loss) / c.loss < 1e-4, `loss ${r.loss} vs torch ${c.loss}`);
  const check = (name: string, ref: Float32Array, tol: number) => {
    const rel = maxRel(r.grads.get(name)!, ref);
    assert.ok(rel < tol, `${name}: max rel error ${rel}`);
  };
  check(N.weight, f32(c.gradW), 1e-3);
  check(N.bias, f32(c.gradB), 1e-3);
  check(N.weightRange, f32(c.gradWRange), 1e-3);
  check(N.inputRange, new Float32Array([c.gradXRange]), 1e-3);
  check(N.inputMin, new Float32Array([c.gradXMin]), 1e-3);
  assert.ok(!r.grads.has(N.weightMin), "a symmetric weight grid learns no minimum");
});

Deno.test("AdaQuant gradients (Gemm transB, asymmetric per-channel weights with learned minimum) match torch", async () => {
  const c = FIX.gemm;
  const layer: AdaQuantLayer = {
    label: "fc",
    node: {
      input: ["x", "w", "b"],
      output: ["y"],
      name: "fc",
      opType: "Gemm",
      domain: "",
      attribute: [{ name: "transB", type: 2, i: 1 }],
    },
    weight: f32(c.w),
    dims: c.wDims,
    axis: 0,
    weightParams: params(3, 0, 7, false, f32(c.weightScale), c.weightZeroPoint, 0),
    bias: { values: f32(c.b), dims: [3] },
  };
  const r = await gradients(layer, c);
  assert.ok(Math.abs(r.loss - c.loss) / c.loss < 1e-4, `loss ${r.loss} vs torch ${c.loss}`);
  for (
    const [name, ref] of [[N.weight, c.gradW], [N.bias, c.gradB], [N.weightRange, c.gradWRange], [
      N.weightMin,
      c.gradWMin,
    ]] as const
  ) {
    const rel = maxRel(r.grads.get(name)!, f32(ref));
    assert.ok(rel < 1e-3, `${name}: max rel error ${rel}`);
  }
});

const model = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url));
const digits = await loadDigits();
const base = () =>
  ptq(model)
    .weights(quantizer().int(4).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric())
    .session(session)
    .calibrateOn(subset(digits, 0, 256), { count: 256 });

/** KL divergence of the outputs of `q` from the float model's on the first 256 digits. */
async function outputKl(q: OnnxModel, float: OnnxModel): Promise<number> {
  return (await compareModels(float, q, subset(digits, 0, 256), { ...session, limit: 256 })).outputKl;
}

Deno.test("AdaQuant lowers every layer's output MSE vs nearest on the digits CNN at W4A8, and the QDQ model follows", async () => {
  const nearest = await base().quantize();
  const q = await base().use(adaQuant({ iterations: 150, samples: 256, seed: 3 })).quantize();
  const d = q.state.records.find((r) => r.pass === "adaQuant")!.details as AdaQuantDetails;
  assert.deepEqual(d.layers.map((l) => l.layer), ["conv1", "conv2", "conv3", "fc"]);
  for (const l of d.layers) {
    assert.ok(l.mseAfter < 0.8 * l.mseBefore, `${l.layer}: ${l.mseBefore} -> ${l.mseAfter}`);
    assert.ok(l.biasLearned && l.scaleChange > 0, `${l.layer} learned bias and scales`);
  }
  assert.ok(d.layers.some((l) => l.inputLearned !== undefined), "some input quantizer is learned");
  // The state carries what was learned: pinned weight scales, learned activation parameters, learned biases.
  const ix = indexGraph(q.qdq.graph).initializers;
  for (const l of d.layers) {
    const s = tensorValues(ix.get(`${l.weight}_scale`)!) as Float32Array;
    assert.deepEqual(s, q.state.weightFits.get(l.weight)!.affine!.scale);
  }
  const learnedInput = d.layers.find((l) => l.inputLearned)!.inputLearned!;
  assert.notDeepEqual(
    q.state.activationParams.get(learnedInput)!.scale,
    nearest.state.activationParams.get(learnedInput)!.scale,
  );
  const before = await outputKl(nearest.qdq, nearest.float);
  const after = await outputKl(q.qdq, nearest.float);
  console.log(`digits W4A8 output KL from float: nearest ${before.toPrecision(4)}, AdaQuant ${after.toPrecision(4)}`);
  assert.ok(after < before, `output KL ${before} -> ${after}`);
});

Deno.test("AdaQuant is deterministic given the seed, and sequential (qdq) inputs run", async () => {
  const run = async (seed: number, inputs: "float" | "qdq" = "float") => {
    const st = await base()
      .use(adaQuant({ iterations: 20, samples: 64, batchSize: 16, seed, inputs, layers: (l) => l === "conv2" }))
      .state();
    const w = st.plan!.weights.find((e) => e.node === "conv2")!.tensor;
    return { w: st.weightValues.get(w)!, details: st.records.at(-1)!.details as AdaQuantDetails };
  };
  const [a, b, c] = [await run(1), await run(1), await run(2)];
  assert.deepEqual(a.w, b.w);
  assert.notDeepEqual(a.w, c.w);
  const s = await run(1, "qdq");
  assert.equal(s.details.settings.inputs, "qdq");
  assert.ok(s.details.layers[0].mseAfter < s.details.layers[0].mseBefore);
});

Deno.test("adaQuant validates its options and needs data", () => {
  assert.throws(() => adaQuant({ iterations: 0 }), QuantlabError);
  assert.throws(() => adaQuant({ preset: "fast" as "small" }), QuantlabError);
  assert.throws(() => adaQuant({ inputs: "weights" as "float" }), QuantlabError);
  assert.ok(adaQuant().toString().includes("iterations=1000, batch=50, samples=1000"));
  assert.ok(adaQuant().toString().includes("lr w=0.00001 b=0.001 wq=0.001 xq=0.1"));
});
