/**
 * Peer comparison: training the Fashion-MNIST reference network (ResNet-8, 16/32/64 channels, BatchNorm) at batch 128
 * on quantlab's gradient graphs over onnxruntime-node and onnxruntime-web, against PyTorch 1.13 on the same
 * architecture, threads and data, in the same run. Targets (issue 18): a full epoch at most 1.5x PyTorch's on native
 * and 3x on WASM; one step (forward, cross-entropy, backward, SGD update, BN running statistics) at most 1.3x on
 * native.
 *
 * The machine is shared, so PyTorch runs as a server child process (`train_step_peer.py`, serve mode) and the engines
 * take turns: each round times a block of steps (synthetic batch) on PyTorch and then on each backend, and, with
 * `--epoch`, one full epoch (60,000 images, 469 steps, a seeded order per round; `Trainer.fit` against PyTorch's
 * indexing loop) on each. Ratios are computed per round from back-to-back blocks; the tables give every round with
 * the load average (`/proc/loadavg`, 1-minute) at its start, then the median ratio and its range.
 *
 * Also: the optimizer update in TypeScript against the same update as an ONNX graph (whether a fused in-graph update
 * would pay). Per-op profiles: `benchmarks/train_profile.ts`.
 *
 * Run: `deno run -A benchmarks/train_step_peer.ts [--threads 2] [--web-threads 1] [--steps 10] [--rounds 3]
 * [--backends node,web] [--epoch [node,web]]`
 *
 * onnxruntime-web runs with `--web-threads` (default 1): with 2 WASM threads the training graph hangs under Deno
 * (`benchmarks/ort_web_threads_repro.ts`).
 *
 * @module
 */
import { Trainer } from "../lib/grad/train.ts";
import { sgd } from "../lib/grad/optim.ts";
import type { LabelledBatch } from "../lib/grad/train_data.ts";
import { resnet8 } from "../lib/models/resnet8.ts";
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import type { ImageDataset } from "../lib/data/images.ts";
import { emptyModel } from "../lib/onnx/proto.ts";
import { OnnxModel } from "../lib/onnx/model.ts";
import { createSession } from "../lib/onnx/session.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";
import { referencePython } from "./peer_harness.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const threads = Number(arg("threads", "2"));
const webThreads = Number(arg("web-threads", "1"));
const steps = Number(arg("steps", "10"));
const warmup = Number(arg("warmup", "3"));
const rounds = Number(arg("rounds", "3"));
const backends = arg("backends", "node,web").split(",") as ("node" | "web")[];
const epochArg = Deno.args.indexOf("--epoch");
const epochBackends = epochArg < 0
  ? []
  : (Deno.args[epochArg + 1] ?? "").startsWith("--") || !Deno.args[epochArg + 1]
  ? backends
  : Deno.args[epochArg + 1].split(",");
const spinning = arg("spinning", "true") !== "false";
const batch = 128;

const loadavg = (): number => {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
};
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

function syntheticBatch(): LabelledBatch {
  const rng = new Prng(1);
  const x = new Float32Array(batch * 784);
  rng.fillNormal(x);
  const y = new Int32Array(batch);
  for (let i = 0; i < batch; i++) y[i] = rng.nextInt(10);
  return { x: new Tensor<"float32">(x, [batch, 1, 28, 28]), labels: new Tensor<"int32">(y, [batch]) };
}

/** The SGD (momentum, Nesterov, weight decay) update of every parameter as one ONNX graph. */
function sgdGraph(params: Map<string, Float32Array>): OnnxModel {
  const p = emptyModel(17);
  const g = p.graph;
  const f = (name: string, n: number) => ({ name, type: { tensorType: { elemType: 1, shape: [{ value: n }] } } });
  const scalar = (name: string, v: number) => ({
    name,
    dataType: 1,
    dims: [],
    rawData: new Uint8Array(new Float32Array([v]).buffer),
  });
  g.initializer.push(scalar("lr", 0.05), scalar("mu", 0.9), scalar("wd", 5e-4));
  let k = 0;
  for (const [name, v] of params) {
    const P = `p${k}`, G = `g${k}`, B = `b${k}`;
    g.input.push(f(P, v.length), f(G, v.length), f(B, v.length));
    const node = (op: string, ins: string[], out: string) =>
      g.node.push({ input: ins, output: [out], name: `${op}_${out}`, opType: op, domain: "", attribute: [] });
    node("Mul", [P, "wd"], `wdp${k}`);
    node("Add", [G, `wdp${k}`], `d${k}`);
    node("Mul", [B, "mu"], `mb${k}`);
    node("Add", [`mb${k}`, `d${k}`], `nb${k}`);
    node("Mul", [`nb${k}`, "mu"], `mnb${k}`);
    node("Add", [`d${k}`, `mnb${k}`], `step${k}`);
    node("Mul", [`step${k}`, "lr"], `lrs${k}`);
    node("Sub", [P, `lrs${k}`], `np${k}`);
    g.output.push(f(`np${k}`, v.length), f(`nb${k}`, v.length));
    k++;
    void name;
  }
  return OnnxModel.fromProto(p, "sgd-update");
}

/** PyTorch in serve mode: one JSON command per line, one JSON answer per line. */
class TorchPeer {
  #child: Deno.ChildProcess;
  #w: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  version = "";

  constructor() {
    this.#child = new Deno.Command(referencePython(), {
      args: [new URL("./train_step_peer.py", import.meta.url).pathname],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      env: { OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) },
    }).spawn();
    this.#w = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())[
      Symbol.asyncIterator
    ]();
  }

  async ask<T>(cmd: unknown): Promise<T> {
    await this.#w.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
    const r = await this.#lines.next();
    if (r.done) throw new Error("PyTorch peer exited");
    return JSON.parse(r.value) as T;
  }

  async start(): Promise<void> {
    this.version = (await this.ask<{ torch: string }>({ serve: true, threads, batch })).torch;
  }

  async close(): Promise<void> {
    await this.#w.write(new TextEncoder().encode(JSON.stringify({ cmd: "quit" }) + "\n"));
    await this.#w.close();
    await this.#child.status;
  }
}

function splitLines(): TransformStream<string, string> {
  let buf = "";
  return new TransformStream({
    transform(chunk, ctl) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        ctl.enqueue(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    },
    flush(ctl) {
      if (buf) ctl.enqueue(buf);
    },
  });
}

async function updateInGraph(params: Map<string, Float32Array>): Promise<{ tsMs: number; graphMs: number }> {
  const grads = new Map([...params].map(([k, v]) => [k, v.map((_, i) => Math.sin(i))]));
  const opt = sgd({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const ts: number[] = [];
  for (let i = 0; i < 25; i++) {
    const t0 = performance.now();
    opt.step(params, grads);
    ts.push(performance.now() - t0);
  }
  const s = await createSession(sgdGraph(params), { backend: "node", threads, cache: false });
  const feeds: Record<string, Tensor> = {};
  let k = 0;
  for (const [name, v] of params) {
    feeds[`p${k}`] = new Tensor(v, [v.length]);
    feeds[`g${k}`] = new Tensor(grads.get(name)!, [v.length]);
    feeds[`b${k}`] = new Tensor(new Float32Array(v.length), [v.length]);
    k++;
  }
  const gr: number[] = [];
  for (let i = 0; i < 25; i++) {
    const t0 = performance.now();
    const out = await s.run(feeds);
    // Results must go back into the parameter arrays the training graph reads.
    k = 0;
    for (const [, v] of params) v.set(out[`np${k++}`].data as Float32Array);
    gr.push(performance.now() - t0);
  }
  await s.release();
  return { tsMs: median(ts.slice(5)), graphMs: median(gr.slice(5)) };
}

const b = syntheticBatch();
const engines = ["torch", ...backends] as const;
const trainers = new Map<string, Trainer>();
for (const be of backends) {
  trainers.set(
    be,
    await Trainer.create({
      model: resnet8({ seed: 0 }),
      optimizer: sgd({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }),
      sample: b,
      session: { backend: be, threads: be === "web" ? webThreads : threads, spinning },
    }),
  );
}
const torch = new TorchPeer();
await torch.start();
await torch.ask({ cmd: "steps", n: warmup });
for (const t of trainers.values()) for (let i = 0; i < warmup; i++) await t.step(b);

type Row = {
  round: number;
  load: number;
  ms: Record<string, number>;
  all: Record<string, number[]>;
  accuracy?: Record<string, number>;
};
const stepRows: Row[] = [];
for (let r = 0; r < rounds; r++) {
  const row: Row = { round: r + 1, load: loadavg(), ms: {}, all: {} };
  const tr = await torch.ask<{ step_all_ms: number[] }>({ cmd: "steps", n: steps });
  row.all.torch = tr.step_all_ms;
  for (const [be, t] of trainers) {
    const all: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await t.step(b);
      all.push(performance.now() - t0);
    }
    row.all[be] = all;
  }
  for (const e of engines) row.ms[e] = median(row.all[e]);
  stepRows.push(row);
  console.error(`steps round ${r + 1}: ${engines.map((e) => `${e} ${row.ms[e].toFixed(0)} ms`).join(", ")}`);
}

const epochRows: Row[] = [];
if (epochBackends.length) {
  const train: ImageDataset = await loadFashionMnist("train");
  const test: ImageDataset = await loadFashionMnist("test");
  for (let r = 0; r < rounds; r++) {
    const row: Row = { round: r + 1, load: loadavg(), ms: {}, all: {}, accuracy: {} };
    const te = await torch.ask<{ epoch_s: number; test_accuracy: number }>({ cmd: "epoch", seed: 100 + r });
    row.ms.torch = 1000 * te.epoch_s;
    row.accuracy!.torch = te.test_accuracy;
    for (const be of epochBackends) {
      const t0 = performance.now();
      await trainers.get(be)!.fit({ train, epochs: 1, batchSize: batch, seed: 100 + r, progress: "none" });
      row.ms[be] = performance.now() - t0;
      row.accuracy![be] = (await trainers.get(be)!.evaluate(test)).accuracy;
    }
    epochRows.push(row);
    console.error(
      `epoch round ${r + 1}: ${
        ["torch", ...epochBackends].map((e) =>
          `${e} ${(row.ms[e] / 1000).toFixed(1)} s, test ${(100 * row.accuracy![e]).toFixed(2)} %`
        )
      }`,
    );
  }
}
await torch.close();
const upd = await updateInGraph(trainers.get(backends[0])!.params);
for (const t of trainers.values()) await t.release();

function table(
  title: string,
  rows: Row[],
  names: readonly string[],
  unit: "ms" | "s",
  targets: Record<string, number>,
) {
  const f = (v: number) => unit === "s" ? (v / 1000).toFixed(1) : v.toFixed(1);
  const others = names.filter((n) => n !== "torch");
  console.log(`\n${title}\n`);
  console.log(
    `| round | load (1 min) | PyTorch ${unit} | ${others.map((n) => `${n} ${unit} | ${n} ratio`).join(" | ")} |`,
  );
  console.log(`|---:|---:|---:|${others.map(() => "---:|---:").join("|")}|`);
  for (const r of rows) {
    console.log(
      `| ${r.round} | ${r.load.toFixed(2)} | ${f(r.ms.torch)} | ${
        others.map((n) => `${f(r.ms[n])} | ${(r.ms[n] / r.ms.torch).toFixed(2)}x`).join(" | ")
      } |`,
    );
  }
  for (const n of others) {
    const ratios = rows.map((r) => r.ms[n] / r.ms.torch);
    const med = median(ratios);
    const target = targets[n];
    console.log(
      `- ${n}: median ratio ${med.toFixed(2)}x (range ${Math.min(...ratios).toFixed(2)}-${
        Math.max(...ratios).toFixed(2)
      }x over ${rows.length} rounds), median ${f(median(rows.map((r) => r.ms[n])))} ${unit} vs PyTorch ${
        f(median(rows.map((r) => r.ms.torch)))
      } ${unit}${target ? `; target <= ${target}x: ${med <= target ? "met" : "MISSED"}` : ""}`,
    );
  }
}

console.log(
  `ResNet-8 (77,754 parameters), batch ${batch}, PyTorch ${torch.version} and onnxruntime-node on ${threads} threads, ` +
    `onnxruntime-web on ${webThreads}; ${rounds} interleaved rounds`,
);
table(`Step (median of ${steps} steps per block, synthetic batch)`, stepRows, engines, "ms", { node: 1.3 });
if (epochRows.length) {
  table("Full epoch (60,000 images, 469 steps)", epochRows, ["torch", ...epochBackends], "s", { node: 1.5, web: 3 });
  console.log(`\nTest accuracy (10,000 images) after each epoch (training continues across rounds)\n`);
  const names = ["torch", ...epochBackends];
  console.log(`| epoch | ${names.map((n) => n === "torch" ? "PyTorch" : n).join(" | ")} |`);
  console.log(`|---:|${names.map(() => "---:").join("|")}|`);
  for (const r of epochRows) {
    console.log(`| ${r.round} | ${names.map((n) => (100 * r.accuracy![n]).toFixed(2)).join(" | ")} |`);
  }
}
console.log(
  `\nSGD update of all parameters: TypeScript ${upd.tsMs.toFixed(2)} ms, as an ONNX graph on onnxruntime-node ` +
    `(feeds + run + copy back) ${upd.graphMs.toFixed(2)} ms`,
);
