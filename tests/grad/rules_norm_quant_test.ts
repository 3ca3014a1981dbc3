// BatchNormalization (inference and training mode), fake quantization (QDQ straight-through, LSQ, PACT),
// gradient markers and the UNSUPPORTED_OP error.
import assert from "node:assert/strict";
import {
  buildGradientGraph,
  customLoss,
  Emitter,
  GradientSession,
  lsqFakeQuant,
  markGradScale,
  markStopGradient,
  mseLoss,
  pactFakeQuant,
} from "../../lib/grad/mod.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { type Case, gradCheck } from "./_gradcheck.ts";
import { b64f32, gradFixtures } from "./_fixtures.ts";

const bnParams = { s: { dims: [3] }, b: { dims: [3] } };

Deno.test("BatchNormalization, inference mode: x, scale, bias, mean and variance", () =>
  gradCheck({
    nodes: [{
      op: "BatchNormalization",
      inputs: ["x", "s", "b", "m", "v"],
      outputs: ["y"],
      attrs: { epsilon: { f: 1e-3 } },
    }],
    inputs: { x: { dims: [2, 3, 4, 5] } },
    params: { ...bnParams, m: { dims: [3] }, v: { dims: [3], init: "positive" } },
    output: "y",
  }).then(() => {}));

Deno.test("BatchNormalization, training mode (batch statistics) vs a hand-written decomposition", async () => {
  const fdNodes: Case["nodes"] = [
    { op: "ReduceMean", inputs: ["x"], outputs: ["mu"], attrs: { axes: [0, 2, 3], keepdims: 1 } },
    { op: "Sub", inputs: ["x", "mu"], outputs: ["xc"] },
    { op: "Mul", inputs: ["xc", "xc"], outputs: ["sq"] },
    { op: "ReduceMean", inputs: ["sq"], outputs: ["var"], attrs: { axes: [0, 2, 3], keepdims: 1 } },
    { op: "Add", inputs: ["var", "eps"], outputs: ["ve"] },
    { op: "Sqrt", inputs: ["ve"], outputs: ["sd"] },
    { op: "Div", inputs: ["xc", "sd"], outputs: ["xh"] },
    { op: "Reshape", inputs: ["s", "cs"], outputs: ["s4"] },
    { op: "Reshape", inputs: ["b", "cs"], outputs: ["b4"] },
    { op: "Mul", inputs: ["xh", "s4"], outputs: ["t"] },
    { op: "Add", inputs: ["t", "b4"], outputs: ["y"] },
  ];
  for (const dims of [[2, 3, 4, 5], [3, 3, 1, 2]]) {
    await gradCheck({
      nodes: [{
        op: "BatchNormalization",
        inputs: ["x", "s", "b", "rm", "rv"],
        outputs: ["y"],
        attrs: { epsilon: { f: 1e-3 } },
      }],
      fdNodes,
      inputs: { x: { dims } },
      params: bnParams,
      fixed: {
        rm: { dims: [3] },
        rv: { dims: [3], init: "positive" },
        eps: { dims: [], init: new Float32Array([1e-3]) },
      },
      ints: { cs: { values: [1, 3, 1, 1], dims: [4] } },
      output: "y",
      batchNorm: "train",
    });
  }
});

Deno.test("BatchNormalization, training mode: gradients stay accurate for inputs far from zero (float64 closed form)", async () => {
  // The backward pass forms sum(dy * (x - mean)) from sum(dy * x) (no centred copy is kept), which loses about
  // |mean| / std of the rounding of that sum; here |mean| / std is 100-400 and the limits below still hold. A one-pass
  // variance (E[x^2] - mean^2) should fail them: by estimate, float32 rounding of E[x^2] ~ 1.6e5 is ~1e-2 of the variance.
  const N = 16, C = 4, H = 10, L = H * H, M = N * L;
  const g = Float32Array.from([1.5, 0.5, -1, 2]), b = Float32Array.from([0.1, -0.2, 0.3, 0]);
  const x = new Float32Array(N * C * L), t = new Float32Array(N * C * L);
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  for (let i = 0; i < x.length; i++) {
    x[i] = rand() + 100 * (1 + Math.floor(i / L) % C);
    t[i] = rand();
  }
  const p = emptyModel(17);
  p.graph.input.push({
    name: "x",
    type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: C }, { value: H }, { value: H }] } },
  });
  p.graph.initializer.push(
    makeTensorProto("g", g, [C]),
    makeTensorProto("b", b, [C]),
    makeTensorProto("rm", new Float32Array(C), [C]),
    makeTensorProto("rv", new Float32Array(C).fill(1), [C]),
  );
  p.graph.node.push({
    name: "bn",
    opType: "BatchNormalization",
    domain: "",
    input: ["x", "g", "b", "rm", "rv"],
    output: ["y"],
    attribute: [],
  });
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  const feeds = { x: new Tensor(x, [N, C, H, H]), t: new Tensor(t, [N, C, H, H]) };
  const tg = await buildGradientGraph(OnnxModel.fromProto(p), {
    loss: mseLoss("y", "t"),
    wrt: ["g", "b", "x"],
    feeds,
    batchNorm: "train",
    session: { backend: "node", threads: 1 },
  });
  for (const backend of ["node", "web"] as const) {
    const r = await (await GradientSession.create(tg, { backend, threads: 1 })).run(feeds, tg.initialParams());
    const dx = new Float64Array(x.length), dg = new Float64Array(C), db = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      const idx = (n: number, l: number) => (n * C + c) * L + l;
      let mu = 0, v = 0;
      for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) mu += x[idx(n, l)] / M;
      for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) v += (x[idx(n, l)] - mu) ** 2 / M;
      const inv = 1 / Math.sqrt(v + 1e-5), dy = (i: number) => 2 * ((x[i] - mu) * inv * g[c] + b[c] - t[i]) / x.length;
      for (let n = 0; n < N; n++) {
        for (let l = 0; l < L; l++) {
          db[c] += dy(idx(n, l));
          dg[c] += dy(idx(n, l)) * (x[idx(n, l)] - mu) * inv;
        }
      }
      for (let n = 0; n < N; n++) {
        for (let l = 0; l < L; l++) {
          const i = idx(n, l);
          dx[i] = g[c] * inv * (dy(i) - db[c] / M - (x[i] - mu) * inv * dg[c] / M);
        }
      }
    }
    const rel = (got: Float32Array, want: Float64Array) => {
      let d = 0, s = 0;
      for (let i = 0; i < want.length; i++) {
        d = Math.max(d, Math.abs(got[i] - want[i]));
        s = Math.max(s, Math.abs(want[i]));
      }
      return d / s;
    };
    assert.ok(rel(r.grads.get("x")!, dx) < 2e-4, `${backend} dx ${rel(r.grads.get("x")!, dx)}`);
    assert.ok(rel(r.grads.get("g")!, dg) < 2e-4, `${backend} dgamma ${rel(r.grads.get("g")!, dg)}`);
    assert.ok(rel(r.grads.get("b")!, db) < 2e-3, `${backend} dbeta ${rel(r.grads.get("b")!, db)}`);
  }
});

Deno.test("training-mode BatchNormalization node (as gradient graphs contain it): y, batch mean and variance all carry gradients", async () => // Exact Hessian-vector products differentiate gradient graphs, which hold ONNX's training-mode BatchNormalization.
// Momentum 0 makes its running outputs the batch statistics (ONNX Runtime updates running inputs in place, so a
// nonzero momentum would make repeated forward runs differ and finite differences meaningless).
{
  await gradCheck({
    nodes: [
      {
        op: "BatchNormalization",
        inputs: ["x", "s", "b", "rm", "rv"],
        outputs: ["y", "m", "v"],
        attrs: { epsilon: { f: 1e-3 }, momentum: { f: 0 }, training_mode: 1 },
      },
      { op: "Reshape", inputs: ["m", "cs"], outputs: ["m4"] },
      { op: "Reshape", inputs: ["v", "cs"], outputs: ["v4"] },
      { op: "Mul", inputs: ["v4", "m4"], outputs: ["mv"] },
      { op: "Add", inputs: ["y", "mv"], outputs: ["z"] },
    ],
    inputs: { x: { dims: [2, 3, 4, 5] } },
    params: bnParams,
    fixed: { rm: { dims: [3] }, rv: { dims: [3], init: "positive" } },
    ints: { cs: { values: [1, 3, 1, 1], dims: [4] } },
    output: "z",
  });
});

Deno.test("training-mode BatchNorm in a gradient graph: a non-finite batch does not poison later runs", async () => {
  // ONNX Runtime's BatchNormalization writes its running outputs into its running inputs when it may (Alias(3, 1));
  // the compiler keeps them graph outputs and gives each node its own running inputs, so one bad batch stays one bad
  // run, on both backends.
  const { NetBuilder } = await import("../../lib/models/layers.ts");
  const net = new NetBuilder({ channels: 1, height: 6, width: 6, seed: 2 });
  const h = net.relu(net.batchNorm("bn", net.conv("conv", net.input, 1, 4, {}), 4));
  const model = net.finish(net.linear("fc", net.flatten(net.globalAveragePool(h)), 4, 3), "bn-poison");
  const x = new Tensor(Float32Array.from({ length: 4 * 36 }, (_, i) => Math.sin(i)), [4, 1, 6, 6]);
  const labels = new Tensor(Int32Array.from([0, 1, 2, 0]), [4]);
  const { crossEntropyLoss } = await import("../../lib/grad/losses.ts");
  const tg = await buildGradientGraph(model, {
    loss: crossEntropyLoss("logits", "labels"),
    wrt: "parameters",
    feeds: { input: x, labels },
    batchNorm: "train",
    session: { backend: "node", threads: 1 },
  });
  const bn = tg.model.graph.node.filter((n) => n.opType === "BatchNormalization" && n.output.length === 3);
  assert.equal(bn.length, 1);
  for (const o of bn[0].output.slice(1)) assert.ok(tg.model.graph.output.some((v) => v.name === o), o);
  const readers = (name: string) => tg.model.graph.node.filter((n) => n.input.includes(name)).length;
  assert.deepStrictEqual([readers(bn[0].input[3]), readers(bn[0].input[4])], [1, 1]);
  const bad = new Float32Array(x.data as Float32Array);
  bad[5] = Infinity;
  for (const backend of ["node", "web"] as const) {
    const gs = await GradientSession.create(tg, { backend, threads: 1 });
    const params = tg.initialParams();
    const before = await gs.run({ input: x, labels }, params);
    assert.ok(Number.isNaN((await gs.run({ input: new Tensor(bad, x.shape), labels }, params)).loss));
    const after = await gs.run({ input: x, labels }, params);
    assert.equal(after.loss, before.loss, backend);
    for (const [k, g] of after.grads) assert.deepStrictEqual([...g], [...before.grads.get(k)!], `${backend} ${k}`);
  }
});

/** A model y = f(x, params) built with an Emitter; returns loss = sum(y * r) and its gradients. */
async function gradsOf(
  build: (e: Emitter) => string,
  x: Tensor,
  params: Record<string, { values: number[]; dims: number[] }>,
  r: Float32Array,
  roundGradient?: "ste" | "zero",
) {
  const p = emptyModel(17);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: x.shape.map((d) => ({ value: d })) } } });
  for (const [k, v] of Object.entries(params)) {
    p.graph.initializer.push(makeTensorProto(k, Float32Array.from(v.values), v.dims));
  }
  const e = new Emitter(p.graph, 17);
  const y = build(e);
  p.graph.output.push({ name: y, type: { tensorType: { elemType: 1 } } });
  const tg = await buildGradientGraph(OnnxModel.fromProto(p), {
    loss: customLoss((ctx) => ctx.e.reduceSum(ctx.e.mul(y, ctx.e.constF(r, x.shape)), null, false)),
    wrt: ["x", ...Object.keys(params)],
    feeds: { x },
    keep: [y],
    roundGradient,
    session: { backend: "node", threads: 1 },
  });
  const gs = await GradientSession.create(tg, { backend: "node", threads: 1 });
  return await gs.run({ x }, tg.initialParams());
}

const X = Float32Array.from([-3.1, -0.74, -0.26, 0.01, 0.24, 0.26, 0.49, 0.76, 1.26, 2.9, 40, -40]);
const R = Float32Array.from(X, (_, i) => 1 + 0.1 * i);

Deno.test("QuantizeLinear -> DequantizeLinear: straight-through with the clip mask; LSQ scale gradient", async () => {
  // uint8, scale 0.5, zero point 3: grid [0, 255] -> x/s + 3 in range <=> x in [-1.5, 126]. Closed form.
  const r = await gradsOf(
    (e) => {
      const zp = e.b.initializer("zp", new Uint8Array([3]), []);
      const q = e.op("QuantizeLinear", ["x", "s", zp]);
      return e.op("DequantizeLinear", [q, "s", zp]);
    },
    new Tensor(X, [2, 6]),
    { s: { values: [0.5], dims: [] } },
    R,
  );
  const gx = r.grads.get("x")!;
  let gs = 0;
  for (let i = 0; i < X.length; i++) {
    const v = Math.round(X[i] / 0.5 + 3); // no .5 ties in X / 0.5
    const inside = v >= 0 && v <= 255;
    assert.equal(gx[i], inside ? R[i] : 0, `x[${i}]`);
    const q = Math.min(255, Math.max(0, v));
    gs += R[i] * (inside ? (q - 3) - X[i] / 0.5 : q - 3);
  }
  assert.ok(Math.abs(r.grads.get("s")![0] - gs) < 1e-4 * Math.abs(gs), `${r.grads.get("s")![0]} vs ${gs}`);
});

Deno.test("per-channel QDQ (int8, axis 1): mask and per-channel scale gradient", async () => {
  const x = new Tensor(X, [2, 3, 2]);
  const s = [0.02, 0.5, 0.1];
  const r = await gradsOf(
    (e) => {
      const zp = e.b.initializer("zp", new Int8Array([0, 0, 0]), [3]);
      const q = e.op("QuantizeLinear", ["x", "s", zp], { axis: 1 });
      return e.op("DequantizeLinear", [q, "s", zp], { axis: 1 });
    },
    x,
    { s: { values: s, dims: [3] } },
    R,
  );
  const gs = [0, 0, 0];
  for (let i = 0; i < X.length; i++) {
    const c = Math.floor(i / 2) % 3;
    const v = Math.round(X[i] / s[c]);
    const inside = v >= -128 && v <= 127;
    assert.equal(r.grads.get("x")![i], inside ? R[i] : 0);
    gs[c] += R[i] * (inside ? v - X[i] / s[c] : Math.min(127, Math.max(-128, v)));
  }
  r.grads.get("s")!.forEach((g, c) =>
    assert.ok(Math.abs(g - gs[c]) < 1e-4 * Math.abs(gs[c]) + 1e-5, `s[${c}] ${g} vs ${gs[c]}`)
  );
});

Deno.test("Round-based fake quantization and LSQ: STE, clip mask, step-size gradient with its grad scale", async () => {
  const gscale = 0.125;
  const r = await gradsOf(
    (e) => lsqFakeQuant(e, "x", "s", { bits: 3, signed: true, gradScale: gscale }),
    new Tensor(X, [2, 6]),
    {
      s: { values: [0.3], dims: [] },
    },
    R,
  );
  let gs = 0;
  for (let i = 0; i < X.length; i++) {
    const v = X[i] / 0.3;
    const inside = v >= -4 && v <= 3;
    assert.ok(Math.abs(r.grads.get("x")![i] - (inside ? R[i] : 0)) < 1e-6, `x[${i}]`);
    gs += R[i] * (inside ? Math.round(v) - v : v < -4 ? -4 : 3);
  }
  assert.ok(
    Math.abs(r.grads.get("s")![0] - gscale * gs) < 1e-4 * Math.abs(gscale * gs),
    `${r.grads.get("s")![0]} vs ${gscale * gs}`,
  );
  // roundGradient "zero": the input gets nothing through Round, the scale only the non-rounded path.
  const z = await gradsOf(
    (e) => lsqFakeQuant(e, "x", "s", { bits: 3, signed: true }),
    new Tensor(X, [2, 6]),
    {
      s: { values: [0.3], dims: [] },
    },
    R,
    "zero",
  );
  assert.ok(z.grads.get("x")!.every((v) => v === 0));
});

Deno.test("PACT: d/dalpha = sum of dY where x > alpha; x passes inside [0, alpha]", async () => {
  const alpha = 0.9;
  const r = await gradsOf((e) => pactFakeQuant(e, "x", "a", { bits: 4 }), new Tensor(X, [2, 6]), {
    a: { values: [alpha], dims: [] },
  }, R);
  let ga = 0;
  for (let i = 0; i < X.length; i++) {
    if (X[i] > alpha) ga += R[i];
    assert.ok(Math.abs(r.grads.get("x")![i] - (X[i] >= 0 && X[i] <= alpha ? R[i] : 0)) < 1e-5, `x[${i}]`);
  }
  assert.ok(Math.abs(r.grads.get("a")![0] - ga) < 1e-5);
});

Deno.test("markers: stop-gradient blocks, grad-scale multiplies", async () => {
  const x = new Tensor(X, [2, 6]);
  const r = await gradsOf((e) => e.add(e.mul(markGradScale(e, "x", 0.25), "w"), markStopGradient(e, "x")), x, {
    w: { values: [2], dims: [] },
  }, R);
  r.grads.get("x")!.forEach((g, i) => assert.ok(Math.abs(g - 0.25 * 2 * R[i]) < 1e-6));
});

Deno.test("an op without a rule throws UNSUPPORTED_OP naming the node", async () => {
  const p = emptyModel(17);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 2 }, { value: 3 }] } } });
  p.graph.node.push({ input: ["x"], output: ["y"], name: "my_erf", opType: "Erf", domain: "", attribute: [] });
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  await assert.rejects(
    buildGradientGraph(OnnxModel.fromProto(p), {
      loss: customLoss((ctx) => ctx.e.reduceSum("y", null, false)),
      wrt: ["x"],
      feeds: { x: Tensor.zeros([2, 3]) },
      session: { backend: "node", threads: 1 },
    }),
    (e) => e instanceof QuantlabError && e.code === "UNSUPPORTED_OP" && e.message.includes('Erf "my_erf"'),
  );
  await assert.rejects(
    buildGradientGraph(OnnxModel.fromProto(p), { loss: "y", wrt: ["nope"], feeds: { x: Tensor.zeros([2, 3]) } }),
    (e) => e instanceof QuantlabError && e.code === "INVALID_ARGUMENT" && e.message.includes('"nope"'),
  );
});

const fq = gradFixtures.fake_quant;

Deno.test("QDQ matches PyTorch fake_quantize_per_tensor_affine (values and STE gradient)", async () => {
  const x = new Tensor(b64f32(fq.x), fq.shape);
  const dy = b64f32(fq.dy);
  const r = await gradsOf(
    (e) => {
      const s = e.constF([fq.scale], []);
      const zp = e.b.initializer("zp", new Uint8Array([fq.zero_point]), []);
      return e.op("DequantizeLinear", [e.op("QuantizeLinear", ["x", s, zp]), s, zp]);
    },
    x,
    {},
    dy,
  );
  const y = Object.values(r.outputs)[0].data as Float32Array;
  const wantY = b64f32(fq.ste.y), wantG = b64f32(fq.ste.x_grad);
  for (let i = 0; i < y.length; i++) {
    assert.ok(Math.abs(y[i] - wantY[i]) < 1e-6, `y[${i}]`);
    assert.ok(r.grads.get("x")![i] === wantG[i], `dx[${i}]: ${r.grads.get("x")![i]} vs ${wantG[i]}`);
  }
});

Deno.test("QDQ with a learned scale behind a grad-scale marker matches PyTorch's learnable fake quantize (LSQ)", async () => {
  const x = new Tensor(b64f32(fq.x), fq.shape);
  const dy = b64f32(fq.dy);
  const L = fq.lsq;
  const r = await gradsOf(
    (e) => {
      const s = markGradScale(e, "s", L.grad_factor);
      const zp = e.b.initializer("zp", new Int8Array([0]), []);
      return e.op("DequantizeLinear", [e.op("QuantizeLinear", ["x", s, zp]), s, zp]);
    },
    x,
    { s: { values: [L.scale], dims: [] } },
    dy,
  );
  const y = Object.values(r.outputs)[0].data as Float32Array;
  const wantY = b64f32(L.y), wantG = b64f32(L.x_grad);
  for (let i = 0; i < y.length; i++) {
    assert.ok(Math.abs(y[i] - wantY[i]) < 1e-6, `y[${i}]`);
    assert.ok(r.grads.get("x")![i] === wantG[i], `dx[${i}]: ${r.grads.get("x")![i]} vs ${wantG[i]}`);
  }
  const gs = r.grads.get("s")![0];
  assert.ok(Math.abs(gs - L.scale_grad) < 1e-4 * Math.abs(L.scale_grad), `scale grad ${gs} vs PyTorch ${L.scale_grad}`);
});
