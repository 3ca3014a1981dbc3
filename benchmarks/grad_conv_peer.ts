// deno run -A benchmarks/grad_conv_peer.ts [threads]
// Forward+backward of one 3x3 conv layer (128x32x14x14 -> 64, pad 1, bias) through quantlab's gradient graph
// (dX by ConvTranspose, dW by unfold + batched MatMul + ReduceSum, dB by ReduceSum) on onnxruntime-node and
// onnxruntime-web, against PyTorch 1.13 on the same inputs and threads, in the same run. Checks the gradients
// agree with PyTorch's before timing.
import { printComparison, runPeer, timeMsAsync } from "./peer_harness.ts";
import { buildGradientGraph, customLoss, GradientSession } from "../lib/grad/mod.ts";
import { OnnxModel } from "../lib/onnx/model.ts";
import { emptyModel } from "../lib/onnx/proto.ts";
import { createSession } from "../lib/onnx/session.ts";
import { makeTensorProto } from "../lib/onnx/tensor_data.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const threads = Number(Deno.args[0] ?? 2);
const N = 128;
const rng = new Prng(0);
const rand = (n: number, s = 1) => rng.fillNormal(new Float32Array(n), 0, s) as Float32Array;
const x = new Tensor(rand(N * 32 * 14 * 14), [N, 32, 14, 14]);
const w = rand(64 * 32 * 9, 0.05), b = rand(64, 0.1);
const r = new Tensor(rand(N * 64 * 14 * 14), [N, 64, 14, 14]);

const p = emptyModel(17);
p.graph.input.push({
  name: "x",
  type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 32 }, { value: 14 }, { value: 14 }] } },
});
p.graph.initializer.push(makeTensorProto("w", w, [64, 32, 3, 3]), makeTensorProto("b", b, [64]));
p.graph.node.push({
  input: ["x", "w", "b"],
  output: ["y"],
  name: "conv",
  opType: "Conv",
  domain: "",
  attribute: [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }, { name: "kernel_shape", type: 7, ints: [3, 3] }],
});
p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
const model = OnnxModel.fromProto(p);
const tg = await buildGradientGraph(model, {
  loss: customLoss((ctx) => ctx.e.reduceSum(ctx.e.mul("y", ctx.input("r", 1)), null, false)),
  wrt: ["x", "w", "b"],
  feeds: { x, r },
  session: { backend: "node", threads },
});
const params = tg.initialParams();

const files: Record<string, string> = {};
for (const [k, v] of Object.entries({ x: x.data as Float32Array, w, b, r: r.data as Float32Array })) {
  files[k] = await Deno.makeTempFile({ suffix: ".f32" });
  await Deno.writeFile(files[k], new Uint8Array(v.buffer));
}
const iterations = 7;
const peer = await runPeer<Record<string, number>>(new URL("./grad_conv_peer.py", import.meta.url), {
  ...files,
  n: N,
  threads,
  iterations,
}, { OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) });
for (const f of Object.values(files)) await Deno.remove(f);

const rows = [];
for (const backend of ["node", "web"] as const) {
  const fwd = await createSession(model, { backend, threads });
  const gs = await GradientSession.create(tg, { backend, threads });
  const res = await gs.run({ x, r }, params);
  let dw = 0, dx = 0;
  for (const v of res.grads.get("w")!) dw += v;
  for (const v of res.grads.get("x")!) dx += v;
  if (peer) {
    const ok = Math.abs(dw - peer.dw_sum) <= 1e-3 * Math.abs(peer.dw_sum) + 1 &&
      Math.abs(dx - peer.dx_sum) <= 1e-3 * Math.abs(peer.dx_sum) + 1;
    console.log(
      `${backend}: sum dW ${dw.toFixed(3)} (PyTorch ${peer.dw_sum.toFixed(3)}), sum dX ${dx.toFixed(3)} (PyTorch ${
        peer.dx_sum.toFixed(3)
      }) ${ok ? "agree" : "DISAGREE"}`,
    );
  }
  const fMs = await timeMsAsync(() => fwd.run({ x }), { iterations });
  const fbMs = await timeMsAsync(() => gs.run({ x, r }, params), { iterations });
  rows.push({
    name: `forward, onnxruntime-${backend} (${gs.session.threads} threads)`,
    oursMs: fMs,
    peerMs: peer?.forward ?? NaN,
  });
  rows.push({
    name: `forward+backward (loss, dX, dW, dB), onnxruntime-${backend}`,
    oursMs: fbMs,
    peerMs: peer?.forward_backward ?? NaN,
    maxRatio: backend === "node" ? 2 : 4,
  });
}
printComparison(
  `One 3x3 conv layer ${N}x32x14x14 -> 64: quantlab gradient graph vs PyTorch 1.13 (${threads} threads)`,
  "PyTorch",
  rows,
);
