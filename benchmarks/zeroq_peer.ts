/**
 * Peer comparison: ZeroQ distillation of 32 images for 500 iterations on the Fashion-MNIST reference network
 * (ResNet-8 with BatchNorm; the test fixture when the reference is absent) with quantlab (gradient graphs on
 * onnxruntime-node and onnxruntime-web) against a PyTorch 1.13 reimplementation of the same procedure
 * (`benchmarks/zeroq_peer.py`), same threads, in the same run. Targets (issue 7): at most 2x PyTorch on native,
 * at most 4x on WASM.
 *
 * Run: `deno run -A benchmarks/zeroq_peer.ts [--threads 2] [--iterations 500] [--batch 32] [--backends node,web]
 * [--web-threads 1]`
 *
 * @module
 */
import { OnnxModel } from "../lib/onnx/model.ts";
import { zeroShot } from "../lib/zeroshot/distill.ts";
import { printComparison, runPeer } from "./peer_harness.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const threads = Number(arg("threads", "2"));
const webThreads = Number(arg("web-threads", "1"));
const iterations = Number(arg("iterations", "500"));
const batch = Number(arg("batch", "32"));
const backends = arg("backends", "node,web").split(",") as ("node" | "web")[];

const candidates = ["../datasets/models/resnet8_fashion.onnx", "../tests/fixtures/models/resnet8_op13.onnx"];
let path = "";
for (const c of candidates) {
  const p = new URL(c, import.meta.url).pathname;
  try {
    await Deno.stat(p);
    path = p;
    break;
  } catch { /* next */ }
}
const model = await OnnxModel.load(path);
console.log(`model ${path}; ${batch} images x ${iterations} iterations; ${threads} threads (WASM: ${webThreads})`);
const peer = await runPeer<{ distill_ms: number; loss0: number; lossFinal: number }>(
  new URL("./zeroq_peer.py", import.meta.url),
  { model: path, batch, iterations, threads },
);
if (peer) {
  console.log(
    `PyTorch: ${(peer.distill_ms / 1000).toFixed(2)} s, loss ${peer.loss0.toFixed(2)} -> ${peer.lossFinal.toFixed(4)}`,
  );
}
const rows = [];
for (const backend of backends) {
  const t = backend === "web" ? webThreads : threads;
  const z = zeroShot(model).batch(batch).iterations(iterations).session({ backend, threads: t });
  await zeroShot(model).batch(batch).iterations(3).session({ backend, threads: t }).generate(); // warm up
  const t0 = performance.now();
  const d = await z.generate();
  const ms = performance.now() - t0;
  console.log(`quantlab ${backend}: ${(ms / 1000).toFixed(2)} s, ${d.toString()}`);
  rows.push({
    name: `distill ${batch}x${iterations} (${backend}, ${t} thread${t > 1 ? "s" : ""})`,
    oursMs: ms,
    peerMs: peer?.distill_ms ?? NaN,
    maxRatio: backend === "node" ? 2 : 4,
  });
}
printComparison("ZeroQ distillation", "PyTorch 1.13", rows);
