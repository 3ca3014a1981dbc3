/**
 * Benchmark (issue 12): one W4A4 LSQ QAT epoch of the Fashion-MNIST ResNet-8 (datasets/models/resnet8_fashion.onnx)
 * on quantlab's `qat()` over onnxruntime-node against PyTorch 1.13 running the same recipe (benchmarks/qat_parity.py,
 * unchanged, run through benchmarks/qat_epoch_peer.py, which adds the CPU time of its timed loop and gives it the
 * thread count), both on `--threads` threads (default 2). Target: at most 1.5x PyTorch.
 *
 * Both sides train the same BN-folded weights with the same plan, starting steps, normalised images and order (written
 * here, read by PyTorch, as in benchmarks/qat_parity.ts): LSQ weights (per channel) and activations, first/last layers
 * 8-bit, Adam lr 0.001, batch `--batch` (default 128). On a shared machine a full epoch per side and round is too slow,
 * so each round trains `--steps` steps (default 100: the first steps x batch training images, one epoch of them in
 * quantlab's seeded order) on each side, back to back (the side going first alternates), and the epoch time is
 * extrapolated to 60,000 images (469 steps at batch 128) as time x 60000 / (steps x batch). Timed: quantlab's epoch
 * `seconds` from `onEpoch` (the training loop: batches, forward/backward, Adam, clamps; no graph building, no
 * evaluation); PyTorch's training-loop wall time as qat_parity.py reports it (no loading, no evaluation). The load
 * average (`/proc/loadavg`, 1 minute) is recorded at the start of every round.
 *
 * Profile: a copy of `qat()`'s training step (lib/qat/qat.ts `trainQat`) on the same graph (`buildQatGraph`), timed
 * by part for `--profile-steps` steps per round: data (`labelledBatch`), run (`GradientSession.run`: parameter feeds,
 * ONNX Runtime forward + backward), optimizer (Adam), clamps (weights to their grid, steps >= 1e-8).
 *
 * ```sh
 * nice -n 10 deno run -A --lock=deno.lock benchmarks/qat_epoch_peer.ts [--steps 100] [--rounds 3] [--batch 128]
 *   [--threads 2] [--profile-steps 30]
 * ```
 *
 * @module
 */
import { batches, subset } from "../lib/data/batching.ts";
import { normalizationTables } from "../lib/data/images.ts";
import { loadExperimentModel, loadFashionOrNote } from "../lib/experiments/ptq_onnx.ts";
import { crossEntropyLoss } from "../lib/grad/losses.ts";
import { adam } from "../lib/grad/optim.ts";
import { GradientSession } from "../lib/grad/session.ts";
import { epochOrder, labelledBatch } from "../lib/grad/train_data.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { buildQatGraph } from "../lib/qat/qat.ts";
import { qat } from "../lib/qat/mod.ts";
import { quantizer } from "../lib/quant/quantizer.ts";
import { clampToGrid } from "../lib/zeroshot/level2.ts";
import { referencePython } from "./peer_harness.ts";

const arg = (name: string, fallback: string): string => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
};
const STEPS = Number(arg("steps", "100")), ROUNDS = Number(arg("rounds", "3")), BATCH = Number(arg("batch", "128"));
const THREADS = Number(arg("threads", "2")), PROFILE_STEPS = Number(arg("profile-steps", "30"));
const LR = 0.001, EPOCH_IMAGES = 60000;
const S = { backend: "node" as const, threads: THREADS };

const loadavg = (): number => {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
};
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const data = await loadFashionOrNote();
if ("note" in data) throw new Error(data.note);
const { model } = await loadExperimentModel();
const N = Math.min(STEPS * BATCH, data.train.count);
const train = subset(data.train, 0, N), test = subset(data.test, 0, 500);
const dir = await Deno.makeTempDir({ prefix: "qat_epoch_peer_" });

async function dumpImages(name: string, ds: typeof train): Promise<void> {
  const parts: Float32Array[] = [];
  for (const b of batches(ds, { batchSize: 1000 })) parts.push(b.x.data as Float32Array);
  const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) all.set(p, o), o += p.length;
  await Deno.writeFile(`${dir}/${name}_x.f32`, new Uint8Array(all.buffer));
  await Deno.writeFile(`${dir}/${name}_y.i32`, new Uint8Array(Int32Array.from(ds.labels).buffer));
}
await dumpImages("train", train);
await dumpImages("test", test);
const seeds = Array.from({ length: ROUNDS }, (_, r) => 100 + r);
for (const seed of seeds) {
  await Deno.writeFile(`${dir}/order_${seed}_0.u32`, new Uint8Array(epochOrder(N, seed, 0).buffer));
}

// The W4A4 plan and starting steps (PTQ calibration on 512 training images), as in benchmarks/qat_parity.ts.
const p = ptq(model).weights(quantizer().int(4).symmetric().perChannel())
  .activations(quantizer().uint(4).asymmetric()).firstLast(8).calibrateOn(data.train, { count: 512 }).session(S);
const state = await p.state();
const recipe = { ...qat(p).recipe, weights: "lsq" as const, activations: "lsq" as const };
const sample = labelledBatch(train, epochOrder(N, seeds[0], 0).subarray(0, BATCH), normalizationTables(train));
const inputName = state.model.graph.input[0].name;
const g = await buildQatGraph(state, recipe, {
  loss: crossEntropyLoss(state.model.graph.output[0].name, "labels"),
  feeds: { [inputName]: sample.x, labels: sample.labels },
  session: S,
});
const spec = {
  input: inputName,
  activations: state.plan!.activations.map((a) => {
    const q = state.activationParams.get(a.sharesWith ?? a.tensor)!;
    return {
      tensor: a.tensor,
      sharesWith: a.sharesWith ?? null,
      kind: g.trainable.quantizerParams.get(a.tensor)?.kind ?? "ste",
      bits: q.bits,
      qmin: q.qmin,
      qmax: q.qmax,
      scale: q.scale[0],
      zeroPoint: q.zeroPoint[0],
    };
  }),
  weights: state.plan!.weights.map((w) => {
    const f = g.trainable.qdq.weightParams.get(w.tensor)!;
    return { tensor: w.tensor, bits: f.bits, steps: [...f.scale] };
  }),
  biases: state.plan!.biases.map((b) => ({ tensor: b.tensor, input: b.input, weight: b.weight })),
  lr: LR,
  batch: BATCH,
  epochs: 1,
};
await Deno.writeTextFile(`${dir}/spec_4.json`, JSON.stringify(spec));
await Deno.writeFile(`${dir}/model_4.onnx`, state.model.encode());

/** Process CPU seconds (user + system, all threads) of this process. */
function cpuSeconds(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function torchSeconds(seed: number): Promise<{ wall: number; cpu: number }> {
  const out = await new Deno.Command(referencePython(), {
    args: [new URL("./qat_epoch_peer.py", import.meta.url).pathname, dir, "4", String(seed)],
    stdout: "piped",
    stderr: "inherit",
    env: { OMP_NUM_THREADS: String(THREADS), MKL_NUM_THREADS: String(THREADS), QAT_PEER_THREADS: String(THREADS) },
  }).output();
  if (!out.success) throw new Error("qat_parity.py failed");
  const j = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  return { wall: j.seconds, cpu: j.cpu_seconds };
}

async function quantlabSeconds(seed: number): Promise<number> {
  let seconds = NaN;
  await qat(p).fakeQuant({ weights: "lsq", activations: "lsq" }).optimizer({ kind: "adam", lr: LR }).epochs(1)
    .batchSize(BATCH).seed(seed).onEpoch((e) => seconds = e.seconds).train(train);
  return seconds;
}

let blocked = 0;

/** `trainQat`'s step loop (lib/qat/qat.ts), timed by part. */
async function profile(seed: number): Promise<Record<string, number>> {
  const gs = await GradientSession.create(g.graph, { ...S, cache: false });
  blocked = gs.session.blockedConvolutions.length;
  const params = new Map([...g.params].map(([k, v]) => [k, v.slice()]));
  const opt = adam({ lr: LR });
  const stepParams = [...g.trainable.quantizerParams.values()].filter((q) => q.kind === "lsq").map((q) => q.param);
  const tables = normalizationTables(train), order = epochOrder(N, seed, 0);
  const t = { data: 0, run: 0, optimizer: 0, clamps: 0 };
  const c0 = cpuSeconds();
  try {
    for (let b = 0; b < Math.min(PROFILE_STEPS, STEPS); b++) {
      const t0 = performance.now();
      const idx = order.subarray(b * BATCH, Math.min(N, (b + 1) * BATCH));
      const batch = labelledBatch(train, idx, tables);
      const t1 = performance.now();
      const out = await gs.run({ [inputName]: batch.x, labels: batch.labels }, params);
      const t2 = performance.now();
      opt.step(params, out.grads);
      const t3 = performance.now();
      for (const [w, q] of g.trainable.weights) {
        const v = params.get(w);
        if (v) clampToGrid(v, q.dims, q.axis, q.params);
      }
      for (const s of stepParams) {
        const v = params.get(s)!;
        for (let i = 0; i < v.length; i++) if (!(v[i] >= 1e-8)) v[i] = 1e-8;
      }
      const t4 = performance.now();
      t.data += t1 - t0, t.run += t2 - t1, t.optimizer += t3 - t2, t.clamps += t4 - t3;
    }
  } finally {
    await gs.release();
  }
  const n = Math.min(PROFILE_STEPS, STEPS);
  const cpu = (cpuSeconds() - c0) * 1000 / n;
  return {
    cpu,
    data: t.data / n,
    run: t.run / n,
    optimizer: t.optimizer / n,
    clamps: t.clamps / n,
  };
}

// Warm-up: one short quantlab run (session creation, JIT) and nothing for PyTorch (its loading is not timed).
await qat(p).fakeQuant({ weights: "lsq", activations: "lsq" }).optimizer({ kind: "adam", lr: LR }).batchSize(BATCH)
  .train(subset(train, 0, Math.min(N, 4 * BATCH)));

interface Round {
  round: number;
  load: number;
  loadAfter: number;
  first: string;
  quantlab: number;
  torch: number;
  torchCpu: number;
  profile: Record<string, number>;
}
const rounds: Round[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const load = loadavg(), seed = seeds[r];
  let quantlab: number, t: { wall: number; cpu: number };
  if (r % 2 === 0) t = await torchSeconds(seed), quantlab = await quantlabSeconds(seed);
  else quantlab = await quantlabSeconds(seed), t = await torchSeconds(seed);
  const torch = t.wall, torchCpu = t.cpu;
  const prof = await profile(seed);
  rounds.push({
    round: r + 1,
    load,
    loadAfter: loadavg(),
    first: r % 2 === 0 ? "PyTorch" : "quantlab",
    quantlab,
    torch,
    torchCpu,
    profile: prof,
  });
  console.error(`round ${r + 1} (load ${load}): quantlab ${quantlab.toFixed(1)} s, PyTorch ${torch.toFixed(1)} s`);
}
await Deno.remove(dir, { recursive: true });

const ext = EPOCH_IMAGES / N;
const lines = [
  `W4A4 LSQ QAT, ResNet-8, Fashion-MNIST, batch ${BATCH}, Adam lr ${LR}, ${THREADS} threads on both sides ` +
  `(onnxruntime-node; PyTorch ${"1.13"} CPU); ${STEPS} steps (${N} images) per side and round, epoch = x${
    ext.toFixed(3)
  } (60,000 images)`,
  "",
  "| round | load (1 min) start/end | first | quantlab s | PyTorch s | quantlab epoch s (extrap.) | PyTorch epoch s " +
  "(extrap.) | ratio |",
  "|---:|---:|---|---:|---:|---:|---:|---:|",
  ...rounds.map((r) =>
    `| ${r.round} | ${r.load.toFixed(2)}/${r.loadAfter.toFixed(2)} | ${r.first} | ${r.quantlab.toFixed(1)} | ${
      r.torch.toFixed(1)
    } | ${(r.quantlab * ext).toFixed(0)} | ${(r.torch * ext).toFixed(0)} | ${(r.quantlab / r.torch).toFixed(2)}x |`
  ),
];
const ratios = rounds.map((r) => r.quantlab / r.torch), med = median(ratios);
lines.push(
  "",
  `Median ratio ${med.toFixed(2)}x (range ${Math.min(...ratios).toFixed(2)}-${
    Math.max(...ratios).toFixed(2)
  }x over ${ROUNDS} rounds); median epoch (extrapolated) quantlab ${
    (median(rounds.map((r) => r.quantlab)) * ext).toFixed(0)
  } s, PyTorch ${(median(rounds.map((r) => r.torch)) * ext).toFixed(0)} s; target <= 1.5x: ${
    med <= 1.5 ? "met" : "MISSED"
  }.`,
  "",
  `Profile of quantlab's step (copy of qat()'s loop, ms per step, ${Math.min(PROFILE_STEPS, STEPS)} steps per round; ` +
    `${blocked} convs of the QAT graph on blocked NCHWc kernels):`,
  "",
  "| round | data | run (feeds + ORT fwd/bwd) | optimizer (Adam) | clamps | total | quantlab CPU ms/step | " +
    "PyTorch CPU ms/step (its timed loop) |",
  "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...rounds.map((r) => {
    const v = r.profile, tot = v.data + v.run + v.optimizer + v.clamps;
    return `| ${r.round} | ${v.data.toFixed(1)} | ${v.run.toFixed(1)} | ${v.optimizer.toFixed(1)} | ${
      v.clamps.toFixed(1)
    } | ${tot.toFixed(1)} | ${v.cpu.toFixed(0)} | ${(1000 * r.torchCpu / STEPS).toFixed(0)} |`;
  }),
);
console.log(lines.join("\n"));
