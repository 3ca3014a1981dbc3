/**
 * Where the time goes: ONNX Runtime's own profiler (`enableProfiling`, onnxruntime-node) over 20 runs at batch 64 of
 * the float32 and QOperator models of both residual networks of onnx_ptq_bench.ts, summed per op type (kernel time
 * only, as ORT's `Node` events report it). Run: `deno run -A benchmarks/onnx_profile.ts`.
 *
 * @module
 */
import { OnnxModel } from "../lib/onnx/model.ts";
import { ORT_VERSION } from "../lib/onnx/session.ts";
import { resnet8 } from "../lib/models/resnet8.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const spec = `npm:onnxruntime-node@${ORT_VERSION}`;
const ort = await import(spec);
const rng = new Prng(0);
const normal = (n: number) => rng.fillNormal(new Float32Array(n)) as Float32Array;
const x = normal(64 * 784);
const calib = [new Tensor<"float32">(normal(256 * 784), [256, 1, 28, 28])];
const fixture = await OnnxModel.load(new URL("../tests/fixtures/models/resnet8_op13.onnx", import.meta.url).pathname);
const dir = await Deno.makeTempDir({ prefix: "quantlab-ort-profile-" });
for (const [net, model] of [["resnet8-narrow", fixture], ["resnet8-16/32/64", resnet8({ seed: 0 })]] as const) {
  const { float, qoperator } = await ptq(model).calibrateOn(calib).quantize();
  for (const [variant, m] of [["float32", float], ["qoperator", qoperator.model]] as const) {
    const s = await ort.InferenceSession.create(m.encode(), {
      intraOpNumThreads: 2,
      graphOptimizationLevel: "all",
      enableProfiling: true,
      profileFilePrefix: `${dir}/p`,
      logSeverityLevel: 3,
    });
    const feed = { input: new ort.Tensor("float32", x, [64, 1, 28, 28]) };
    for (let i = 0; i < 22; i++) await s.run(feed);
    s.endProfiling?.();
    await s.release();
    // onnxruntime-node writes <prefix>_<timestamp>.json when profiling ends; take the newest file.
    const files = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`).filter((f) => f.endsWith(".json"));
    files.sort((a, b) => Deno.statSync(b).mtime!.getTime() - Deno.statSync(a).mtime!.getTime());
    const file = files[0];
    const events = JSON.parse(await Deno.readTextFile(file)) as {
      cat: string;
      name: string;
      dur: number;
      args?: { op_name?: string };
    }[];
    const byOp = new Map<string, number>();
    let total = 0;
    for (const e of events) {
      if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
      const op = e.args?.op_name ?? "?";
      byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
      total += e.dur;
    }
    const runs = 22;
    const rows = [...byOp].sort((a, b) => b[1] - a[1]).map(([op, us]) =>
      `${op} ${(us / runs / 1000).toFixed(2)} ms (${((100 * us) / total).toFixed(0)}%)`
    );
    console.log(`${net} ${variant}: kernels ${(total / runs / 1000).toFixed(2)} ms/run: ${rows.join(", ")}`);
  }
}
await Deno.remove(dir, { recursive: true });
