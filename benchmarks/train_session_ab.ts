/**
 * Same-graph A/B of ONNX Runtime session settings for one ResNet-8 training step (batch 128, synthetic batch,
 * onnxruntime-node): blocked (NCHWc) convolutions for runtime weights on or off, intra-op threads, intra-op spinning,
 * and parallel execution of independent nodes on inter-op threads. All variants train the same model in one process; each round times a block of steps per variant in turn,
 * so load drifts hit all of them alike. Prints the median ms per step for each variant per round and overall, with
 * the load average at each round's start.
 *
 * Run: `deno run -A benchmarks/train_session_ab.ts [--steps 10] [--rounds 5] [--batch 128] [--only 0,1]` (`--only`:
 * indexes of the variants to run).
 *
 * @module
 */
import { Trainer } from "../lib/grad/train.ts";
import { sgd } from "../lib/grad/optim.ts";
import type { LabelledBatch } from "../lib/grad/train_data.ts";
import { resnet8 } from "../lib/models/resnet8.ts";
import type { SessionOptions } from "../lib/onnx/session.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const steps = Number(arg("steps", "10")), rounds = Number(arg("rounds", "5")), batch = Number(arg("batch", "128"));
const loadavg = (): number => Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const allVariants: [string, SessionOptions][] = [
  ["2 intra-op threads, spinning, blocked convs (default)", { threads: 2 }],
  ["2 intra-op threads, spinning, plain convs", { threads: 2, blockedConvolutions: false }],
  ["2 intra-op threads, no spinning", { threads: 2, spinning: false }],
  ["parallel, 2 inter-op x 1 intra-op", { threads: 1, interOpThreads: 2 }],
  ["parallel, 2 inter-op x 2 intra-op", { threads: 2, interOpThreads: 2 }],
  ["1 thread", { threads: 1 }],
];
const only = arg("only", "");
const variants = only ? only.split(",").map((i) => allVariants[Number(i)]) : allVariants;

const rng = new Prng(1);
const x = new Float32Array(batch * 784);
rng.fillNormal(x);
const y = new Int32Array(batch);
for (let i = 0; i < batch; i++) y[i] = rng.nextInt(10);
const b: LabelledBatch = {
  x: new Tensor<"float32">(x, [batch, 1, 28, 28]),
  labels: new Tensor<"int32">(y, [batch]),
};

const trainers: Trainer[] = [];
for (const [, session] of variants) {
  trainers.push(
    await Trainer.create({
      model: resnet8({ seed: 0 }),
      optimizer: sgd({ lr: 0.05, momentum: 0.9 }),
      sample: b,
      session: { backend: "node", ...session },
    }),
  );
}
for (const t of trainers) for (let i = 0; i < 3; i++) await t.step(b);
const all: number[][] = variants.map(() => []);
console.log(`| round | load | ${variants.map(([n]) => n).join(" | ")} |`);
console.log(`|---:|---:|${variants.map(() => "---:").join("|")}|`);
for (let r = 0; r < rounds; r++) {
  const load = loadavg();
  const meds: number[] = [];
  for (let v = 0; v < trainers.length; v++) {
    const ms: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await trainers[v].step(b);
      ms.push(performance.now() - t0);
    }
    all[v].push(...ms);
    meds.push(median(ms));
  }
  console.log(`| ${r + 1} | ${load.toFixed(2)} | ${meds.map((m) => m.toFixed(1)).join(" | ")} |`);
}
console.log(`| all | | ${all.map((ms) => median(ms).toFixed(1)).join(" | ")} |`);
for (const t of trainers) await t.release();
