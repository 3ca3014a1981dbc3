/**
 * QOperator int8 vs float32 inference of the Fashion-MNIST residual fixture at batch 64, on onnxruntime-node and
 * onnxruntime-web (1 WASM thread, see session.ts), plus PyTorch float32 on the same network via
 * benchmarks/onnx_ptq_peer.py (printed once, with ratios). Run: `deno bench -A benchmarks/onnx_ptq_bench.ts`.
 *
 * @module
 */
import { OnnxModel } from "../lib/onnx/model.ts";
import { createSession } from "../lib/onnx/session.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";
import { runPeer, timeMsAsync } from "./peer_harness.ts";

const path = new URL("../tests/fixtures/models/resnet8_op13.onnx", import.meta.url).pathname;
const model = await OnnxModel.load(path);
const rng = new Prng(0);
const normal = (n: number) => rng.fillNormal(new Float32Array(n)) as Float32Array;
const x = new Tensor<"float32">(normal(64 * 784), [64, 1, 28, 28]);
const calib = [new Tensor<"float32">(normal(256 * 784), [256, 1, 28, 28])];
const { float, qoperator } = await ptq(model).calibrateOn(calib).quantize();
const threads = 2;
const sessions = {
  "node float32": await createSession(float, { backend: "node", threads }),
  "node qoperator": await createSession(qoperator.model, { backend: "node", threads }),
  "web float32": await createSession(float, { backend: "web", threads: 1 }),
  "web qoperator": await createSession(qoperator.model, { backend: "web", threads: 1 }),
};
for (const [name, s] of Object.entries(sessions)) {
  Deno.bench(
    { name: `resnet8 batch 64 ${name}`, group: name.split(" ")[0], baseline: name.endsWith("float32") },
    async () => {
      await s.run({ input: x });
    },
  );
}

// Same-run ratios, including PyTorch (float32, same weights, 2 threads).
const ms: Record<string, number> = {};
for (const [name, s] of Object.entries(sessions)) {
  ms[name] = await timeMsAsync(() => s.run({ input: x }), { iterations: 15 });
}
const peer = await runPeer(new URL("./onnx_ptq_peer.py", import.meta.url), { model: path, batch: 64, threads });
if (peer) ms["torch float32"] = peer["torch float32"];
console.log("median ms per batch of 64:", ms);
console.log(
  `int8 speed-up: node ${(ms["node float32"] / ms["node qoperator"]).toFixed(2)}x, web ${
    (ms["web float32"] / ms["web qoperator"]).toFixed(2)
  }x` +
    (peer ? `; node float32 vs torch ${(ms["torch float32"] / ms["node float32"]).toFixed(2)}x` : ""),
);
