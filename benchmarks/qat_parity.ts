/**
 * Parity of quantlab's LSQ QAT with a PyTorch reimplementation (benchmarks/qat_parity.py) on the Fashion-MNIST
 * ResNet-8 (datasets/models/resnet8_fashion.onnx), issue 12.
 *
 * Both sides start from the same BN-folded float weights (written here from quantlab's PTQ state; the PyTorch side
 * builds its network from that ONNX file with onnx.numpy_helper), the same quantization plan and starting steps
 * (quantlab's calibration: the PTQ scales, `from("ptq")`), the same normalised images in the same order (quantlab's
 * `epochOrder(count, seed, epoch)`, written here) and the same recipe: LSQ weights (per output channel) and LSQ
 * activations where the zero point allows it (STE at the calibrated parameters elsewhere: the network input, the
 * residual branches before their Add, the logits), biases fake-quantized to their int32 grid, first and last layers
 * at 8 bits, Adam, constant learning rate, batch 64. quantlab reports its exported QDQ model's accuracy, PyTorch
 * its fake-quantized model's.
 *
 * Reduced setting (2 loaded cores): a fixed training subset (the first `--train` images, default 10,000), `--epochs`
 * (default 1), the whole 10,000-image test set, 3 seeds (the seed only changes the data order).
 *
 * ```sh
 * nice -n 10 deno run -A --lock=deno.lock benchmarks/qat_parity.ts [--train 10000] [--epochs 1] [--seeds 0,1,2]
 *   [--bits 4,2] [--lr 0.001] [--out benchmarks/qat_parity] [--no-train: PTQ accuracies only] [--keep: keep the dump]
 * ```
 *
 * The committed run: `--train 2000 --epochs 1 --seeds 0,1,2` (PyTorch took 50-170 s per 2,000-image epoch on the
 * loaded machine, so 10,000 images x 3 seeds x 2 bit widths did not fit).
 *
 * Writes benchmarks/qat_parity.md (and a JSON beside it).
 *
 * @module
 */
import { batches, subset } from "../lib/data/batching.ts";
import { loadExperimentModel, loadFashionOrNote } from "../lib/experiments/ptq_onnx.ts";
import { epochOrder } from "../lib/grad/train_data.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { quantizer } from "../lib/quant/quantizer.ts";
import { qat } from "../lib/qat/mod.ts";
import { buildQatGraph } from "../lib/qat/qat.ts";
import { crossEntropyLoss } from "../lib/grad/losses.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const args = Deno.args;
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const TRAIN = Number(arg("train", "10000")), EPOCHS = Number(arg("epochs", "1"));
const SEEDS = arg("seeds", "0,1,2").split(",").map(Number);
const BITS = arg("bits", "4,2").split(",").map(Number);
const LR = Number(arg("lr", "0.001")), BATCH = 64;
const OUT = arg("out", "benchmarks/qat_parity");
// "all" (every tensor the default plan observes, residual branches included) or "weight-inputs" (the inputs of conv
// and linear layers only, as the LSQ and PACT papers quantize and notebook 12 does).
const PLACEMENT = arg("placement", "all") as "all" | "weight-inputs";
const OMP = Deno.env.get("OMP_WAIT_POLICY");
const loadavg = () => Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
// Spinning off: the parity runs share the machine with other jobs (lib/onnx/session.ts SessionOptions.spinning).
const S = { backend: "node" as const, threads: 2, spinning: false };

const data = await loadFashionOrNote();
if ("note" in data) throw new Error(data.note);
const { model } = await loadExperimentModel();
const train = subset(data.train, 0, TRAIN), test = data.test;
const dir = await Deno.makeTempDir({ prefix: "qat_parity_" });

async function dumpImages(name: string, ds: typeof train) {
  const parts: Float32Array[] = [];
  for (const b of batches(ds, { batchSize: 1000 })) parts.push(b.x.data as Float32Array);
  const n = parts.reduce((a, p) => a + p.length, 0), all = new Float32Array(n);
  let o = 0;
  for (const p of parts) all.set(p, o), o += p.length;
  await Deno.writeFile(`${dir}/${name}_x.f32`, new Uint8Array(all.buffer));
  await Deno.writeFile(`${dir}/${name}_y.i32`, new Uint8Array(Int32Array.from(ds.labels).buffer));
}
await dumpImages("train", train);
await dumpImages("test", test);
for (const seed of SEEDS) {
  for (let e = 0; e < EPOCHS; e++) {
    await Deno.writeFile(`${dir}/order_${seed}_${e}.u32`, new Uint8Array(epochOrder(train.count, seed, e).buffer));
  }
}

interface Row {
  bits: number;
  seed: number;
  quantlab: number;
  torch?: number;
  quantlabSeconds: number;
  torchSeconds?: number;
  /** 1-minute load average before quantlab's run and before PyTorch's runs of this width. */
  load: number;
  torchLoad?: number;
}
const rows: Row[] = [];
const TRAIN_ONLY = args.includes("--no-train");
for (const bits of BITS) {
  const p = ptq(model).weights(quantizer().int(bits).symmetric().perChannel())
    .activations(quantizer().uint(bits).asymmetric()).firstLast(8).placement(PLACEMENT)
    .calibrateOn(train, { count: 512 }).session(S);
  const state = await p.state();
  // The plan, starting parameters and which activations LSQ can learn, as the training graph has them.
  const sample = batches(train, { batchSize: 2, count: 2 }).next().value!;
  const g = await buildQatGraph(state, { ...qat(p).recipe, weights: "lsq", activations: "lsq" }, {
    loss: crossEntropyLoss(state.model.graph.output[0].name, "labels"),
    feeds: { [state.model.graph.input[0].name]: sample.x, labels: new Tensor(new Int32Array(2), [2]) },
    session: S,
  });
  const spec = {
    input: state.model.graph.input[0].name,
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
    epochs: EPOCHS,
  };
  await Deno.writeTextFile(`${dir}/spec_${bits}.json`, JSON.stringify(spec));
  await Deno.writeFile(`${dir}/model_${bits}.onnx`, state.model.encode());
  if (TRAIN_ONLY) {
    const q = await p.quantize();
    const { evaluateModel } = await import("../lib/grad/train.ts");
    console.log(
      `PTQ W${bits}A${bits}: ${(100 * (await evaluateModel(q.qdq, test, { session: S })).accuracy).toFixed(2)}%`,
    );
    continue;
  }
  for (const seed of SEEDS) {
    const load = loadavg();
    const t0 = performance.now();
    const r = await qat(p).fakeQuant({ weights: "lsq", activations: "lsq" }).optimizer({ kind: "adam", lr: LR })
      .epochs(EPOCHS).batchSize(BATCH).seed(seed).train(train);
    const seconds = (performance.now() - t0) / 1000;
    const ev = await r.evaluate(test);
    rows.push({ bits, seed, quantlab: 100 * ev.qdq, quantlabSeconds: seconds, load });
    console.log(`quantlab W${bits}A${bits} seed ${seed}: ${(100 * ev.qdq).toFixed(2)}% (${seconds.toFixed(0)} s)`);
  }
  const torchLoad = loadavg();
  const py = new Deno.Command("/usr/bin/python3", {
    args: ["benchmarks/qat_parity.py", dir, String(bits), SEEDS.join(",")],
    stdout: "piped",
    stderr: "inherit",
  });
  const out = new TextDecoder().decode((await py.output()).stdout);
  for (const line of out.trim().split("\n")) {
    const j = JSON.parse(line);
    const row = rows.find((r) => r.bits === bits && r.seed === j.seed)!;
    row.torch = 100 * j.accuracy;
    row.torchSeconds = j.seconds;
    row.torchLoad = torchLoad;
    console.log(`torch W${bits}A${bits} seed ${j.seed}: ${(100 * j.accuracy).toFixed(2)}% (${j.seconds.toFixed(0)} s)`);
  }
}
if (args.includes("--keep")) console.log(`kept ${dir}`);
else await Deno.remove(dir, { recursive: true });

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const spread = (v: number[]) => Math.max(...v) - Math.min(...v);
const lines = [
  "# QAT parity: quantlab LSQ vs a PyTorch reimplementation (ResNet-8, Fashion-MNIST)",
  "",
  // The invocation as run (the OpenMP wait policy matters for PyTorch's time on a shared machine).
  `Command: \`${
    OMP ? `OMP_WAIT_POLICY=${OMP} ` : ""
  }deno run -A --lock=deno.lock benchmarks/qat_parity.ts --train ${TRAIN} ` +
  `--epochs ${EPOCHS} --seeds ${SEEDS.join(",")} --placement ${PLACEMENT}\` (PyTorch side: ` +
  `\`benchmarks/qat_parity.py\`, torch 1.13 CPU, 2 threads).`,
  "",
  `Setting (reduced for a loaded 2-core machine): the first ${TRAIN} Fashion-MNIST training images, ${EPOCHS} ` +
  `epoch(s), batch ${BATCH}, Adam lr ${LR} constant, LSQ weights (per channel) and activations, first/last layers ` +
  "8-bit, activation placement `" + PLACEMENT + "`, steps from quantlab's PTQ calibration (512 images), test on all " +
  "10,000 test images. Identical on both sides " +
  "(weights, plan, starting steps, normalised images and their order are written by quantlab and read by PyTorch).",
  "",
  "| bits | seed | quantlab (QDQ export) % | PyTorch % | quantlab s | PyTorch s | load (quantlab, PyTorch) |",
  "|---|---|---|---|---|---|---|",
  ...rows.map((r) =>
    `| W${r.bits}A${r.bits} | ${r.seed} | ${r.quantlab.toFixed(2)} | ${r.torch?.toFixed(2) ?? "-"} | ${
      r.quantlabSeconds.toFixed(0)
    } | ${r.torchSeconds?.toFixed(0) ?? "-"} | ${r.load.toFixed(1)}, ${r.torchLoad?.toFixed(1) ?? "-"} |`
  ),
  "",
  "| bits | quantlab mean | PyTorch mean | difference | larger 3-seed spread | target met |",
  "|---|---|---|---|---|---|",
];
for (const bits of BITS) {
  const rs = rows.filter((r) => r.bits === bits && r.torch !== undefined);
  const q = rs.map((r) => r.quantlab), t = rs.map((r) => r.torch!);
  const d = mean(q) - mean(t), sp = Math.max(spread(q), spread(t));
  const tol = Math.max(0.5, sp);
  lines.push(
    `| W${bits}A${bits} | ${mean(q).toFixed(2)} | ${mean(t).toFixed(2)} | ${d.toFixed(2)} | ${sp.toFixed(2)} | ${
      Math.abs(d) <= 0.5 ? "yes (within 0.5 points)" : Math.abs(d) <= tol ? "yes (within the spread)" : "no"
    } |`,
  );
}
lines.push(
  "",
  "Seconds are wall time of training (quantlab: onnxruntime-node, 2 threads, includes graph building; PyTorch: " +
    "2 threads) on a machine shared with other jobs (load in the table): not a speed benchmark.",
);
await Deno.writeTextFile(`${OUT}.md`, lines.join("\n") + "\n");
await Deno.writeTextFile(
  `${OUT}.json`,
  JSON.stringify({ train: TRAIN, epochs: EPOCHS, lr: LR, placement: PLACEMENT, rows }, null, 1) + "\n",
);
console.log(lines.join("\n"));
