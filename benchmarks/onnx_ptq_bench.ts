/**
 * QOperator int8 vs float32 inference at batch 64 on onnxruntime-node and onnxruntime-web (1 WASM thread, see
 * session.ts), for two Fashion-MNIST residual networks:
 * - `resnet8-narrow`: the residual test fixture (8/16/32 channels, tests/fixtures/models/resnet8_op13.onnx);
 * - `resnet8-16/32/64`: the reference ResNet-8 (16/32/64 channels): the trained `datasets/models/resnet8_fashion.onnx`
 *   when present, else an untrained `resnet8()` from lib/models (same shapes; timing does not depend on values).
 * PyTorch float32 of the same architectures runs in the same process tree via benchmarks/onnx_ptq_peer.py.
 * Run: `deno bench -A benchmarks/onnx_ptq_bench.ts`. Per-op profiles: `deno run -A benchmarks/onnx_profile.ts`.
 *
 * @module
 */
import { OnnxModel } from "../lib/onnx/model.ts";
import { createSession, type OrtSession } from "../lib/onnx/session.ts";
import { resnet8 } from "../lib/models/resnet8.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";
import { runPeer, timeMsAsync } from "./peer_harness.ts";

const fixturePath = new URL("../tests/fixtures/models/resnet8_op13.onnx", import.meta.url).pathname;
const trainedPath = new URL("../datasets/models/resnet8_fashion.onnx", import.meta.url).pathname;
let wide: OnnxModel;
let wideOrigin: string;
try {
  wide = await OnnxModel.load(trainedPath);
  wideOrigin = "trained datasets/models/resnet8_fashion.onnx";
} catch {
  wide = resnet8({ seed: 0 });
  wideOrigin = "untrained resnet8() 16/32/64";
}
const nets: [string, OnnxModel][] = [["resnet8-narrow", await OnnxModel.load(fixturePath)], ["resnet8-16/32/64", wide]];
const rng = new Prng(0);
const normal = (n: number) => rng.fillNormal(new Float32Array(n)) as Float32Array;
const x = new Tensor<"float32">(normal(64 * 784), [64, 1, 28, 28]);
const calib = [new Tensor<"float32">(normal(256 * 784), [256, 1, 28, 28])];
const threads = 2;
const sessions: [string, OrtSession][] = [];
for (const [net, model] of nets) {
  const { float, qoperator } = await ptq(model).calibrateOn(calib).quantize();
  sessions.push(
    [`${net} node float32`, await createSession(float, { backend: "node", threads })],
    [`${net} node qoperator`, await createSession(qoperator.model, { backend: "node", threads })],
    [`${net} web float32`, await createSession(float, { backend: "web", threads: 1 })],
    [`${net} web qoperator`, await createSession(qoperator.model, { backend: "web", threads: 1 })],
  );
}
for (const [name, s] of sessions) {
  const [net, backend] = name.split(" ");
  Deno.bench(
    { name: `batch 64 ${name}`, group: `${net} ${backend}`, baseline: name.endsWith("float32") },
    async () => {
      await s.run({ input: x });
    },
  );
}

// Same-run ratios, including PyTorch (float32, 2 threads).
const ms: Record<string, number> = {};
for (let round = 0; round < 2; round++) {
  // Two interleaved rounds; keep the faster (2 shared cores: the minimum resists interference).
  for (const [name, s] of sessions) {
    const t = await timeMsAsync(() => s.run({ input: x }), { iterations: 15 });
    ms[name] = Math.min(ms[name] ?? Infinity, t);
  }
}
for (const [net, channels] of [["resnet8-narrow", [8, 16, 32]], ["resnet8-16/32/64", [16, 32, 64]]] as const) {
  const peer = await runPeer(new URL("./onnx_ptq_peer.py", import.meta.url), { batch: 64, threads, channels });
  if (peer) ms[`${net} torch float32`] = peer["torch float32"];
}
console.log(`wide model: ${wideOrigin}`);
console.log("median ms per batch of 64:", ms);
for (const [net] of nets) {
  const r = (b: string) => (ms[`${net} ${b} float32`] / ms[`${net} ${b} qoperator`]).toFixed(2);
  const torch = ms[`${net} torch float32`];
  console.log(
    `${net}: int8 speed-up node ${r("node")}x, web ${r("web")}x` +
      (torch ? `; node float32 vs torch ${(torch / ms[`${net} node float32`]).toFixed(2)}x` : ""),
  );
}
