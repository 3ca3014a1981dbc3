import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { makeTensorProto, tensorValues } from "../../lib/onnx/tensor_data.ts";
import { calibrationStats, clearCalibrationCache } from "../../lib/ptq/calibrate_pass.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { buildPlan } from "../../lib/ptq/policy.ts";
import { QuantPlan } from "../../lib/ptq/plan.ts";
import { planFromJson } from "../../lib/ptq/recipes.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { calibrate } from "../../lib/quant/calibrate/mod.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { modelPath } from "../onnx/_fixtures.ts";

const NODE = { backend: "node" } as const;

/** Seeded NCHW batches for the 1x28x28 fixtures. */
function images(count: number, seed = 3): Tensor<"float32">[] {
  const rng = new Prng(seed);
  return Array.from({ length: count }, () => {
    const v = rng.fillNormal(new Float32Array(8 * 28 * 28)) as Float32Array;
    return new Tensor<"float32">(v, [8, 1, 28, 28]);
  });
}

/** Two inputs: y = Relu(x1 @ w1 + x2 @ w2) @ w3. */
function twoInputModel(): OnnxModel {
  const rng = new Prng(9);
  const p = emptyModel(13);
  const f = (name: string, dims: number[]) =>
    makeTensorProto(name, rng.fillNormal(new Float32Array(dims[0] * dims[1])) as Float32Array, dims);
  for (const name of ["x1", "x2"]) {
    p.graph.input.push({ name, type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 4 }] } } });
  }
  p.graph.initializer.push(f("w1", [4, 6]), f("w2", [4, 6]), f("w3", [6, 3]));
  const node = (op: string, input: string[], out: string, name: string) => ({
    input,
    output: [out],
    name,
    opType: op,
    domain: "",
    attribute: [],
  });
  p.graph.node.push(
    node("MatMul", ["x1", "w1"], "a", "mm1"),
    node("MatMul", ["x2", "w2"], "b", "mm2"),
    node("Add", ["a", "b"], "s", "add"),
    node("Relu", ["s"], "r", "relu"),
    node("MatMul", ["r", "w3"], "y", "mm3"),
  );
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  return OnnxModel.fromProto(p, "two-input");
}

Deno.test("plan JSON round trip: every entry, quantizer and bit width survive", async () => {
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const plan = buildPlan(m, {
    weights: quantizer().int(4).symmetric().perChannel(),
    activations: quantizer().uint(8).asymmetric().calibrate(calibrate.percentile({ percentile: 99.9 })),
    overrides: [{ match: "*conv1*", set: { bits: 8 } }],
  });
  const json = JSON.parse(JSON.stringify(plan));
  const back = planFromJson(json);
  assert.ok(back instanceof QuantPlan);
  assert.equal(JSON.stringify(back), JSON.stringify(plan));
  assert.equal(back.toString(), plan.toString());
  assert.ok(plan.toString().includes("int32"), plan.toString());
  assert.throws(() => planFromJson({ ...json, format: "nope" }), (e: unknown) => e instanceof QuantlabError);
});

Deno.test("an excluded node stays float in the QDQ and QOperator exports", async () => {
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const excluded = m.graph.node.find((n) => n.opType === "Conv")!.name;
  assert.ok(excluded, "fixture nodes are named");
  const run = ptq(m).exclude(excluded).calibrateOn(images(2)).session(NODE);
  const q = await run.quantize();
  assert.ok(!q.plan.weights.some((w) => w.node === excluded));
  const conv = q.qdq.graph.node.find((n) => n.name === excluded)!;
  const w = q.qdq.graph.initializer.find((t) => t.name === conv.input[1]);
  assert.ok(w && w.dataType === 1, "the excluded Conv reads its float weight directly");
  const lowered = q.qoperator;
  assert.ok(lowered.model.graph.node.some((n) => n.name === excluded && n.opType === "Conv"), "still a float Conv");
  assert.ok(lowered.float.some((f) => f.node.includes(excluded)), JSON.stringify(lowered.float));
  assert.ok(lowered.model.graph.node.filter((n) => n.opType === "QLinearConv").length >= 5);
  // Both exports run.
  for (const model of [q.qdq, lowered.model]) {
    const s = await createSession(model, NODE);
    const out = await s.run({ [s.inputNames[0]]: images(1)[0] });
    assert.ok((out[s.outputNames[0]].data as Float32Array).every(Number.isFinite));
  }
});

Deno.test("a per-node 4-bit override changes only that node", async () => {
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const convs = m.graph.node.filter((n) => n.opType === "Conv").map((n) => n.name);
  const target = convs[2];
  const base = ptq(m).calibrateOn(images(2)).session(NODE);
  const a = await base.quantize();
  const b = await base.override(target, { weightBits: 4 }).quantize();
  for (const e of a.plan.weights) {
    const other = b.plan.weights.find((w) => w.tensor === e.tensor)!;
    if (e.node === target) {
      assert.equal(other.bits, 4);
      assert.equal(b.weightParams.get(e.tensor)!.qmax, 7);
    } else {
      assert.equal(other.bits, 8, e.node);
      const [pa, pb] = [a.weightParams.get(e.tensor)!, b.weightParams.get(e.tensor)!];
      assert.deepStrictEqual(pa.scale, pb.scale, e.node);
      const codes = (model: OnnxModel) =>
        tensorValues(model.graph.initializer.find((t) => t.name === `${e.tensor}_quantized`)!);
      assert.deepStrictEqual(codes(a.qdq), codes(b.qdq), `codes of ${e.node}`);
    }
  }
  // Activations are untouched by a weight-bits override.
  assert.deepStrictEqual([...a.activationParams.keys()], [...b.activationParams.keys()]);
});

Deno.test("a two-input model calibrates from a reader of named inputs", async () => {
  const m = twoInputModel();
  const rng = new Prng(1);
  const feeds = Array.from({ length: 3 }, () => ({
    x1: new Tensor<"float32">(rng.fillNormal(new Float32Array(16 * 4)) as Float32Array, [16, 4]),
    x2: new Tensor<"float32">(rng.fillNormal(new Float32Array(16 * 4)) as Float32Array, [16, 4]),
  }));
  const q = await ptq(m).calibrateOn(feeds).session(NODE).quantize();
  for (const t of ["x1", "x2", "r", "y"]) assert.ok(q.activationParams.has(t), t);
  assert.ok(!q.plan.has("s"), "Add feeding a Relu is fused");
  assert.equal(q.plan.weights.length, 3);
  const s = await createSession(q.qdq, NODE);
  const y = (await s.run(feeds[0]))["y"];
  assert.deepStrictEqual(y.shape, [16, 3]);
  // A dataset cannot feed a two-input model: a typed error names the inputs.
  assert.throws(
    () =>
      ptq(m).calibrateOn({
        name: "toy",
        pixels: new Uint8Array(4),
        labels: new Uint8Array(1),
        count: 1,
        channels: 1,
        height: 2,
        width: 2,
        pixelMax: 255,
        classes: ["a"],
      }),
    (e: unknown) => e instanceof QuantlabError && e.message.includes("x1"),
  );
  // Junk is refused with a typed error, not a TypeError.
  assert.throws(() => ptq(m).calibrateOn(42 as never), (e: unknown) => e instanceof QuantlabError);
});

Deno.test("calibration is not repeated across weight-only variations (counted)", async () => {
  clearCalibrationCache();
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const data = images(2);
  const base = ptq(m).calibrateOn(data).session(NODE);
  const convs = m.graph.node.filter((n) => n.opType === "Conv").map((n) => n.name);
  const variants = [
    base,
    base.weights(quantizer().int(4).symmetric().perChannel()),
    base.weights(quantizer().int(6).symmetric()),
    base.override(convs[1], { weightBits: 3 }),
    base.weights(quantizer().int(4).symmetric()).biasCorrection({ count: 8 }),
  ];
  for (const v of variants) await v.quantize();
  assert.equal(calibrationStats().runs, 1);
  assert.equal(calibrationStats().hits, variants.length - 1);
  // A different activation quantizer does calibrate again.
  await base.activations(quantizer().uint(6).asymmetric()).quantize();
  assert.equal(calibrationStats().runs, 2);
});

Deno.test("placements: relu-only, weight inputs, input float, first/last at 8 bits, op types", async () => {
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const all = buildPlan(m);
  const relu = buildPlan(m, { placement: "relu", input: false });
  assert.ok(
    relu.activations.every((e) => e.role === "constant" || e.opType === "Relu" || e.sharesWith),
    relu.toString(),
  );
  assert.ok(relu.observed.length < all.observed.length);
  assert.ok(!relu.has(m.graph.input[0].name));
  const wi = buildPlan(m, { placement: "weight-inputs" });
  const logits = m.graph.output[0].name;
  assert.ok(all.has(logits) && !wi.has(logits), "weight-inputs leaves the logits float");
  const fl = buildPlan(m, { weights: quantizer().int(4).symmetric().perChannel(), firstLast: { bits: 8 } });
  const bits = fl.weights.map((w) => w.bits);
  assert.equal(bits[0], 8);
  assert.equal(bits[bits.length - 1], 8);
  assert.ok(bits.slice(1, -1).every((b) => b === 4));
  const onlyConv = buildPlan(m, { opTypes: ["Conv"] });
  assert.ok(onlyConv.weights.every((w) => w.opType === "Conv"));
  assert.ok(!onlyConv.has(logits));
  const pred = buildPlan(m, { placement: (c) => c.role === "output" });
  assert.ok(pred.has(logits) && pred.observed.length === 2, pred.toString()); // input + logits
  assert.throws(() => buildPlan(m, { placement: "everything" as never }), (e: unknown) => e instanceof QuantlabError);
});

Deno.test("trainable materialization: STE, LSQ and PACT graphs name their learnable tensors and build gradients", async () => {
  const { buildGradientGraph } = await import("../../lib/grad/compiler.ts");
  const { crossEntropyLoss } = await import("../../lib/grad/losses.ts");
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const run = ptq(m).placement("relu").input(false).calibrateOn(images(2)).session(NODE);
  const x = images(1)[0];
  const labels = new Tensor<"int32">(new Int32Array(8).map((_, i) => i % 10), [8]);
  for (
    const [weights, activations] of [["ste", "ste"], ["lsq", "lsq"], ["ste", "pact"]] as const
  ) {
    const t = await run.trainable({ weights, activations });
    const w = [...t.weights.keys()];
    if (weights === "ste") assert.equal(w.length, 10);
    if (weights === "lsq") assert.ok(t.learnable.some((n) => n.endsWith("_lsq_step")));
    if (activations !== "ste") assert.ok(t.quantizerParams.size > 0);
    const input = m.graph.input[0].name, out = m.graph.output[0].name;
    const g = await buildGradientGraph(t.model, {
      loss: crossEntropyLoss(out, "labels"),
      wrt: t.learnable,
      feeds: { [input]: x, labels },
      session: NODE,
    });
    assert.equal(g.params.length, t.learnable.length, `${weights}/${activations}`);
  }
});

Deno.test("sensitivity analysis ranks groups and feeds the exclusion list", async () => {
  const m = twoInputModel();
  const rng = new Prng(2);
  const feeds = Array.from({ length: 2 }, () => ({
    x1: new Tensor<"float32">(rng.fillNormal(new Float32Array(32 * 4)) as Float32Array, [32, 4]),
    x2: new Tensor<"float32">(rng.fillNormal(new Float32Array(32 * 4)) as Float32Array, [32, 4]),
  }));
  const { readerFromFeeds } = await import("../../lib/data/reader.ts");
  const run = ptq(m).weights(quantizer().int(3).symmetric()).calibrateOn(feeds).session(NODE);
  const s = await run.sensitivity(readerFromFeeds(feeds));
  assert.equal(s.metric, "output SQNR (dB)");
  assert.ok(s.rows.length >= 4, String(s));
  const mm = s.rows.filter((r) => r.opType === "MatMul");
  assert.equal(mm.length, 3);
  // 3-bit weights dominate the error: activations alone (8 bits) are far better than the full model, weights
  // alone about as bad; every group's metric is finite and the rows are ranked by drop.
  assert.ok(s.activationsOnly > s.full + 6, `${s.activationsOnly} vs ${s.full}`);
  assert.ok(Math.abs(s.weightsOnly - s.full) < 3, `${s.weightsOnly} vs ${s.full}`);
  for (const r of s.rows) assert.ok(Number.isFinite(r.onlyThis) && Number.isFinite(r.allButThis), r.group);
  for (let k = 1; k < s.rows.length; k++) assert.ok(s.rows[k - 1].drop >= s.rows[k].drop);
  assert.ok(String(s).includes(s.rows[0].group));
  const ex = s.exclusions({ top: 1 });
  assert.equal(ex.length, 1);
  const better = await run.exclude(...ex).sensitivity(readerFromFeeds(feeds));
  assert.ok(better.full >= s.full - 1e-9, `excluding ${ex} gives ${better.full} vs ${s.full}`);
  assert.ok(s.layerSqnr.every((l) => Number.isFinite(l.sqnrDb) || l.sqnrDb === Infinity));
});

Deno.test("every tensor-level weight quantizer goes through ptq() and reports its true bits per weight", async () => {
  const { nonUniform } = await import("../../lib/nonuniform/nonuniform_quantizer.ts");
  const { binary } = await import("../../lib/extreme/binary.ts");
  const { ternary } = await import("../../lib/extreme/ternary.ts");
  const { kmeans } = await import("../../lib/vq/kmeans.ts");
  const { productQuantizer } = await import("../../lib/vq/product_quantizer.ts");
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const data = images(1);
  const families = [
    ["uniform", quantizer().int(4).symmetric().perChannel()],
    ["nonuniform", nonUniform().levels("log2").bits(3).perChannel()],
    ["binary", binary().xnor()],
    ["ternary", ternary().twn()],
    ["kmeans", kmeans().bits(3).seed(1)],
    ["product", productQuantizer().centroids(8).seed(1)],
  ] as const;
  const s = await createSession(m, NODE);
  const input = s.inputNames[0], out = s.outputNames[0];
  const ref = (await s.run({ [input]: data[0] }))[out].data as Float32Array;
  for (const [kind, q] of families) {
    const r = await ptq(m).weights(q).calibrateOn(data).session(NODE).quantize();
    assert.ok(r.plan.weights.every((w) => w.quantizer.kind === kind), kind);
    assert.equal(r.materialized.fitted.size, 10, kind);
    // Uniform weights are stored as int8 codes; the rest as their fake-quantized floats.
    assert.equal(r.weightParams.size, kind === "uniform" ? 10 : 0, kind);
    assert.ok(r.bitsPerWeight > 0 && r.bitsPerWeight < 8, `${kind}: ${r.bitsPerWeight} bits/weight`);
    // The QDQ model computes exactly the fitted quantizer's values: compare one weight tensor.
    if (kind !== "uniform") {
      const [w, f] = [...r.materialized.fitted][0];
      const stored = r.qdq.graph.initializer.find((t) => t.name === `${w}_fake_quantized`)!;
      assert.deepStrictEqual(tensorValues(stored), f.fakeQuantize().data, kind);
    }
    const sq = await createSession(r.qdq, NODE);
    const y = (await sq.run({ [input]: data[0] }))[out].data as Float32Array;
    assert.ok(y.every(Number.isFinite), kind);
    assert.notDeepStrictEqual(y, ref, kind);
  }
});
