import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { makeTensorProto, tensorValues } from "../../lib/onnx/tensor_data.ts";
import { ocs, type OcsLayerRecord, ocsSplit } from "../../lib/ptq/ocs.ts";
import { nextState, PTQ_PASSES } from "../../lib/ptq/pass.ts";
import { passes } from "../../lib/ptq/passes.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { mse } from "../../lib/quant/calibrate/mse.ts";
import { percentile } from "../../lib/quant/calibrate/percentile.ts";
import { sqnr } from "../../lib/quant/metrics.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { batches } from "../../lib/data/batching.ts";
import { modelPath } from "../onnx/_fixtures.ts";

interface Case {
  name: string;
  weight: number[];
  dims: number[];
  inAxis: number;
  outAxis: number;
  expandRatio: number;
  splitThreshold: number;
  step?: number[];
  split: number[];
  splitDims: number[];
  channels: number[];
}
const fixtures: {
  cases: Case[];
  wrapper: Omit<Case, "inAxis" | "outAxis" | "step"> & { bits: number; wScale: number; codes: number[] };
} = JSON.parse(await Deno.readTextFile(new URL("../fixtures/ocs_fixtures.json", import.meta.url)));

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

Deno.test("ocsSplit matches the reference's ocs_wts (verbatim numpy) on every fixture case", () => {
  for (const c of fixtures.cases) {
    const r = ocsSplit(Float32Array.from(c.weight), c.dims, {
      inAxis: c.inAxis,
      outAxis: c.outAxis,
      expandRatio: c.expandRatio,
      splitThreshold: c.splitThreshold,
      step: c.step,
    });
    assert.deepEqual([...r.dims], c.splitDims, c.name);
    assert.deepEqual([...r.channels], c.channels, c.name);
    assertClose(r.values, c.split, 1e-6, c.name);
  }
  // The repeat case splits one channel three times: its copies hold an eighth, a quarter... of the outlier.
  const rep = fixtures.cases.find((c) => c.name === "conv_repeat")!;
  assert.deepEqual(rep.channels, [7, 7, 7]);
});

/** x [N, 6, 5, 5] -> Conv(w [8, 6, 3, 3], bias, pads 1) -> Relu -> y. */
function convModel(w: Float32Array, dims: number[]): OnnxModel {
  const p = emptyModel(13);
  p.graph.input.push({
    name: "x",
    type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: dims[1] }, { value: 5 }, { value: 5 }] } },
  });
  p.graph.initializer.push(
    makeTensorProto("w", w, dims),
    makeTensorProto("b", new Float32Array(dims[0]).map((_, i) => 0.01 * i), [dims[0]]),
  );
  const pads = [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }];
  p.graph.node.push(
    { input: ["x", "w", "b"], output: ["h"], name: "conv", opType: "Conv", domain: "", attribute: pads },
    { input: ["h"], output: ["y"], name: "relu", opType: "Relu", domain: "", attribute: [] },
  );
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  return OnnxModel.fromProto(p);
}

/** x [N, 10] -> Gemm(transB, w [5, 10], b) -> Relu -> MatMul(w [5, 4]) -> y. */
function mlpModel(seed: number): OnnxModel {
  const rng = new Prng(seed);
  const p = emptyModel(13);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 10 }] } } });
  const w1 = rng.fillNormal(new Float32Array(50), 0, 0.2) as Float32Array;
  w1[3 * 10 + 6] = 1.7;
  const w2 = rng.fillNormal(new Float32Array(20), 0, 0.3) as Float32Array;
  w2[2 * 4 + 1] = -1.5;
  p.graph.initializer.push(
    makeTensorProto("w1", w1, [5, 10]),
    makeTensorProto("b1", new Float32Array(5).fill(0.05), [5]),
    makeTensorProto("w2", w2, [5, 4]),
  );
  p.graph.node.push(
    {
      input: ["x", "w1", "b1"],
      output: ["h"],
      name: "fc1",
      opType: "Gemm",
      domain: "",
      attribute: [{ name: "transB", type: 2, i: 1 }],
    },
    { input: ["h"], output: ["r"], name: "relu", opType: "Relu", domain: "", attribute: [] },
    { input: ["r", "w2"], output: ["y"], name: "fc2", opType: "MatMul", domain: "", attribute: [] },
  );
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  return OnnxModel.fromProto(p);
}

function randomBatches(seed: number, shape: number[], n: number): Tensor<"float32">[] {
  const rng = new Prng(seed);
  return Array.from({ length: n }, () => {
    const x = new Float32Array(shape.reduce((a, d) => a * d, 1));
    rng.fillNormal(x);
    return new Tensor<"float32">(x, shape);
  });
}

async function run(m: OnnxModel, x: Tensor<"float32">): Promise<Float32Array> {
  const s = await createSession(m, { backend: "node" });
  return (await s.run({ [m.graph.input[0].name]: x }))[m.graph.output[0].name].data as Float32Array;
}

Deno.test("ocs pass reproduces the reference wrapper's grid-aware split and int4 codes; float model unchanged", async () => {
  const fx = fixtures.wrapper;
  const model = convModel(Float32Array.from(fx.weight), fx.dims);
  const data = randomBatches(1, [4, 6, 5, 5], 2);
  const m = await ptq(model)
    .weights(quantizer().int(fx.bits).symmetric().perTensor())
    .activations(quantizer().uint(8).asymmetric())
    .use(ocs({ expandRatio: fx.expandRatio }))
    .calibrateOn(data)
    .quantize();
  const rec = m.state.records.find((r) => r.pass === "ocs")!;
  const layers = (rec.details as { layers: OcsLayerRecord[] }).layers;
  assert.equal(layers.length, 1);
  assert.deepEqual([...layers[0].split], fx.channels);
  const ix = indexGraph(m.float.graph);
  const conv = m.float.graph.node.find((n) => n.name === "conv")!;
  const wT = ix.initializers.get(conv.input[1])!;
  assert.deepEqual([...wT.dims], fx.splitDims);
  assertClose(tensorValues(wT) as Float32Array, fx.split, 1e-6, "split weight");
  // The grid the split was made for: scale = 1 / w_scale of the reference (clip = max |w| of the plain split).
  const p = m.weightParams.get(conv.input[1])!;
  assert.ok(Math.abs(p.scale[0] * fx.wScale - 1) < 1e-6, `scale ${p.scale[0]} vs 1/${fx.wScale}`);
  // The codes the QDQ model stores equal the reference's linear_quantize_clamp codes.
  const qix = indexGraph(m.qdq.graph);
  const codes = tensorValues(qix.initializers.get(`${conv.input[1]}_quantized`)!);
  assert.deepEqual([...codes], fx.codes);
  // Float model: same function (Gather duplicates the input channels).
  const gather = m.float.graph.node.find((n) => n.opType === "Gather")!;
  assert.equal(conv.input[0], gather.output[0]);
  const x = randomBatches(7, [3, 6, 5, 5], 1)[0];
  const y0 = await run(model, x), y1 = await run(m.float, x);
  assertClose(y1, y0, 1e-5, "float outputs");
  let worst = 0;
  for (let i = 0; i < y0.length; i++) worst = Math.max(worst, Math.abs(y1[i] - y0[i]));
  assert.ok(worst < 2e-6, `float max diff ${worst}`);
  // QDQ and QOperator models are valid ONNX and run; the conv is lowered to QLinearConv and agrees with QDQ.
  const yq = await run(m.qdq, x);
  const yo = await run(m.qoperator.model, x);
  assert.ok(m.qoperator.lowered.some((l) => l.op === "QLinearConv"), JSON.stringify(m.qoperator.lowered));
  const outScale = m.activationParams.get("y")!.scale[0];
  for (let i = 0; i < yq.length; i++) assert.ok(Math.abs(yq[i] - yo[i]) <= outScale * 1.01, `qoperator ${i}`);
});

Deno.test("ocs helps per-tensor int4 with outliers and works with clipping calibrators (plan's calibrator)", async () => {
  const fx = fixtures.wrapper;
  const model = convModel(Float32Array.from(fx.weight), fx.dims);
  const data = randomBatches(2, [8, 6, 5, 5], 2);
  const x = randomBatches(3, [16, 6, 5, 5], 1)[0];
  const y0 = await run(model, x);
  const w4 = quantizer().int(4).symmetric().perTensor();
  const base = ptq(model).weights(w4).activations(quantizer().uint(8).asymmetric()).calibrateOn(data);
  const nearest = sqnr(y0, await run((await base.quantize()).qdq, x));
  const plain = sqnr(y0, await run((await base.use(ocs({ expandRatio: 0.34, gridAware: false })).quantize()).qdq, x));
  const grid = sqnr(y0, await run((await base.use(ocs({ expandRatio: 0.34 })).quantize()).qdq, x));
  console.log(
    `output SQNR: nearest ${nearest.toFixed(2)} dB, OCS ${plain.toFixed(2)} dB, grid-aware ${grid.toFixed(2)} dB`,
  );
  assert.ok(plain > nearest + 3, `plain OCS ${plain} dB vs nearest ${nearest} dB`);
  assert.ok(grid > nearest + 3, `grid-aware OCS ${grid} dB vs nearest ${nearest} dB`);
  // Clipping calibrators: MSE-clipped weights, percentile-clipped activations; the pinned grid is the plan's
  // quantizer fitted on the plain split, and the stored weight is the grid-aware split on that grid.
  const wq = quantizer().int(4).symmetric().perChannel().calibrate(mse());
  const clipped = ptq(model).weights(wq).activations(quantizer().uint(8).asymmetric().calibrate(percentile()))
    .use(ocs({ expandRatio: 0.34 })).calibrateOn(data);
  const m = await clipped.quantize();
  const conv = m.float.graph.node.find((n) => n.name === "conv")!;
  const plainSplit = ocsSplit(Float32Array.from(fx.weight), fx.dims, { inAxis: 1, expandRatio: 0.34 });
  const expect = wq.fitWeights(new Tensor<"float32">(plainSplit.values, plainSplit.dims), { axis: 0 }).affine;
  const got = m.weightParams.get(conv.input[1])!;
  assert.deepEqual([...got.scale], [...expect.scale]);
  const gridSplit = ocsSplit(Float32Array.from(fx.weight), fx.dims, {
    inAxis: 1,
    expandRatio: 0.34,
    step: expect.scale,
  });
  const wT = indexGraph(m.float.graph).initializers.get(conv.input[1])!;
  assert.deepEqual([...(tensorValues(wT) as Float32Array)], [...gridSplit.values]);
  // MSE clipping really clipped something (the grid is narrower than min-max's).
  const mm = w4.perChannel().fitWeights(new Tensor<"float32">(plainSplit.values, plainSplit.dims), { axis: 0 }).affine;
  assert.ok(got.scale.some((s, c) => s < mm.scale[c] * 0.999), "MSE clipping changed no channel");
  const yc = await run(m.qoperator.model, x);
  assert.ok(sqnr(y0, yc) > 10, `clipped OCS QOperator SQNR ${sqnr(y0, yc)}`);
});

Deno.test("ocs on Gemm (transB) and MatMul: Gather on the last axis, float unchanged, QDQ/QOperator run", async () => {
  const model = mlpModel(5);
  const data = randomBatches(4, [16, 10], 2);
  const m = await ptq(model)
    .weights(quantizer().int(4).symmetric().perChannel())
    .use(passes.ocs({ expandRatio: 0.2 }))
    .calibrateOn(data)
    .quantize();
  const g = m.float.graph;
  const gathers = g.node.filter((n) => n.opType === "Gather");
  assert.equal(gathers.length, 2);
  const ix = indexGraph(g);
  const fc1 = g.node.find((n) => n.name === "fc1")!, fc2 = g.node.find((n) => n.name === "fc2")!;
  assert.deepEqual([...ix.initializers.get(fc1.input[1])!.dims], [5, 12]);
  assert.deepEqual([...ix.initializers.get(fc2.input[1])!.dims], [6, 4]);
  assert.deepEqual([...tensorValues(ix.initializers.get(gathers[0].input[1])!)].map(Number).slice(10), [6, 6]);
  // Plan: the Gather outputs share the layer inputs' parameters; int32 biases read the Gather output.
  for (const ga of gathers) {
    const e = m.plan.get(ga.output[0]);
    assert.ok(e?.kind === "activation" && e.sharesWith === ga.input[0], JSON.stringify(e));
  }
  const bias = m.plan.biases.find((b) => b.node === "fc1")!;
  assert.equal(bias.input, fc1.input[0]);
  assert.equal(bias.weight, fc1.input[1]);
  const x = randomBatches(9, [7, 10], 1)[0];
  const y0 = await run(model, x), y1 = await run(m.float, x);
  assertClose(y1, y0, 2e-6, "float outputs");
  const yq = await run(m.qdq, x), yo = await run(m.qoperator.model, x);
  assert.ok(sqnr(y0, yq) > 10, `QDQ SQNR ${sqnr(y0, yq)}`);
  assert.ok(
    m.qoperator.lowered.some((l) => l.op === "QGemm") && m.qoperator.lowered.some((l) => l.op === "QLinearMatMul"),
  );
  const s = m.activationParams.get("y")!.scale[0];
  for (let i = 0; i < yq.length; i++) assert.ok(Math.abs(yq[i] - yo[i]) <= s * 1.01, `qoperator ${i}`);
});

Deno.test("ocs on the digits CNN: float outputs unchanged, W4A8 QOperator runs and agrees with QDQ", async () => {
  const model = OnnxModel.decode(
    await Deno.readFile(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url)),
  );
  const ds = await loadDigits();
  const m = await ptq(model).weights(quantizer().int(4).symmetric().perChannel()).use(ocs())
    .calibrateOn(ds, { count: 64 }).quantize();
  const details = m.state.records.find((r) => r.pass === "ocs")!.details as { layers: OcsLayerRecord[] };
  assert.ok(details.layers.length >= 3, JSON.stringify(details));
  for (const l of details.layers) assert.ok(l.maxAbsAfter < l.maxAbsBefore, `${l.layer} max |w| did not drop`);
  const x = [...batches(ds, { batchSize: 32, count: 32 })][0].x;
  // The float graph before OCS (BN folded) from the same pipeline without the pass.
  const folded = (await ptq(model).weights(quantizer().int(4).symmetric().perChannel()).calibrateOn(ds, { count: 64 })
    .quantize()).float;
  const y0 = await run(folded, x), y1 = await run(m.float, x);
  let worst = 0, scale = 0;
  for (let i = 0; i < y0.length; i++) {
    worst = Math.max(worst, Math.abs(y1[i] - y0[i]));
    scale = Math.max(scale, Math.abs(y0[i]));
  }
  assert.ok(worst <= 1e-6 * Math.max(1, scale) * 4, `float max diff ${worst} (outputs up to ${scale})`);
  const yq = await run(m.qdq, x), yo = await run(m.qoperator.model, x);
  const s = m.activationParams.get(model.graph.output[0].name)!.scale[0];
  for (let i = 0; i < yq.length; i++) assert.ok(Math.abs(yq[i] - yo[i]) <= s * 1.01, `qoperator ${i}`);
});

Deno.test("ocs: bad input is a QuantlabError naming the problem", async () => {
  const w = new Float32Array([1, 2, 3, 4]);
  assert.throws(() => ocs({ expandRatio: 2 }), QuantlabError);
  assert.throws(() => ocs({ expandRatio: -0.1 }), QuantlabError);
  assert.throws(() => ocs({ splitThreshold: Number.NaN }), QuantlabError);
  assert.throws(() => ocs({ gridAware: "yes" as unknown as boolean }), QuantlabError);
  assert.throws(() => ocs({ expandRatios: 0.1 } as unknown as Record<string, never>), /unknown option "expandRatios"/);
  assert.throws(() => ocsSplit(w, [2, 3], { inAxis: 1 }), QuantlabError);
  assert.throws(() => ocsSplit(w, [2, 2], { inAxis: 2 }), QuantlabError);
  assert.throws(() => ocsSplit(w, [2, 2], { inAxis: 1, outAxis: 1 }), QuantlabError);
  assert.throws(() => ocsSplit(new Float32Array([1, NaN, 0, 0]), [2, 2], { inAxis: 1 }), /NaN/);
  assert.throws(() => ocsSplit(w, [2, 2], { inAxis: 1, step: [1, 2, 3] }), QuantlabError);
  assert.throws(() => ocsSplit(w, [2, 2], { inAxis: 1, step: [0] }), QuantlabError);
  // After a pass that set weight values: refuse, naming the weight.
  const model = mlpModel(1);
  const pipe = ptq(model).weights(quantizer().int(4).perChannel()).calibrateOn(randomBatches(1, [4, 10], 1));
  const state = await pipe.state();
  const wName = state.plan!.weights[0].tensor;
  const s2 = nextState(state, { weightValues: new Map([[wName, new Float32Array(50)]]) });
  await assert.rejects(
    () => ocs().run(s2, { data: undefined, count: undefined, session: {}, progress: () => {} }),
    (e: unknown) => e instanceof QuantlabError && e.message.includes(wName),
  );
  await assert.rejects(
    () =>
      ocs().run({ ...state, plan: undefined }, { data: undefined, count: undefined, session: {}, progress: () => {} }),
    QuantlabError,
  );
});

Deno.test("ocs is registered by name and in passes", () => {
  const p = PTQ_PASSES.ocs({ expandRatio: 0.1, gridAware: false });
  assert.equal(p.name, "ocs");
  assert.ok(p.toString().includes('"gridAware":false'));
  assert.equal(passes.ocs().stage, "calibrated");
  assert.ok(modelPath("resnet8_op13.onnx").endsWith(".onnx"));
});

Deno.test("ocs composes with later passes: AdaRound rounds the split weights on OCS's grid; bias correction runs", async () => {
  const { adaRound } = await import("../../lib/adaround/adaround_pass.ts");
  const model = OnnxModel.decode(
    await Deno.readFile(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url)),
  );
  const ds = await loadDigits();
  const base = ptq(model).weights(quantizer().int(3).symmetric().perChannel()).calibrateOn(ds, { count: 64 });
  const withOcs = await base.use(ocs(), adaRound({ preset: "small", iterations: 20, samples: 32 })).quantize();
  const ocsRec = withOcs.state.records.find((r) => r.pass === "ocs")!.details as { layers: OcsLayerRecord[] };
  const ada = withOcs.state.records.find((r) => r.pass === "adaRound")!.details as {
    layers: { weight: string }[];
  };
  // AdaRound rounded the split weights (their new names) on the grid OCS pinned.
  for (const l of ocsRec.layers) assert.ok(ada.layers.some((a) => a.weight === l.weight), l.weight);
  const conv = ocsRec.layers[0]; // conv1: one input channel, so the whole weight is split
  const ocsOnly = await base.use(ocs()).quantize();
  const pinned = ocsOnly.weightParams.get(conv.weight)!;
  assert.deepEqual([...withOcs.weightParams.get(conv.weight)!.scale], [...pinned.scale]);
  // ... which differs from what min-max would fit on the grid-aware split itself (the +-s/4 offsets widen it).
  const refit = quantizer().int(3).symmetric().perChannel().fitWeights(
    new Tensor<"float32">(
      tensorValues(indexGraph(ocsOnly.float.graph).initializers.get(conv.weight)!) as Float32Array,
      indexGraph(ocsOnly.float.graph).initializers.get(conv.weight)!.dims,
    ),
    { axis: 0 },
  ).affine;
  assert.ok(refit.scale.some((v, c) => v !== pinned.scale[c]), "grid-aware split left every channel range unchanged");
  const bc = await base.use(ocs()).biasCorrection({ count: 32 }).quantize();
  assert.ok(bc.state.records.some((r) => r.pass === "biasCorrection"));
  const x = [...batches(ds, { batchSize: 16, count: 16 })][0].x;
  for (const m of [withOcs.qdq, withOcs.qoperator.model, bc.qdq, bc.qoperator.model]) {
    const y = await run(m, x);
    assert.ok(y.every(Number.isFinite));
  }
});
