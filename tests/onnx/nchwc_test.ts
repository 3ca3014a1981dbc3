// Blocked (NCHWc) convolutions for runtime weights: which convs the rewrite takes, that the blocked kernels give the
// plain Conv's numbers (forward, inside a gradient graph, across training steps), and when sessions use them.
import assert from "node:assert/strict";
import { intAttr, intsAttr } from "../../lib/onnx/graph.ts";
import { blockedConvolutions, NCHWC_DOMAIN, nchwcProbe } from "../../lib/onnx/nchwc.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel, type ModelProto, type NodeProto } from "../../lib/onnx/proto.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import { createSession, nchwcBlockSize } from "../../lib/onnx/session.ts";
import { buildGradientGraph } from "../../lib/grad/compiler.ts";
import { crossEntropyLoss } from "../../lib/grad/losses.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { Trainer } from "../../lib/grad/train.ts";
import { sgd } from "../../lib/grad/optim.ts";
import { resnet8 } from "../../lib/models/resnet8.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

const f32 = (name: string, dims: (number | string)[]) => ({
  name,
  type: {
    tensorType: { elemType: 1, shape: dims.map((d) => (typeof d === "number" ? { value: d } : { param: d })) },
  },
});
const conv = (name: string, input: string[], attribute = [intsAttr("pads", [1, 1, 1, 1])]): NodeProto => ({
  name,
  opType: "Conv",
  domain: "",
  input,
  output: [`${name}.out`],
  attribute,
});

/** Whether MLAS has NCHWc kernels on this CPU (x86-64 with AVX2 or AVX-512), from its flags; undefined: cannot tell. */
async function cpuHasBlockedKernels(): Promise<boolean | undefined> {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return undefined;
  const flags = (await Deno.readTextFile("/proc/cpuinfo")).match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
  return flags.includes("avx2") || flags.includes("avx512f");
}

function randn(n: number, seed: number, scale = 1): Float32Array {
  const v = new Float32Array(n);
  new Prng(seed).fillNormal(v, 0, scale);
  return v;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0, s = 1e-12;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(a[i]));
  }
  return d / s;
}

Deno.test("blockedConvolutions takes only convs with runtime weights of known shape and whole channel blocks", () => {
  const p = emptyModel(17);
  const g = p.graph;
  g.input.push(
    f32("x", ["N", 16, 8, 8]),
    f32("w", [16, 16, 3, 3]),
    f32("w8", [8, 16, 3, 3]),
    f32("wg", [16, 8, 3, 3]),
    f32("wq", [16, 16, 3, 3]),
    f32("wu", ["O", 16, 3, 3]),
  );
  g.initializer.push(
    makeTensorProto("wc", new Float32Array(16 * 16 * 9), [16, 16, 3, 3]),
    makeTensorProto("wi8", new Int8Array(16 * 16 * 9), [16, 16, 3, 3]),
    makeTensorProto("ws", new Float32Array(16).fill(0.1), [16, 1, 1, 1]),
    makeTensorProto("s", new Float32Array([0.1]), []),
    makeTensorProto("z", new Int8Array([0]), []),
  );
  const node = (opType: string, input: string[], output: string): NodeProto => ({
    name: output,
    opType,
    domain: "",
    input,
    output: [output],
    attribute: [],
  });
  g.node.push(
    conv("runtime", ["x", "w"]),
    conv("constant", ["x", "wc"]),
    node("DequantizeLinear", ["wi8", "s", "z"], "wdq"),
    conv("qdq", ["x", "wdq"]),
    conv("eight", ["x", "w8"]),
    conv("grouped", ["x", "wg"], [intsAttr("pads", [1, 1, 1, 1]), intAttr("group", 2)]),
    conv("same", ["x", "w"], [{ name: "auto_pad", type: 3, s: new TextEncoder().encode("SAME_UPPER") }]),
    conv("unknown", ["x", "wu"]),
    // LSQ-style fake quantization of a runtime weight: its shape follows through broadcasting ops.
    node("Div", ["wq", "ws"], "wq_s"),
    node("Round", ["wq_s"], "wq_r"),
    node("Clip", ["wq_r"], "wq_c"),
    node("Mul", ["wq_c", "ws"], "wq_fq"),
    conv("fake_quant", ["x", "wq_fq"]),
    conv("shares_input", ["x", "w"]),
  );
  g.output.push(f32("runtime.out", ["N", 16, 8, 8]));
  const before = JSON.stringify({ n: g.node.length, i: g.initializer.length, o: p.opsetImport });
  const r16 = blockedConvolutions(p, 16);
  assert.deepStrictEqual(r16.rewritten, ["runtime", "fake_quant", "shares_input"]);
  assert.deepStrictEqual(blockedConvolutions(p, 8).rewritten, ["runtime", "eight", "fake_quant", "shares_input"]);
  assert.deepStrictEqual(blockedConvolutions(p, 16, (n) => n.name !== "runtime").rewritten, [
    "fake_quant",
    "shares_input",
  ]);
  assert.equal(JSON.stringify({ n: g.node.length, i: g.initializer.length, o: p.opsetImport }), before);
  const out = r16.proto.graph;
  // Each rewritten conv becomes a weight reorder (Reshape, Transpose, Reshape), the blocked conv and an output
  // reorder; there is one input reorder per input value (all three read "x").
  assert.equal(out.node.length, g.node.length + 3 * 4 + 1);
  assert.equal(out.node.filter((n) => n.domain === NCHWC_DOMAIN && n.opType === "ReorderInput").length, 1);
  assert.equal(out.node.filter((n) => n.domain === NCHWC_DOMAIN).length, 7);
  assert.ok(r16.proto.opsetImport.some((o) => o.domain === NCHWC_DOMAIN));
  const blocked = out.node.find((n) => n.domain === NCHWC_DOMAIN && n.opType === "Conv")!;
  assert.deepStrictEqual(blocked.attribute.find((a) => a.name === "kernel_shape")?.ints, [3, 3]);
  // The conv's outputs keep their names; every new value name is fresh.
  assert.ok(out.node.some((n) => n.opType === "ReorderOutput" && n.output[0] === "runtime.out"));
  const names = [...out.node.flatMap((n) => n.output), ...out.initializer.map((t) => t.name)];
  assert.equal(new Set(names).size, names.length);
  assert.equal(new Set(out.node.map((n) => n.name)).size, out.node.length);
  // Nothing qualifies: the input proto itself comes back.
  assert.equal(blockedConvolutions(p, 16, () => false).proto, p);
  assert.deepStrictEqual(nchwcProbe().blocks, [16, 8]);
});

Deno.test("blocked kernels reproduce Conv (stride, dilation, asymmetric pads, bias); sessions say when they use them", async () => {
  const block = await nchwcBlockSize();
  // MLAS uses 16 with AVX-512 and 8 with AVX2; the probe checks the layout bit for bit, so any block it returns is
  // right, but on such a CPU it must find one.
  if (await cpuHasBlockedKernels()) assert.ok(block === 8 || block === 16, `no NCHWc block size found (${block})`);
  if (block === undefined) return; // no NCHWc kernels here (checked above where the CPU says there must be)
  const ci = 2 * block, co = 3 * block;
  const p = emptyModel(17);
  p.graph.input.push(f32("x", ["N", ci, 13, 11]), f32("w", [co, ci, 3, 3]), f32("b", [co]));
  p.graph.node.push(
    conv("c", ["x", "w", "b"], [
      intsAttr("pads", [2, 0, 1, 2]),
      intsAttr("strides", [2, 1]),
      intsAttr("dilations", [2, 1]),
    ]),
  );
  p.graph.output.push({ name: "c.out", type: { tensorType: { elemType: 1 } } });
  const m = OnnxModel.fromProto(p);
  const feeds = {
    x: new Tensor(randn(3 * ci * 13 * 11, 1), [3, ci, 13, 11]),
    w: new Tensor(randn(co * ci * 9, 2, 0.2), [co, ci, 3, 3]),
    b: new Tensor(randn(co, 3), [co]),
  };
  const plain = await createSession(m, { backend: "node", threads: 2, blockedConvolutions: false });
  const fast = await createSession(m, { backend: "node", threads: 2 });
  assert.deepStrictEqual(plain.blockedConvolutions, []);
  assert.deepStrictEqual(fast.blockedConvolutions, ["c"]);
  const y0 = (await plain.run(feeds))["c.out"], y1 = (await fast.run(feeds))["c.out"];
  assert.deepStrictEqual(y1.shape, y0.shape);
  assert.ok(maxRelDiff(y0.data as Float32Array, y1.data as Float32Array) < 1e-5);
  // A different weight must change the result (the blocked conv reads the fed weight, not a stale copy).
  const w2 = { ...feeds, w: new Tensor(randn(co * ci * 9, 4, 0.2), [co, ci, 3, 3]) };
  const z0 = (await plain.run(w2))["c.out"], z1 = (await fast.run(w2))["c.out"];
  assert.ok(maxRelDiff(z0.data as Float32Array, z1.data as Float32Array) < 1e-5);
  assert.ok(maxRelDiff(z0.data as Float32Array, y0.data as Float32Array) > 0.1);
  // Only the native backend at optimization "all" rewrites.
  for (const opts of [{ optimization: "extended" as const }, { backend: "web" as const }]) {
    const s = await createSession(m, { backend: "node", threads: 1, cache: false, ...opts });
    assert.deepStrictEqual(s.blockedConvolutions, [], JSON.stringify(opts));
    assert.ok(maxRelDiff(y0.data as Float32Array, (await s.run(feeds))["c.out"].data as Float32Array) < 1e-5);
    await s.release();
  }
});

/** A small residual CNN with smooth activations (Tanh), so the gradients are continuous in the conv outputs. */
function smoothNet(): ModelProto {
  const proto = resnet8({ seed: 3, channels: [16, 16, 32] }).proto;
  for (const n of proto.graph.node) if (n.opType === "Relu") n.opType = "Tanh";
  return proto;
}

Deno.test("inside a gradient graph the blocked convs give the plain graph's loss and gradients", async () => {
  const block = await nchwcBlockSize();
  if (block === undefined) return; // nchwcBlockSize is checked against the CPU flags above
  const model = OnnxModel.fromProto(smoothNet(), "smooth resnet");
  const x = new Tensor(randn(6 * 784, 5), [6, 1, 28, 28]),
    labels = new Tensor(Int32Array.from([0, 1, 2, 3, 4, 5]), [6]);
  const tg = await buildGradientGraph(model, {
    loss: crossEntropyLoss("logits", "labels"),
    wrt: "parameters",
    feeds: { input: x, labels },
    batchNorm: "train",
  });
  const plain = await GradientSession.create(tg, { backend: "node", threads: 2, blockedConvolutions: false });
  const fast = await GradientSession.create(tg, { backend: "node", threads: 2 });
  assert.equal(plain.session.blockedConvolutions.length, 0);
  // Forward convs of 16 and 32 channels and the stride-1 input-gradient convs (flipped kernels computed in-graph).
  assert.ok(fast.session.blockedConvolutions.includes("layer1.conv1"), String(fast.session.blockedConvolutions));
  assert.ok(fast.session.blockedConvolutions.some((n) => !n.includes(".")), "no input-gradient conv was rewritten");
  const params = tg.initialParams();
  const a = await plain.run({ input: x, labels }, params), b = await fast.run({ input: x, labels }, params);
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(a.loss));
  for (const [k, v] of a.grads) assert.ok(maxRelDiff(v, b.grads.get(k)!) < 1e-4, `gradient of ${k}`);
});

Deno.test("ResNet-8 training with blocked convs follows plain training over SGD steps", async () => {
  const block = await nchwcBlockSize();
  if (block === undefined) return;
  const rng = new Prng(9), x = new Float32Array(16 * 784);
  rng.fillNormal(x);
  const y = Int32Array.from({ length: 16 }, (_, i) => i % 10);
  const batch = { x: new Tensor<"float32">(x, [16, 1, 28, 28]), labels: new Tensor<"int32">(y, [16]) };
  const make = (blocked: boolean) =>
    Trainer.create({
      model: resnet8({ seed: 0 }),
      optimizer: sgd({ lr: 0.05, momentum: 0.9 }),
      sample: batch,
      session: { backend: "node", threads: 2, blockedConvolutions: blocked },
    });
  const [plain, fast] = [await make(false), await make(true)];
  assert.equal(fast.session.session.blockedConvolutions.length, 12);
  for (let step = 0; step < 4; step++) {
    const a = await plain.step(batch), b = await fast.step(batch);
    // ReLU masks can flip where a pre-activation is within rounding of zero, so gradients are not compared
    // elementwise here (the smooth-net test does that); the losses along the way must stay together.
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-3 * Math.abs(a.loss), `step ${step}: ${a.loss} vs ${b.loss}`);
  }
  await plain.release();
  await fast.release();
});
