/**
 * Trained extremes (lib/qat/extremes.ts): gradients of BinaryConnect (deterministic and stochastic), XNOR-Net,
 * TWN and TTQ (latents and TTQ's Wp/Wn) against PyTorch autograd on a tiny conv net
 * (tests/fixtures/make_extremes_fixtures.py -> extremes_grads.json); latent clipping; determinism with the seed;
 * trained ternary beating PTQ ternary on the digits CNN, with the ONNX export reproducing the training accuracy.
 */
import assert from "node:assert/strict";
import { trainTestSplit } from "../../lib/data/batching.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { buildGradientGraph } from "../../lib/grad/compiler.ts";
import { crossEntropyLoss } from "../../lib/grad/losses.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { indexGraph, intAttr } from "../../lib/onnx/graph.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { makeTensorProto, tensorValues } from "../../lib/onnx/tensor_data.ts";
import {
  buildExtremeGraph,
  clipLatents,
  evaluateExtreme,
  EXTREME_METHODS,
  extremePtq,
  type ExtremeTrainMethod,
  trainExtreme,
} from "../../lib/qat/extremes.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

const FIX = JSON.parse(await Deno.readTextFile(new URL("../fixtures/extremes_grads.json", import.meta.url)));
const WEB = { backend: "web" as const, threads: 1 };
const DIGITS = new URL("../../datasets/models/digits_cnn.onnx", import.meta.url);

/** The fixture's network: Conv(w1, pad 1) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(fcw, fcb, transB). */
function tinyModel(): OnnxModel {
  const p = emptyModel(17);
  const g = p.graph;
  g.input.push({
    name: "input",
    type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 3 }, { value: 6 }, { value: 6 }] } },
  });
  g.initializer.push(
    makeTensorProto("w1", Float32Array.from(FIX.w1), FIX.w1Shape),
    makeTensorProto("fcw", Float32Array.from(FIX.fcw), FIX.fcwShape),
    makeTensorProto("fcb", Float32Array.from(FIX.fcb), [FIX.fcb.length]),
  );
  const node = (opType: string, input: string[], output: string, attribute = [] as ReturnType<typeof intAttr>[]) =>
    g.node.push({ opType, input, output: [output], name: output, domain: "", attribute });
  node("Conv", ["input", "w1"], "conv", [{ name: "pads", type: 7, ints: [1, 1, 1, 1] } as ReturnType<typeof intAttr>]);
  node("Relu", ["conv"], "relu");
  node("GlobalAveragePool", ["relu"], "gap");
  node("Flatten", ["gap"], "flat");
  node("Gemm", ["flat", "fcw", "fcb"], "logits", [intAttr("transB", 1)]);
  g.output.push({ name: "logits", type: { tensorType: { elemType: 1 } } });
  return OnnxModel.fromProto(p);
}

function close(name: string, got: ArrayLike<number>, want: readonly number[], tol = 2e-5): void {
  assert.equal(got.length, want.length, `${name}: length`);
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * Math.max(1, scale))) {
      throw new Error(`${name}[${i}]: got ${got[i]}, PyTorch ${want[i]} (scale ${scale})`);
    }
  }
}

for (const method of EXTREME_METHODS) {
  Deno.test(`extremes: ${method} gradients match PyTorch autograd (latents${method === "ttq" ? ", Wp, Wn" : ""})`, async () => {
    const want = FIX.methods[method];
    const g = await buildExtremeGraph(tinyModel(), { method, firstLast: false, session: WEB });
    assert.deepEqual(g.layers.map((l) => l.weight), ["w1", "fcw"]);
    const x = new Tensor<"float32">(Float32Array.from(FIX.x), FIX.xShape);
    const labels = new Tensor<"int32">(Int32Array.from(FIX.labels), [FIX.labels.length]);
    const feeds: Record<string, Tensor> = { input: x, labels };
    const noiseName = new Map<string, string>();
    for (const l of g.layers) {
      if (l.noise) {
        feeds[l.noise] = new Tensor<"float32">(Float32Array.from(FIX.noise[l.weight]), l.dims);
        noiseName.set(l.weight, l.noise);
      }
    }
    assert.equal(noiseName.size, method === "binaryconnect-stochastic" ? 2 : 0);
    const graph = await buildGradientGraph(g.forward, {
      loss: crossEntropyLoss("logits", "labels"),
      wrt: [...g.learnable],
      feeds,
      keep: [`w1_fake_quantized`, `fcw_fake_quantized`],
      fixedInputs: [...noiseName.values()],
      session: WEB,
    });
    const params = graph.initialParams();
    if (method === "ttq") {
      for (const w of ["w1", "fcw"]) {
        params.get(`${w}_ttq_wp`)![0] = FIX.ttqScales[w][0];
        params.get(`${w}_ttq_wn`)![0] = FIX.ttqScales[w][1];
      }
    }
    const gs = await GradientSession.create(graph, WEB);
    try {
      const r = await gs.run(feeds, params);
      // The forward: quantized weights exactly as PyTorch's, then loss and gradients.
      close(`${method} w1 quantized`, r.outputs.w1_fake_quantized.data as Float32Array, want.q1, 1e-6);
      close(`${method} fcw quantized`, r.outputs.fcw_fake_quantized.data as Float32Array, want.qf, 1e-6);
      assert.ok(Math.abs(r.loss - want.loss) < 1e-5, `${method} loss ${r.loss} vs ${want.loss}`);
      for (const [k, v] of Object.entries(want.grads) as [string, number | number[]][]) {
        const name = k.endsWith("_wp") || k.endsWith("_wn") ? k.replace(/_(wp|wn)$/, "_ttq_$1") : k;
        const got = r.grads.get(name);
        assert.ok(got, `${method}: no gradient for ${name}`);
        close(`${method} d/d${name}`, got, typeof v === "number" ? [v] : v);
      }
      // Every differentiated tensor was checked.
      assert.equal(r.grads.size, Object.keys(want.grads).length);
    } finally {
      await gs.release();
    }
  });
}

Deno.test("extremes: the gradient check can fail (TTQ Wn's sign is part of the reference)", () => {
  const g = FIX.methods.ttq.grads;
  assert.notEqual(Math.sign(g.w1_wn), 0);
  assert.throws(() => close("flipped", [-g.w1_wn], [g.w1_wn]));
});

Deno.test("extremes: clipLatents clips to [-1, 1] and names a missing parameter", () => {
  const p = new Map([["w", new Float32Array([-2, -1, 0.25, 1, 7])]]);
  clipLatents(p, ["w"]);
  assert.deepEqual([...p.get("w")!], [-1, -1, 0.25, 1, 1]);
  assert.throws(() => clipLatents(p, ["nope"]), (e) => e instanceof QuantlabError && e.message.includes("nope"));
});

Deno.test("extremes: bad method and layers left are typed errors", async () => {
  const model = await OnnxModel.load(DIGITS);
  await assert.rejects(
    () => buildExtremeGraph(model, { method: "ternary" as ExtremeTrainMethod }),
    (e) => e instanceof QuantlabError && e.message.includes("ternary"),
  );
  await assert.rejects(
    () => buildExtremeGraph(tinyModel(), { method: "twn" }),
    (e) => e instanceof QuantlabError && e.message.includes("no weight layer left"),
  );
});

const { train, test } = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });

function latents(model: OnnxModel, names: string[]): Float32Array[] {
  const inits = indexGraph(model.graph).initializers;
  return names.map((n) => tensorValues(inits.get(n)!) as Float32Array);
}

Deno.test("extremes: BinaryConnect latents stay in [-1, 1] after every step (clip acts at a large rate)", async () => {
  const model = await OnnxModel.load(DIGITS);
  let clippedSeen = 0;
  const r = await trainExtreme(model, train, {
    method: "binaryconnect",
    maxSteps: 6,
    batchSize: 64,
    optimizer: { kind: "sgd", lr: 50 },
    session: WEB,
  });
  for (const v of latents(r.state.model, ["conv2.weight", "conv3.weight"])) {
    for (const x of v) {
      assert.ok(x >= -1 && x <= 1, `latent ${x} outside [-1, 1]`);
      if (Math.abs(x) === 1) clippedSeen++;
    }
  }
  assert.ok(clippedSeen > 100, `the clip never acted (${clippedSeen} latents at +-1)`);
  // TWN keeps its latents unclipped.
  const t = await trainExtreme(model, train, {
    method: "twn",
    maxSteps: 6,
    batchSize: 64,
    optimizer: { kind: "sgd", lr: 50 },
    session: WEB,
  });
  assert.ok(latents(t.state.model, ["conv2.weight"])[0].some((x) => Math.abs(x) > 1));
});

Deno.test("extremes: stochastic BinaryConnect is deterministic for a seed and changes with it", async () => {
  const model = await OnnxModel.load(DIGITS);
  const run = (seed: number) =>
    trainExtreme(model, train, {
      method: "binaryconnect-stochastic",
      maxSteps: 5,
      batchSize: 32,
      seed,
      session: WEB,
    });
  const a = await run(3), b = await run(3), c = await run(4);
  assert.deepEqual([...a.losses], [...b.losses]);
  assert.deepEqual(latents(a.state.model, ["conv2.weight"]), latents(b.state.model, ["conv2.weight"]));
  assert.notDeepEqual([...a.losses], [...c.losses]);
});

Deno.test("extremes: trained TTQ and TWN beat PTQ ternary on the digits CNN; the ONNX export keeps the accuracy", async () => {
  const model = await OnnxModel.load(DIGITS);
  for (const method of ["ttq", "twn"] as const) {
    const ptqAcc =
      (await evaluateExtreme(await extremePtq(model, { method, session: WEB }), test, WEB)).exported.accuracy;
    const r = await trainExtreme(model, train, { method, epochs: 2, batchSize: 64, test, session: WEB });
    const ev = await evaluateExtreme(r, test, WEB);
    // The export (ternary float weights, int8 first/last QDQ, BN in float) computes what training measured.
    assert.ok(Math.abs(ev.exported.accuracy - r.history.at(-1)!.testAccuracy!) < 1e-9, JSON.stringify(ev));
    assert.ok(ev.exported.accuracy >= ptqAcc + 0.2, `${method}: trained ${ev.exported.accuracy} vs PTQ ${ptqAcc}`);
    assert.ok(ev.exported.accuracy > 0.95, `${method}: trained ${ev.exported.accuracy}`);
    // The exported weights of the middle layers are ternary: at most 3 values each.
    const inits = indexGraph(r.model.graph).initializers;
    for (const w of ["conv2.weight", "conv3.weight"]) {
      const v = tensorValues(inits.get(`${w}_fake_quantized`)!) as Float32Array;
      assert.ok(new Set(v).size <= 3, `${w}: ${new Set(v).size} distinct values`);
    }
    assert.ok(r.extremeBitsPerWeight > 2 && r.extremeBitsPerWeight < 2.05, String(r.extremeBitsPerWeight));
    assert.ok(r.bitsPerWeight > r.extremeBitsPerWeight && r.bitsPerWeight < 3, String(r.bitsPerWeight));
  }
});
