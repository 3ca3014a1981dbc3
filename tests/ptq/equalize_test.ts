import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { foldBatchNorm } from "../../lib/onnx/fold_bn.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { makeTensorProto, tensorValues } from "../../lib/onnx/tensor_data.ts";
import { equalizationScales, equalizeCrossLayer, findEqualizationPairs } from "../../lib/ptq/equalize.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { sqnr } from "../../lib/quant/metrics.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { modelPath } from "../onnx/_fixtures.ts";

function weightOf(m: OnnxModel, nodeName: string): { values: Float32Array; dims: number[] } {
  const n = m.graph.node.find((n) => n.name === nodeName)!;
  const t = indexGraph(m.graph).initializers.get(n.input[1])!;
  return { values: tensorValues(t) as Float32Array, dims: [...t.dims] };
}

/** A copy of `m` with every Conv/Gemm weight replaced by its per-tensor fake-quantized values. */
function fakeQuantWeights(m: OnnxModel, bits: number): OnnxModel {
  const out = m.clone();
  const ix = indexGraph(out.graph);
  const q = quantizer().int(bits).symmetric();
  for (const n of out.graph.node) {
    if (n.opType !== "Conv" && n.opType !== "Gemm") continue;
    const t = ix.initializers.get(n.input[1])!;
    const v = tensorValues(t) as Float32Array;
    const fq = q.fakeQuantize(v).values.data;
    const i = out.graph.initializer.indexOf(t);
    out.graph.initializer[i] = makeTensorProto(t.name, Float32Array.from(fq), t.dims);
  }
  return out;
}

async function outputSqnr(ref: OnnxModel, approx: OnnxModel, x: Tensor<"float32">): Promise<number> {
  const input = ref.graph.input[0].name, output = ref.graph.output[0].name;
  const a = (await (await createSession(ref, { backend: "node" })).run({ [input]: x }))[output].data as Float32Array;
  const b = (await (await createSession(approx, { backend: "node" })).run({ [input]: x }))[output].data as Float32Array;
  return sqnr(a, b);
}

/** Output-channel ranges (axis 0) and input-channel ranges (axis 1) of a conv weight [O, I, k...]. */
function ranges(w: { values: Float32Array; dims: number[] }): { out: number[]; in: number[] } {
  const [o, i] = w.dims;
  const inner = w.values.length / (o * i);
  const out = new Array(o).fill(0), inn = new Array(i).fill(0);
  for (let a = 0; a < o; a++) {
    for (let b = 0; b < i; b++) {
      for (let k = 0; k < inner; k++) {
        const v = Math.abs(w.values[(a * i + b) * inner + k]);
        out[a] = Math.max(out[a], v);
        inn[b] = Math.max(inn[b], v);
      }
    }
  }
  return { out, in: inn };
}

/** A Conv-Relu-Conv-Relu-Conv chain whose middle channels are badly scaled (ranges spanning 4 decades). */
function chainModel(seed: number): OnnxModel {
  const rng = new Prng(seed);
  const p = emptyModel(13);
  const dims = (n: number) => [{ value: n }, { value: 4 }, { value: 6 }, { value: 6 }];
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: dims(2) } } });
  const conv = (name: string, cin: number, cout: number, x: string, badOut: boolean, badIn: number[] | null) => {
    const w = new Float32Array(cout * cin * 9);
    rng.fillNormal(w);
    const outScale = Array.from({ length: cout }, () => badOut ? 10 ** (4 * rng.nextFloat() - 2) : 1);
    for (let o = 0; o < cout; o++) {
      for (let i = 0; i < cin; i++) {
        for (let k = 0; k < 9; k++) w[(o * cin + i) * 9 + k] *= outScale[o] / (badIn ? badIn[i] : 1);
      }
    }
    const b = new Float32Array(cout).map((_, o) => 0.1 * rng.nextNormal() * outScale[o]);
    p.graph.initializer.push(
      makeTensorProto(`${name}.w`, w, [cout, cin, 3, 3]),
      makeTensorProto(`${name}.b`, b, [cout]),
    );
    p.graph.node.push({
      input: [x, `${name}.w`, `${name}.b`],
      output: [`${name}.y`],
      name,
      opType: "Conv",
      domain: "",
      attribute: [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }],
    });
    return { y: `${name}.y`, outScale };
  };
  const relu = (x: string) => {
    p.graph.node.push({ input: [x], output: [`${x}.r`], name: `${x}.relu`, opType: "Relu", domain: "", attribute: [] });
    return `${x}.r`;
  };
  const c1 = conv("c1", 4, 8, "x", true, null);
  const c2 = conv("c2", 8, 8, relu(c1.y), true, c1.outScale);
  const c3 = conv("c3", 8, 3, relu(c2.y), false, c2.outScale);
  p.graph.output.push({ name: c3.y, type: { tensorType: { elemType: 1 } } });
  return OnnxModel.fromProto(p);
}

Deno.test("equalizationScales: the paper's s = sqrt(r1 r2) / r2 equalizes both ranges; zero ranges keep 1", () => {
  const r1 = [4, 1, 9, 0, 2], r2 = [1, 4, 1, 3, 0];
  const s = equalizationScales(r1, r2);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(r1[i] / s[i] - r2[i] * s[i]) < 1e-12, `channel ${i}`);
    assert.ok(Math.abs(r1[i] / s[i] - Math.sqrt(r1[i] * r2[i])) < 1e-12);
  }
  assert.deepStrictEqual([s[3], s[4]], [1, 1]);
  assert.throws(() => equalizationScales([1], [1, 2]), (e: unknown) => e instanceof QuantlabError);
  assert.throws(
    () => equalizationScales([NaN], [1]),
    (e: unknown) => e instanceof QuantlabError && e.code === "NON_FINITE",
  );
});

Deno.test("CLE on a 3-conv chain: ranges equalized, float outputs preserved, per-tensor int4 error improves", async () => {
  const m = chainModel(3);
  const { model, pairs, sweeps } = equalizeCrossLayer(m, { maxSweeps: 100, tolerance: 1e-9 });
  assert.equal(pairs.length, 2);
  assert.ok(sweeps > 1 && sweeps < 100, `sweeps ${sweeps}`);
  // After convergence each pair's ranges are equal: r_out(c1)[i] == r_in(c2)[i], r_out(c2)[i] == r_in(c3)[i].
  const [w1, w2, w3] = ["c1", "c2", "c3"].map((n) => ranges(weightOf(model, n)));
  for (let i = 0; i < 8; i++) {
    assert.ok(Math.abs(w1.out[i] / w2.in[i] - 1) < 1e-5, `pair 1 channel ${i}: ${w1.out[i]} vs ${w2.in[i]}`);
    assert.ok(Math.abs(w2.out[i] / w3.in[i] - 1) < 1e-5, `pair 2 channel ${i}: ${w2.out[i]} vs ${w3.in[i]}`);
  }
  // Float outputs agree (float32 rounding only).
  const x = new Tensor<"float32">(new Prng(9).fillNormal(new Float32Array(2 * 4 * 36)) as Float32Array, [2, 4, 6, 6]);
  const a = (await (await createSession(m, { backend: "node" })).run({ x }))["c3.y"].data as Float32Array;
  const b = (await (await createSession(model, { backend: "node" })).run({ x }))["c3.y"].data as Float32Array;
  let maxAbs = 0, maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(a[i]));
  }
  assert.ok(maxAbs <= 1e-5 * maxRef, `max abs diff ${maxAbs} (max |y| ${maxRef})`);
  // Per-tensor int4 weights: the output SQNR (weights quantized, activations float) improves a lot.
  const before = await outputSqnr(m, fakeQuantWeights(m, 4), x);
  const after = await outputSqnr(m, fakeQuantWeights(model, 4), x);
  assert.ok(
    after > before + 6,
    `output SQNR with int4 per-tensor weights: ${before.toFixed(1)} -> ${after.toFixed(1)} dB`,
  );
  // The input model is unchanged.
  assert.deepStrictEqual(weightOf(m, "c1").values, weightOf(chainModel(3), "c1").values);
});

Deno.test("CLE on the folded residual fixture: block conv pairs, outputs preserved, per-tensor weight error down", async () => {
  const folded = foldBatchNorm(await OnnxModel.load(modelPath("resnet8_op13"))).model;
  const found = findEqualizationPairs(folded);
  assert.equal(found.pairs.length, 3, JSON.stringify(found));
  assert.ok(found.pairs.every((p) => p.activation === "Relu" && /conv1/.test(p.first) && /conv2/.test(p.second)));
  const { model, pairs } = equalizeCrossLayer(folded);
  const x = new Tensor<"float32">(new Prng(1).fillNormal(new Float32Array(16 * 784)) as Float32Array, [16, 1, 28, 28]);
  const a = (await (await createSession(folded, { backend: "node" })).run({ input: x })).logits.data as Float32Array;
  const b = (await (await createSession(model, { backend: "node" })).run({ input: x })).logits.data as Float32Array;
  let maxAbs = 0, maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(a[i]));
  }
  assert.ok(maxAbs <= 1e-5 * maxRef, `max abs diff ${maxAbs} (max |logit| ${maxRef})`);
  // Paper's objective: sum over channels of the product of per-channel precisions r_i / R grows; and the
  // per-tensor int4 SQNR summed over the equalized layers improves.
  const q = quantizer().int(4).symmetric();
  let gain = 0;
  for (const p of pairs) {
    const names = [p.first, p.second].map((l) => l.replace(/^Conv "(.*)"$/, "$1"));
    const objective = (mm: OnnxModel) => {
      const r1 = ranges(weightOf(mm, names[0])).out, r2 = ranges(weightOf(mm, names[1])).in;
      const R1 = Math.max(...r1), R2 = Math.max(...r2);
      return r1.reduce((s, v, i) => s + (v / R1) * (r2[i] / R2), 0);
    };
    assert.ok(objective(model) > objective(folded), `${p.first}: precision objective`);
    for (const n of names) {
      const w0 = weightOf(folded, n).values, w1 = weightOf(model, n).values;
      gain += sqnr(w1, q.fakeQuantize(w1).values) - sqnr(w0, q.fakeQuantize(w0).values);
    }
  }
  assert.ok(gain > 0, `summed per-tensor int4 SQNR gain ${gain.toFixed(2)} dB`);
});

Deno.test("CLE skips what it cannot equalize: grouped conv, non-ReLU activation", () => {
  const p = emptyModel(13);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1 } } });
  p.graph.initializer.push(
    makeTensorProto("w1", new Float32Array(4 * 9).fill(1), [4, 1, 3, 3]),
    makeTensorProto("w2", new Float32Array(4 * 4).fill(1), [4, 4, 1, 1]),
    makeTensorProto("w3", new Float32Array(4 * 4).fill(1), [4, 4, 1, 1]),
  );
  const node = (op: string, i: string[], o: string, attribute: { name: string; type: number; i: number }[] = []) =>
    p.graph.node.push({ input: i, output: [o], name: o, opType: op, domain: "", attribute });
  node("Conv", ["x", "w1"], "a", [{ name: "group", type: 2, i: 4 }]);
  node("Relu", ["a"], "ar");
  node("Conv", ["ar", "w2"], "b");
  node("Sigmoid", ["b"], "bs");
  node("Conv", ["bs", "w3"], "c");
  p.graph.output.push({ name: "c", type: { tensorType: { elemType: 1 } } });
  const m = OnnxModel.fromProto(p);
  const found = findEqualizationPairs(m);
  assert.equal(found.pairs.length, 0);
  assert.ok(found.skipped.some((s) => /grouped/.test(s)), found.skipped.join("; "));
  assert.equal(equalizeCrossLayer(m).pairs.length, 0);
  assert.throws(() => equalizeCrossLayer(m, { maxSweeps: 0 }), (e: unknown) => e instanceof QuantlabError);
});

Deno.test("ptq().equalize(): pairs reported, QDQ built from the equalized model", async () => {
  const model = await OnnxModel.load(modelPath("resnet8_op13"));
  const x = new Tensor<"float32">(new Prng(2).fillNormal(new Float32Array(32 * 784)) as Float32Array, [32, 1, 28, 28]);
  const p = ptq(model).equalize().calibrateOn([x]).session({ backend: "node" });
  assert.match(p.toString(), /equalize\(/);
  assert.doesNotMatch(p.equalize(false).toString(), /equalize/);
  const m = await p.quantize();
  assert.equal(m.equalization?.length, 3);
  assert.ok(m.float.graph.initializer.some((t) => t.name.endsWith("_equalized")));
  assert.equal((await ptq(model).calibrateOn([x]).session({ backend: "node" }).quantize()).equalization, undefined);
});
