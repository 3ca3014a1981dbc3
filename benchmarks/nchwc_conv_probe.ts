/**
 * Probe for issue 18 (training speed): can a training step use ONNX Runtime's NCHWc convolution kernels? ORT applies
 * them only to convs whose weights are constant initializers (`onnxruntime/core/optimizer/nchwc_transformer.cc`:
 * "Require that the weights tensor be static"), so a training graph, whose weights are inputs, runs MLAS's im2col +
 * SGEMM path. This probe calls the `com.microsoft.nchwc` ops directly with the weight reordered inside the graph
 * (`benchmarks/nchwc_conv_probe.py` writes both models) and compares time and outputs with a plain Conv, batch 128,
 * 28x28, 3x3, C -> C channels, onnxruntime-node 2 threads, alternated in one process.
 *
 * Run: `deno run -A benchmarks/nchwc_conv_probe.ts` (needs Debian's python3-onnx; AVX-512: block 16, AVX2: pass
 * `--block 8`).
 *
 * @module
 */
import { createSession } from "../lib/onnx/session.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const i = Deno.args.indexOf("--block");
const block = i >= 0 ? Deno.args[i + 1] : "16";
const dir = await Deno.makeTempDir({ prefix: "nchwc_probe_" });
const py = await new Deno.Command("/usr/bin/python3", {
  args: [new URL("./nchwc_conv_probe.py", import.meta.url).pathname, dir, block],
}).output();
if (!py.success) throw new Error(new TextDecoder().decode(py.stderr));
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(`load ${Deno.readTextFileSync("/proc/loadavg").split(" ")[0]}`);
for (const C of [16, 32, 64]) {
  const rng = new Prng(C);
  const x = new Float32Array(128 * C * 28 * 28), w = new Float32Array(C * C * 9);
  rng.fillNormal(x);
  rng.fillNormal(w);
  const feeds = { X: new Tensor<"float32">(x, [128, C, 28, 28]), W: new Tensor<"float32">(w, [C, C, 3, 3]) };
  const a = await createSession(await Deno.readFile(`${dir}/conv_${C}.onnx`), { backend: "node", threads: 2 });
  const b = await createSession(await Deno.readFile(`${dir}/nchwc_${C}.onnx`), { backend: "node", threads: 2 });
  const ya = (await a.run(feeds)).Y.data as Float32Array, yb = (await b.run(feeds)).Y.data as Float32Array;
  let diff = 0, max = 0;
  for (let k = 0; k < ya.length; k++) {
    diff = Math.max(diff, Math.abs(ya[k] - yb[k]));
    max = Math.max(max, Math.abs(ya[k]));
  }
  const ta: number[] = [], tb: number[] = [];
  for (let r = 0; r < 15; r++) {
    let t0 = performance.now();
    await a.run(feeds);
    ta.push(performance.now() - t0);
    t0 = performance.now();
    await b.run(feeds);
    tb.push(performance.now() - t0);
  }
  console.log(
    `C=${C}: Conv ${median(ta).toFixed(1)} ms, NCHWc (weight reordered in-graph, reorders included) ${
      median(tb).toFixed(1)
    } ms (${(median(ta) / median(tb)).toFixed(2)}x), max |diff| ${diff.toExponential(2)} (max |y| ${max.toFixed(1)})`,
  );
  await a.release();
  await b.release();
}
await Deno.remove(dir, { recursive: true });
