/**
 * Where a training epoch's time goes, for any classification model: start here before optimising training.
 *
 * 1. JS-side phases of the real training loop (`Trainer.fit` on the first `--steps` batches of the data, its
 *    {@link TrainerTimings}): gathering and normalising batches, the ONNX Runtime call, BN running statistics,
 *    the optimizer, metrics, progress, evaluation and checkpoints, as ms per step and share of the loop's wall time.
 * 2. The ONNX Runtime call split: wall time of `session.run` on the raw binding (no quantlab wrappers) against the
 *    kernel time ORT's profiler reports, i.e. how much is binding and framework overhead (feeds, output copies,
 *    scheduling) rather than kernels.
 * 3. Kernel time per op type and the most expensive nodes of the training graph (ORT profiler; onnxruntime-node
 *    only: onnxruntime-web has no profile file).
 *
 * Run: `deno run -A benchmarks/train_profile.ts [--model path.onnx] [--input input] [--logits logits]
 * [--backend node|web] [--threads 2] [--batch 128] [--steps 30] [--runs 5] [--top 15] [--plain-convs]` (sections 2 and 3
 * run the graph as sessions do, with blocked NCHWc convolutions for runtime weights on node, unless `--plain-convs`)
 *
 * Without `--model` it profiles the ResNet-8 reference net (`lib/models/resnet8.ts`) on Fashion-MNIST (when the data
 * is installed); other models train on seeded random bytes of their input shape with 10 classes (or the logits
 * width). The machine's load average (`/proc/loadavg`) is printed before and after: on a shared machine read shares,
 * not absolute times.
 *
 * @module
 */
import { Trainer, type TrainerTimings } from "../lib/grad/train.ts";
import { sgd } from "../lib/grad/optim.ts";
import { epochOrder, labelledBatch } from "../lib/grad/train_data.ts";
import { resnet8 } from "../lib/models/resnet8.ts";
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { type ImageDataset, imageDataset, selectImages } from "../lib/data/images.ts";
import { OnnxModel } from "../lib/onnx/model.ts";
import { loadBackend, nchwcBlockSize } from "../lib/onnx/session.ts";
import { blockedConvolutions } from "../lib/onnx/nchwc.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import { Prng } from "../lib/tensor/prng.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const modelPath = arg("model", "");
const input = arg("input", "input"), logits = arg("logits", "logits");
const backend = arg("backend", "node") as "node" | "web";
const threads = Number(arg("threads", "2"));
const batch = Number(arg("batch", "128"));
const steps = Number(arg("steps", "30"));
const runs = Number(arg("runs", "5"));
const top = Number(arg("top", "15"));

const load = () => {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
};
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function dataFor(model: OnnxModel): Promise<ImageDataset> {
  if (!modelPath) {
    try {
      return await loadFashionMnist("train");
    } catch {
      console.error("Fashion-MNIST not installed: profiling on random bytes");
    }
  }
  const v = model.graph.input.find((i) => i.name === input);
  const dims = (v?.type?.tensorType?.shape ?? []).map((d) => Number(d.value ?? 0));
  const [c, h, w] = dims.length === 4 ? dims.slice(1) : [1, 28, 28];
  const out = model.graph.output.find((o) => o.name === logits);
  const classes = Number(out?.type?.tensorType?.shape?.[1]?.value ?? 10) || 10;
  const count = batch * (steps + 1);
  const rng = new Prng(0);
  const pixels = new Uint8Array(count * c * h * w);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.nextInt(256);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = rng.nextInt(classes);
  return imageDataset({
    name: "random",
    pixels,
    labels,
    channels: c,
    height: h,
    width: w,
    normalization: { mean: 0.5, std: 0.25 },
  });
}

const model = modelPath ? await OnnxModel.load(modelPath) : resnet8({ seed: 0 });
const data = await dataFor(model);
const subset = selectImages(data, epochOrder(data.count, 0, 0).subarray(0, Math.min(data.count, batch * steps)));
const first = labelledBatch(subset, Array.from({ length: batch }, (_, i) => i));
console.log(
  `# Training profile: ${model.source}, onnxruntime-${backend}, ${threads} threads, batch ${batch}, ${steps} steps ` +
    `(load average before: ${load()})`,
);
const trainer = await Trainer.create({
  model,
  optimizer: sgd({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }),
  sample: first,
  input,
  logits,
  session: { backend, threads },
});
console.log(
  `training graph: ${trainer.graph.model.graph.node.length} nodes, ${trainer.graph.params.length} parameter tensors`,
);
// Warm up (first runs allocate ORT's arena), then time the real loop, including an evaluation and a checkpoint.
for (let i = 0; i < 3; i++) await trainer.step(first);
for (const k of Object.keys(trainer.timings) as (keyof TrainerTimings)[]) trainer.timings[k] = 0;
const ckDir = await Deno.makeTempDir({ prefix: "quantlab-train-profile-" });
const evalSet = selectImages(subset, Array.from({ length: Math.min(subset.count, 2000) }, (_, i) => i));
const t0 = performance.now();
await trainer.fit({
  train: subset,
  test: evalSet,
  epochs: 1,
  batchSize: batch,
  seed: 0,
  progress: "none",
  checkpoint: `${ckDir}/ck.onnx`,
});
const wall = performance.now() - t0;
await Deno.remove(ckDir, { recursive: true });
const tm = trainer.timings;
const phases: [string, number][] = [
  ["gather + normalise batches", tm.gather],
  ["ONNX Runtime run (feeds, kernels, outputs)", tm.run],
  ["BN running statistics", tm.bnStats],
  ["optimizer update", tm.optimizer],
  ["loss check + accuracy", tm.metrics],
  ["schedule + progress", tm.progress],
  [`evaluation (${evalSet.count} images, once)`, tm.evaluate],
  ["checkpoint (once)", tm.checkpoint],
];
const accounted = phases.reduce((a, [, v]) => a + v, 0);
phases.push(["unaccounted (await, GC, loop)", wall - accounted]);
console.log(`\n## 1. Phases of Trainer.fit (${tm.steps} steps, ${(wall / 1000).toFixed(2)} s wall)\n`);
console.log(`| phase | ms per step | share |`);
console.log(`|---|---:|---:|`);
for (const [k, v] of phases) console.log(`| ${k} | ${(v / tm.steps).toFixed(2)} | ${(100 * v / wall).toFixed(1)}% |`);

// 2 + 3: the raw binding, with and without the profiler.
const { ort } = await loadBackend(backend);
const b = labelledBatch(subset, Array.from({ length: batch }, (_, i) => i));
const feeds: Record<string, unknown> = {
  [input]: new ort.Tensor("float32", b.x.data, b.x.shape),
  labels: new ort.Tensor("int32", b.labels.data, b.labels.shape),
};
for (const p of trainer.graph.params) feeds[p.name] = new ort.Tensor("float32", trainer.params.get(p.name)!, p.dims);
// The graph as createSession runs it: blocked (NCHWc) convolutions for runtime weights on the native backend.
const block = backend === "node" && !Deno.args.includes("--plain-convs") ? await nchwcBlockSize() : undefined;
const blocked = block === undefined
  ? { proto: trainer.graph.model.proto, rewritten: [] }
  : blockedConvolutions(trainer.graph.model.proto, block);
console.log(`\nblocked (NCHWc) convolutions, block ${block ?? "-"}: ${blocked.rewritten.length}`);
const bytes = encodeModel(blocked.proto);
await trainer.release();
const plain = await ort.InferenceSession.create(bytes, {
  intraOpNumThreads: backend === "node" ? threads : undefined,
  graphOptimizationLevel: "all",
  logSeverityLevel: 3,
});
for (let i = 0; i < 2; i++) await plain.run(feeds as never);
const raw: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  await plain.run(feeds as never);
  raw.push(performance.now() - t);
}
await plain.release();
console.log(`\n## 2. The ONNX Runtime call\n`);
console.log(
  `Trainer.step's run: ${(tm.run / tm.steps).toFixed(1)} ms/step; raw session.run on the same graph: median ` +
    `${median(raw).toFixed(1)} ms (${raw.map((t) => t.toFixed(0)).join(" ")})`,
);

if (backend === "node") {
  const dir = await Deno.makeTempDir({ prefix: "quantlab-ort-profile-" });
  const s = await ort.InferenceSession.create(
    bytes,
    {
      intraOpNumThreads: threads,
      graphOptimizationLevel: "all",
      enableProfiling: true,
      profileFilePrefix: `${dir}/prof`,
      logSeverityLevel: 3,
    } as Parameters<typeof ort.InferenceSession.create>[1],
  );
  for (let i = 0; i < runs; i++) await s.run(feeds as never);
  await (s as unknown as { endProfiling?: () => Promise<void> }).endProfiling?.();
  await s.release();
  const file = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`).find((f) => f.endsWith(".json"))!;
  const events = JSON.parse(await Deno.readTextFile(file)) as {
    cat: string;
    name: string;
    dur: number;
    args?: { op_name?: string; output_size?: string };
  }[];
  await Deno.remove(dir, { recursive: true });
  const byOp = new Map<string, { ms: number; n: number }>();
  const byNode = new Map<string, { ms: number; op: string; out: number }>();
  let kernels = 0, modelRun = 0;
  for (const e of events) {
    if (e.cat === "Session" && e.name === "model_run") modelRun += e.dur / 1000 / runs;
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
    const op = e.args?.op_name ?? "?";
    const ms = e.dur / 1000 / runs;
    const r = byOp.get(op) ?? { ms: 0, n: 0 };
    r.ms += ms;
    r.n += 1 / runs;
    byOp.set(op, r);
    const name = e.name.replace(/_kernel_time$/, "");
    const nd = byNode.get(name) ?? { ms: 0, op, out: Number(e.args?.output_size ?? 0) };
    nd.ms += ms;
    byNode.set(name, nd);
    kernels += ms;
  }
  console.log(
    `ORT model_run ${modelRun.toFixed(1)} ms, of which kernels ${kernels.toFixed(1)} ms ` +
      `(${(100 * kernels / modelRun).toFixed(0)}%); binding overhead = raw run - model_run`,
  );
  console.log(`\n## 3. Kernel time by op type (ORT profiler, ${runs} runs)\n`);
  console.log(`| op | ms/step | share | nodes |`);
  console.log(`|---|---:|---:|---:|`);
  for (const [op, r] of [...byOp].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`| ${op} | ${r.ms.toFixed(2)} | ${(100 * r.ms / kernels).toFixed(1)}% | ${Math.round(r.n)} |`);
  }
  console.log(`\nTop ${top} nodes:\n`);
  console.log(`| node | op | ms/step | output MB |`);
  console.log(`|---|---|---:|---:|`);
  for (const [name, r] of [...byNode].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(`| ${name} | ${r.op} | ${r.ms.toFixed(2)} | ${(r.out / 2 ** 20).toFixed(1)} |`);
  }
}
console.log(`\nload average after: ${load()}`);
