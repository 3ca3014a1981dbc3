/**
 * Probe for issue 18 (not product code): the weight gradient of a Conv computed two ways, on onnxruntime-node with 2
 * threads, for the ResNet-8 layer shapes at batch 128.
 *
 * - unfold (what `lib/grad/rules_linear.ts` emits): X unfolded by a depthwise one-hot Conv (constant weight, so ONNX
 *   Runtime runs it on its NCHWc kernels), a batched MatMul with dY and a ReduceSum over the batch;
 * - one Conv with the batch as channels: `dW^T = Conv(X^T [I, N, H, W], dY^T [O, N, H', W'])` with the forward
 *   conv's stride as dilation and its pads (end pads trimmed so the output is exactly k x k), then a transpose; its
 *   "weight" dY^T is a runtime value, so it runs plain (im2col + SGEMM) or blocked (`blockedConvolutions`).
 *
 * Prints the median of 7 runs per variant and each variant's largest deviation from the unfold result (relative to its
 * largest magnitude). Finding (2026-12-03): the one-Conv form is slower on 4 of the 5 shapes, plain or blocked, so the
 * compiler keeps the unfold. Run: `deno run -A benchmarks/weight_grad_probe.ts`.
 *
 * @module
 */
import { createSession } from "../lib/onnx/session.ts";
import { OnnxModel } from "../lib/onnx/model.ts";
import { emptyModel } from "../lib/onnx/proto.ts";
import { GraphBuilder, intAttr, intsAttr } from "../lib/onnx/graph.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";
const f32 = (name: string, dims: number[]) => ({
  name,
  type: { tensorType: { elemType: 1, shape: dims.map((value) => ({ value })) } },
});
const i64 = (v: number[]) => BigInt64Array.from(v.map(BigInt));
function unfoldModel(N: number, I: number, O: number, H: number, k: number, s: number, p: number) {
  const Ho = Math.floor((H + 2 * p - k) / s) + 1, K = k * k;
  const m = emptyModel(17);
  const b = new GraphBuilder(m.graph);
  m.graph.input.push(f32("x", [N, I, H, H]), f32("dy", [N, O, Ho, Ho]));
  const onehot = new Float32Array(I * K * K);
  for (let o = 0; o < I * K; o++) onehot[o * K + (o % K)] = 1;
  const kern = b.initializer("k", onehot, [I * K, 1, k, k]);
  const [u] = b.node("Conv", ["x", kern], {
    attributes: [
      intAttr("group", I),
      intsAttr("kernel_shape", [k, k]),
      intsAttr("strides", [s, s]),
      intsAttr("pads", [p, p, p, p]),
    ],
  });
  const [ur] = b.node("Reshape", [u, b.initializer("s1", i64([0, I * K, -1]), [3])]);
  const [dyr] = b.node("Reshape", ["dy", b.initializer("s2", i64([0, O, -1]), [3])]);
  const [dyt] = b.node("Transpose", [dyr], { attributes: [intsAttr("perm", [0, 2, 1])] });
  const [mm] = b.node("MatMul", [ur, dyt]);
  const [sm] = b.node("ReduceSum", [mm, b.initializer("ax", i64([0]), [1])], { attributes: [intAttr("keepdims", 0)] });
  const [st] = b.node("Transpose", [sm], { attributes: [intsAttr("perm", [1, 0])] });
  b.node("Reshape", [st, b.initializer("s3", i64([O, I, k, k]), [4])], { outputs: ["dw"] });
  m.graph.output.push(f32("dw", [O, I, k, k]));
  return { m: OnnxModel.fromProto(m), Ho };
}
function convModel(N: number, I: number, O: number, H: number, k: number, s: number, p: number) {
  const Ho = Math.floor((H + 2 * p - k) / s) + 1;
  const pe = (k - 1) + s * (Ho - 1) + 1 - H - p;
  const m = emptyModel(17);
  const b = new GraphBuilder(m.graph);
  m.graph.input.push(f32("x", [N, I, H, H]), f32("dy", [N, O, Ho, Ho]));
  const [xt] = b.node("Transpose", ["x"], { attributes: [intsAttr("perm", [1, 0, 2, 3])] });
  const [dyt] = b.node("Transpose", ["dy"], { attributes: [intsAttr("perm", [1, 0, 2, 3])] });
  const [c] = b.node("Conv", [xt, dyt], {
    attributes: [
      intsAttr("kernel_shape", [Ho, Ho]),
      intsAttr("dilations", [s, s]),
      intsAttr("strides", [1, 1]),
      intsAttr("pads", [p, p, pe, pe]),
    ],
  });
  b.node("Transpose", [c], { outputs: ["dw"], attributes: [intsAttr("perm", [1, 0, 2, 3])] });
  m.graph.output.push(f32("dw", [O, I, k, k]));
  return { m: OnnxModel.fromProto(m), Ho, pe };
}
const cases = [[128, 16, 16, 28, 3, 1, 1], [128, 16, 32, 28, 3, 2, 1], [128, 32, 32, 14, 3, 1, 1], [
  128,
  32,
  64,
  14,
  3,
  2,
  1,
], [128, 64, 64, 7, 3, 1, 1]];
for (const [N, I, O, H, k, s, p] of cases) {
  const u = unfoldModel(N, I, O, H, k, s, p), cv = convModel(N, I, O, H, k, s, p);
  const rng = new Prng(1);
  const x = new Float32Array(N * I * H * H), dy = new Float32Array(N * O * u.Ho * u.Ho);
  rng.fillNormal(x);
  rng.fillNormal(dy);
  const feeds = { x: new Tensor(x, [N, I, H, H]), dy: new Tensor(dy, [N, O, u.Ho, u.Ho]) };
  const ses = [["unfold", await createSession(u.m, { backend: "node", threads: 2 })], [
    "conv plain",
    await createSession(cv.m, { backend: "node", threads: 2, blockedConvolutions: false }),
  ], ["conv blocked", await createSession(cv.m, { backend: "node", threads: 2 })]] as const;
  const ref = (await ses[0][1].run(feeds)).dw.data as Float32Array;
  const res: string[] = [];
  for (const [l, s2] of ses) {
    const got = (await s2.run(feeds)).dw.data as Float32Array;
    let d = 0, sc = 0;
    for (let i = 0; i < ref.length; i++) {
      d = Math.max(d, Math.abs(got[i] - ref[i]));
      sc = Math.max(sc, Math.abs(ref[i]));
    }
    const ts: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      await s2.run(feeds);
      ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    res.push(
      `${l} ${ts[3].toFixed(2)}ms (err ${(d / sc).toExponential(1)}${s2.blockedConvolutions.length ? " blk" : ""})`,
    );
  }
  console.log(`N${N} ${I}->${O} ${H}x${H} k${k} s${s} pe=${cv.pe}: ${res.join(" | ")}`);
}
