/**
 * Minimal reproduction: onnxruntime-web (WASM, `env.wasm.numThreads = 2`) under Deno hangs in `session.run()`.
 *
 * The parent runs each case in a child Deno process with a wall-clock limit (a hung run blocks its event loop, so
 * the child cannot time itself out) and prints ok / HANG per case with the run time. Cases: one Conv (3x3, 16 -> 16
 * channels, 28x28) at growing batch sizes, which needs no quantlab code beyond building the ONNX bytes, and the
 * ResNet-8 training graph of `lib/grad` at the same batch sizes.
 *
 * Run: `deno run -A benchmarks/ort_web_threads_repro.ts [--threads 2] [--timeout 60] [--batches 8,64,128,256]
 * [--graphs conv,train] [--workaround]` (`--workaround` creates a throw-away session and runs it once at the largest size first, so the
 * WASM heap has grown before the real run; see benchmarks/results_train.md for what was found).
 *
 * @module
 */
import { emptyModel } from "../lib/onnx/proto.ts";
import { OnnxModel } from "../lib/onnx/model.ts";
import { makeTensorProto } from "../lib/onnx/tensor_data.ts";
import { ORT_VERSION } from "../lib/onnx/session.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const threads = Number(arg("threads", "2"));

/** One 3x3 Conv, 16 -> 16 channels, pad 1, as ONNX bytes (opset 17). */
function convBytes(): Uint8Array {
  const p = emptyModel(17);
  const g = p.graph;
  const w = new Float32Array(16 * 16 * 9).map((_, i) => Math.sin(i) * 0.1);
  g.initializer.push(makeTensorProto("w", w, [16, 16, 3, 3]));
  g.input.push({
    name: "x",
    type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 16 }, { value: 28 }, { value: 28 }] } },
  });
  g.node.push({
    input: ["x", "w"],
    output: ["y"],
    name: "conv",
    opType: "Conv",
    domain: "",
    attribute: [
      { name: "pads", type: 7, ints: [1, 1, 1, 1] },
      { name: "kernel_shape", type: 7, ints: [3, 3] },
    ],
  } as never);
  g.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  return OnnxModel.fromProto(p, "conv").encode();
}

async function child(): Promise<void> {
  const ort = await import(`npm:onnxruntime-web@${ORT_VERSION}`).then((m) =>
    m.default?.InferenceSession ? m.default : m
  );
  ort.env.wasm.numThreads = threads;
  const graph = arg("graph", "conv"), batch = Number(arg("batch", "128"));
  let bytes: Uint8Array, feeds: (n: number) => Record<string, unknown>;
  if (graph === "conv") {
    bytes = convBytes();
    feeds = (n) => ({ x: new ort.Tensor("float32", new Float32Array(n * 16 * 784).fill(0.5), [n, 16, 28, 28]) });
  } else {
    // The ResNet-8 training graph (forward + backward) of lib/grad, built on onnxruntime-node or 1-thread WASM.
    const { buildGradientGraph } = await import("../lib/grad/compiler.ts");
    const { crossEntropyLoss } = await import("../lib/grad/losses.ts");
    const { resnet8 } = await import("../lib/models/resnet8.ts");
    const { Tensor } = await import("../lib/tensor/tensor.ts");
    const tg = await buildGradientGraph(resnet8({ seed: 0 }), {
      loss: crossEntropyLoss("logits", "labels", { labelType: "int32" }),
      wrt: "parameters",
      batchNorm: "train",
      feeds: { input: Tensor.zeros([2, 1, 28, 28]), labels: new Tensor(new Int32Array(2), [2]) },
      session: { backend: "node", threads: 1 },
    });
    bytes = tg.model.encode();
    const init = tg.initialParams();
    feeds = (n) => {
      const f: Record<string, unknown> = {
        input: new ort.Tensor("float32", new Float32Array(n * 784).fill(0.5), [n, 1, 28, 28]),
        labels: new ort.Tensor("int32", new Int32Array(n), [n]),
      };
      for (const p of tg.params) f[p.name] = new ort.Tensor("float32", init.get(p.name)!, p.dims);
      return f;
    };
  }
  if (Deno.args.includes("--workaround")) {
    const warm = await ort.InferenceSession.create(bytes);
    await warm.run(feeds(Math.max(batch, 256)));
    await warm.release();
  }
  const s = await ort.InferenceSession.create(bytes);
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) await s.run(feeds(batch));
  console.log(JSON.stringify({ ms: (performance.now() - t0) / 3 }));
  await s.release();
}

async function parent(): Promise<void> {
  const timeout = Number(arg("timeout", "60")) * 1000;
  const batches = arg("batches", "8,64,128,256").split(",").map(Number);
  const kinds = arg("graphs", "conv,train").split(",");
  const cases = kinds.flatMap((graph) => batches.map((batch) => ({ graph, batch })))
    .filter((c) => c.graph === "conv" || c.batch >= 8);
  console.log(
    `onnxruntime-web ${ORT_VERSION}, Deno ${Deno.version.deno}, numThreads ${threads}, ${navigator.hardwareConcurrency} cores${
      Deno.args.includes("--workaround") ? ", with the pre-grow workaround" : ""
    }`,
  );
  for (const c of cases) {
    const args = ["run", "-A", new URL(import.meta.url).pathname, "--child", "--threads", String(threads)];
    args.push("--graph", c.graph, "--batch", String(c.batch));
    if (Deno.args.includes("--workaround")) args.push("--workaround");
    const ac = new AbortController();
    const t0 = performance.now();
    const p = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped", signal: ac.signal }).spawn();
    const timer = setTimeout(() => ac.abort(), timeout);
    const out = await p.output();
    clearTimeout(timer);
    const wall = ((performance.now() - t0) / 1000).toFixed(1);
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    const status = out.success
      ? `ok, ${JSON.parse(text).ms.toFixed(0)} ms/run`
      : out.signal
      ? `HANG (killed after ${wall} s)`
      : `error: ${new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" / ")}`;
    console.log(`${c.graph} batch ${c.batch}: ${status}`);
  }
}

if (Deno.args.includes("--child")) await child();
else await parent();
