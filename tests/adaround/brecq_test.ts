import assert from "node:assert/strict";
import { readerFromFeeds } from "../../lib/data/reader.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import type { AttributeProto } from "../../lib/onnx/proto.ts";
import {
  blockVariableName,
  brecq,
  type BrecqDetails,
  linearBeta,
  residualBlocks,
  ROUNDING_NAMES,
  roundingBlockGradientGraph,
  splitWeights,
} from "../../lib/adaround/mod.ts";

const session = { backend: "node" as const };
const resnet = await OnnxModel.load(new URL("../../datasets/models/resnet8_fashion.onnx", import.meta.url));

Deno.test("residual blocks of the ResNet-8 graph: three, from the block input to the Relu after the Add", () => {
  const blocks = residualBlocks(resnet);
  const names = (b: (typeof blocks)[number]) => b.nodes.map((i) => resnet.graph.node[i].name);
  assert.deepEqual(blocks.map((b) => [b.label, b.input, b.output]), [
    ["Add", "Relu_out", "Relu_out_2"],
    ["Add_1", "Relu_out_2", "Relu_out_4"],
    ["Add_2", "Relu_out_4", "Relu_out_6"],
  ]);
  assert.deepEqual(names(blocks[0]), [
    "layer1.conv1",
    "layer1.bn1",
    "Relu_1",
    "layer1.conv2",
    "layer1.bn2",
    "Add",
    "Relu_2",
  ]);
  // The downsample branch belongs to the block.
  assert.ok(names(blocks[1]).includes("layer2.down.conv") && names(blocks[1]).includes("layer2.down.bn"));
  assert.equal(blocks[2].nodes.length, 9);
});

Deno.test("block objective of a one-layer block equals the torch AdaRound objective (grouped conv + ReLU fixture)", async () => {
  // tests/fixtures/make_adaround_fixtures.py: AIMET's loss and its autograd gradient with respect to V.
  const FIX = JSON.parse(await Deno.readTextFile(new URL("../fixtures/adaround_fixtures.json", import.meta.url))).grad;
  const f32 = (s: string) => new Float32Array(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer);
  const w = f32(FIX.w);
  const params = quantizer().int(4).symmetric().perChannel().fit(w, FIX.wDims).params;
  const { base, fraction } = splitWeights(w, FIX.wDims, 0, params);
  const conv = {
    input: ["x", "w", "b"],
    output: ["y"],
    name: "grouped",
    opType: "Conv",
    domain: "",
    attribute: [{ name: "group", type: 2, i: 2 }, { name: "pads", type: 7, ints: [1, 1, 1, 1] }],
  };
  const relu = { input: ["y"], output: ["z"], name: "relu", opType: "Relu", domain: "", attribute: [] };
  const block = {
    label: "grouped",
    nodes: [conv, relu],
    constants: [makeTensorProto("b", f32(FIX.b), [FIX.wDims[0]])],
    input: "x",
    output: "z",
    weights: [{ tensor: "w", dims: FIX.wDims, axis: 0, params, base, fraction }],
  };
  const x = new Tensor<"float32">(f32(FIX.x), FIX.xDims), t = new Tensor<"float32">(f32(FIX.target), FIX.tDims);
  const v = f32(FIX.v);
  const tg = await roundingBlockGradientGraph(block, new Map([["w", v]]), x, t, session);
  const gs = await GradientSession.create(tg, session);
  const N = ROUNDING_NAMES;
  const s = (a: number) => new Tensor<"float32">(new Float32Array([a]), []);
  const r = await gs.run({ x, [N.target]: t, [N.beta]: s(FIX.beta), [N.reg]: s(FIX.reg) }, tg.initialParams());
  await gs.release();
  assert.ok(Math.abs(r.loss - FIX.loss) / FIX.loss < 1e-4, `${r.loss} vs torch ${FIX.loss}`);
  const g = r.grads.get(blockVariableName("w"))!, ref = f32(FIX.lossGrad);
  let num = 0, den = 0;
  for (let i = 0; i < g.length; i++) {
    [num, den] = [Math.max(num, Math.abs(g[i] - ref[i])), Math.max(den, Math.abs(ref[i]))];
  }
  assert.ok(num / den < 1e-3, `gradient max rel error ${num / den}`);
});

Deno.test("block objective and gradients (BasicBlock with downsample, 3 rounded weights) match torch (BRECQ)", async () => {
  // tests/fixtures/make_brecq_fixtures.py: BRECQ's AdaRoundQuantizer soft targets and LossFunction, torch autograd.
  const F = JSON.parse(await Deno.readTextFile(new URL("../fixtures/brecq_fixtures.json", import.meta.url)));
  const f32 = (s: string) => new Float32Array(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer);
  const node = (opType: string, input: string[], output: string, attribute: AttributeProto[] = []) => ({
    input,
    output: [output],
    name: output,
    opType,
    domain: "",
    attribute,
  });
  const pads = [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }];
  const weights = ["w1", "w2", "wd"].map((k) => {
    const e = F[k];
    const params = {
      bits: F.bits,
      signed: false,
      symmetric: false,
      range: "full" as const,
      qmin: 0,
      qmax: 2 ** F.bits - 1,
      scale: f32(e.delta),
      zeroPoint: Int32Array.from(e.zp as number[]),
      granularity: { kind: "channel" as const, axis: 0 },
    };
    const { base, fraction } = splitWeights(f32(e.w), e.dims, 0, params);
    return { tensor: k, dims: e.dims, axis: 0, params, base, fraction };
  });
  const block = {
    label: "basic",
    nodes: [
      node("Conv", ["x", "w1", "b1"], "y1", pads),
      node("Relu", ["y1"], "r1"),
      node("Conv", ["r1", "w2", "b2"], "y2", pads),
      node("Conv", ["x", "wd"], "yd"),
      node("Add", ["y2", "yd"], "s"),
      node("Relu", ["s"], "out"),
    ],
    constants: [makeTensorProto("b1", f32(F.b1), [3]), makeTensorProto("b2", f32(F.b2), [3])],
    input: "x",
    output: "out",
    weights,
  };
  const v0 = new Map(["w1", "w2", "wd"].map((k) => [k, f32(F[k].alpha)]));
  const x = new Tensor<"float32">(f32(F.x), F.xDims), t = new Tensor<"float32">(f32(F.target), F.tDims);
  const tg = await roundingBlockGradientGraph(block, v0, x, t, session);
  const gs = await GradientSession.create(tg, session);
  const N = ROUNDING_NAMES;
  const s = (a: number) => new Tensor<"float32">(new Float32Array([a]), []);
  const r = await gs.run({ x, [N.target]: t, [N.beta]: s(F.beta), [N.reg]: s(F.reg) }, tg.initialParams());
  await gs.release();
  assert.ok(Math.abs(r.loss - F.loss) / F.loss < 1e-4, `${r.loss} vs torch ${F.loss}`);
  for (const k of ["w1", "w2", "wd"]) {
    const g = r.grads.get(blockVariableName(k))!, ref = f32(F[k].grad);
    let num = 0, den = 0;
    for (let i = 0; i < g.length; i++) {
      num = Math.max(num, Math.abs(g[i] - ref[i]));
      den = Math.max(den, Math.abs(ref[i]));
    }
    assert.ok(num / den < 1e-3, `${k}: gradient max rel error ${num / den}`);
  }
});

Deno.test("BRECQ temperature: linear from 20 to 2 after the warm-up (BRECQ LinearTempDecay, 1-based count)", () => {
  // Reference values from BRECQ's LossFunction with max_count 100, warmup 0.2: count = it + 1; count < 20 -> 0.
  assert.equal(linearBeta(18, 100, [20, 2], 0.2), 0);
  assert.equal(linearBeta(19, 100, [20, 2], 0.2), 20);
  assert.ok(Math.abs(linearBeta(59, 100, [20, 2], 0.2) - 11) < 1e-12);
  assert.ok(Math.abs(linearBeta(99, 100, [20, 2], 0.2) - 2) < 1e-12);
});

/** Seeded synthetic calibration batches for the ResNet-8 (28x28 grey images). */
function feeds(batches: number, seed: number) {
  const rng = new Prng(seed);
  return readerFromFeeds(
    Array.from({ length: batches }, () => {
      const x = new Float32Array(32 * 28 * 28);
      for (let i = 0; i < x.length; i++) x[i] = rng.nextFloat() * 2 - 0.5;
      return { input: new Tensor<"float32">(x, [32, 1, 28, 28]) };
    }),
  );
}

const run = (seed: number, iterations: number, inputs: "quantized-weights" | "qdq" = "quantized-weights") =>
  ptq(resnet)
    .weights(quantizer().int(3).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric())
    .session(session)
    .use(brecq({ iterations, samples: 64, batchSize: 16, seed, curveEvery: 10, inputs }))
    .calibrateOn(feeds(2, 7), { count: 64 })
    .state();

Deno.test("BRECQ on ResNet-8 at W3: blocks and first/last layers reconstructed, block errors below nearest", async () => {
  const st = await run(0, 120);
  const d = st.records.find((r) => r.pass === "brecq")!.details as BrecqDetails;
  assert.deepEqual(d.units.map((u) => [u.kind, u.label]), [
    ["layer", "conv"],
    ["block", "Add"],
    ["block", "Add_1"],
    ["block", "Add_2"],
    ["layer", "fc"],
  ]);
  assert.deepEqual(d.units[2].layers, ["layer2.conv1", "layer2.conv2", "layer2.down.conv"]);
  for (const u of d.units) {
    assert.ok(u.mseRounded < u.mseNearest, `${u.label}: ${u.mseNearest} -> ${u.mseRounded}`);
    assert.ok(u.flipped > 0, `${u.label} flipped nothing`);
    console.log(`${u.kind} ${u.label}: ${u.mseNearest.toPrecision(4)} -> ${u.mseRounded.toPrecision(4)}`);
  }
  assert.equal(st.weightValues.size, 10);
  // Rounded values are on the pinned grid.
  for (const [w, v] of st.weightValues) {
    const p = st.weightFits.get(w)!.affine!;
    const inner = v.length / p.scale.length;
    for (let i = 0; i < v.length; i += 7) {
      const q = v[i] / p.scale[Math.floor(i / inner)];
      assert.ok(Math.abs(q - Math.round(q)) < 1e-3 && Math.abs(q) <= p.qmax + 1e-3, `${w}[${i}] = ${q} steps`);
    }
  }
});

Deno.test("BRECQ is deterministic given the seed", async () => {
  const [a, b, c] = [await run(5, 15), await run(5, 15), await run(6, 15)];
  const w = "layer2.conv1.weight_folded";
  assert.ok(a.weightValues.has(w), [...a.weightValues.keys()].join());
  assert.deepEqual(a.weightValues.get(w), b.weightValues.get(w));
  const ca = (a.records.at(-1)!.details as BrecqDetails).units.map((u) => u.curve);
  const cb = (b.records.at(-1)!.details as BrecqDetails).units.map((u) => u.curve);
  assert.deepEqual(ca, cb);
  const cc = (c.records.at(-1)!.details as BrecqDetails).units.map((u) => u.curve);
  assert.notDeepEqual(ca, cc);
  // Inputs from the QDQ model (activations quantized): runs, and the first block sees different inputs.
  const q = (await run(5, 15, "qdq")).records.at(-1)!.details as BrecqDetails;
  assert.equal(q.settings.inputs, "qdq");
  assert.notEqual(q.units[1].mseNearest, (a.records.at(-1)!.details as BrecqDetails).units[1].mseNearest);
});

Deno.test("brecq validates its options", () => {
  assert.throws(() => brecq({ iterations: 0 }), QuantlabError);
  assert.throws(() => brecq({ warmup: 1 }), QuantlabError);
  assert.throws(() => brecq({ preset: "aimet" as "small" }), QuantlabError);
  assert.ok(brecq().toString().includes("iterations=20000, batch=32, samples=1024, reg=0.01, b=20->2 linear"));
});
