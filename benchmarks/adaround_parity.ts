/**
 * Parity and speed of quantlab's AdaRound (lib/adaround) against a PyTorch reimplementation
 * (benchmarks/adaround_parity.py) on the Fashion-MNIST ResNet-8 (datasets/models/resnet8_fashion.onnx), issue 11.
 *
 * Both sides get the same inputs, written here from quantlab's calibrated state: the BN-folded float model
 * (`state.model`, which the PyTorch side builds with onnx.numpy_helper), the plan's fitted weight quantizers (int-b
 * symmetric restricted per channel: scale, zero point, grid per tensor), the plan's calibrated activation parameters
 * (uint8 asymmetric, used only for the test evaluation: AdaRound itself runs with activation quantizers off, as
 * AIMET), the bias plan (int32 grid at s_x s_w), the 512 normalised calibration images AdaRound caches (the first 512
 * training images, as `limitedBatches` takes them), the 10,000 normalised test images, the layer order and each
 * layer's following activation, and the exact batch index sequence of every layer (quantlab's seeded `Prng(seed + k)`
 * partial Fisher-Yates draws, replayed here), so the only differences left are floating point (ORT kernels vs torch)
 * and what they propagate to later layers.
 *
 * For every bit width the script times quantlab's AdaRound pass (`record.seconds`, activation caching included) and
 * then the PyTorch run (caching and optimisation of all layers, evaluation excluded), one after the other in the same
 * process tree, both with 2 intra-op threads, and records the 1-minute load average before and after each.
 *
 * ```sh
 * nice -n 10 deno run -A --lock=deno.lock benchmarks/adaround_parity.ts [--bits 4,3] [--iterations 2000]
 *   [--samples 512] [--seed 0] [--test 10000] [--out benchmarks/adaround_parity] [--keep]
 * ```
 *
 * Writes `<out>.md` and `<out>.json`.
 *
 * @module
 */
import { batches, subset } from "../lib/data/batching.ts";
import { loadExperimentModel, loadFashionOrNote } from "../lib/experiments/ptq_onnx.ts";
import { evaluateAccuracy } from "../lib/ptq/evaluate.ts";
import { fitPlannedWeights } from "../lib/ptq/materialize.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { quantizer } from "../lib/quant/quantizer.ts";
import { adaRound, type AdaRoundDetails } from "../lib/adaround/adaround_pass.ts";
import { Prng } from "../lib/tensor/prng.ts";
import type { ImageDataset } from "../lib/data/batching.ts";

const args = Deno.args;
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const BITS = arg("bits", "4,3").split(",").map(Number);
const ITER = Number(arg("iterations", "2000")), SAMPLES = Number(arg("samples", "512"));
const SEED = Number(arg("seed", "0")), TEST = Number(arg("test", "10000")), BATCH = 32;
const OUT = arg("out", "benchmarks/adaround_parity");
const THREADS = 2;
const S = { backend: "node" as const, threads: THREADS };

const data = await loadFashionOrNote();
if ("note" in data) throw new Error(data.note);
const { model } = await loadExperimentModel();
const calib = subset(data.train, 0, 2048), test = subset(data.test, 0, TEST);
const dir = await Deno.makeTempDir({ prefix: "adaround_parity_" });

async function dumpImages(name: string, ds: ImageDataset) {
  const parts: Float32Array[] = [];
  for (const b of batches(ds, { batchSize: 1000 })) parts.push(b.x.data as Float32Array);
  const n = parts.reduce((a, p) => a + p.length, 0), all = new Float32Array(n);
  let o = 0;
  for (const p of parts) all.set(p, o), o += p.length;
  await Deno.writeFile(`${dir}/${name}_x.f32`, new Uint8Array(all.buffer));
  await Deno.writeFile(`${dir}/${name}_y.i32`, new Uint8Array(Int32Array.from(ds.labels).buffer));
}
await dumpImages("calib", subset(calib, 0, SAMPLES));
await dumpImages("test", test);

/** quantlab's batch draws of one layer (optimize_layer.ts `drawBatch` with `Prng(seed)`), iterations x batch. */
function batchSequence(seed: number, count: number, iterations: number, bs: number): Int32Array {
  const rng = new Prng(seed), perm = Int32Array.from({ length: count }, (_, k) => k);
  const out = new Int32Array(iterations * bs);
  for (let it = 0; it < iterations; it++) {
    for (let k = 0; k < bs; k++) {
      const j = k + rng.nextInt(count - k);
      const t = perm[k];
      perm[k] = perm[j];
      perm[j] = t;
    }
    out.set(perm.subarray(0, bs), it * bs);
  }
  return out;
}

async function loadavg(): Promise<number> {
  return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
}

interface LayerRow {
  layer: string;
  weight: string;
  quantlab: { mseNearest: number; mseAdaRound: number; flipped: number; seconds: number };
  torch?: { mseNearest: number; mseAdaRound: number; flipped: number; seconds: number };
  codesAgree?: number;
}
interface Row {
  setting: string;
  float: number;
  quantlabNearest: number;
  quantlabAdaRound: number;
  torchNearest?: number;
  torchAdaRound?: number;
  quantlabSeconds: number;
  torchSeconds?: number;
  load: { quantlabBefore: number; quantlabAfter: number; torchBefore?: number; torchAfter?: number };
  layers: LayerRow[];
}
const rows: Row[] = [];
const floatAcc = 100 * (await evaluateAccuracy(model, test, S)).top1;
for (const bits of BITS) {
  const base = ptq(model).weights(quantizer().int(bits).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric()).session(S).calibrateOn(calib, { count: 512 });
  const state = await base.state();
  const nearest = await base.quantize();
  const quantlabNearest = 100 * (await evaluateAccuracy(nearest.qdq, test, S)).top1;
  const loadQ0 = await loadavg();
  const ada = await base.use(adaRound({ preset: "small", iterations: ITER, samples: SAMPLES, seed: SEED })).quantize();
  const loadQ1 = await loadavg();
  const rec = ada.state.records.find((r) => r.pass === "adaRound")!;
  const details = rec.details as AdaRoundDetails;
  const quantlabAdaRound = 100 * (await evaluateAccuracy(ada.qdq, test, S)).top1;
  const fits = fitPlannedWeights(state);
  const spec = {
    input: state.model.graph.input[0].name,
    bits,
    iterations: ITER,
    batch: BATCH,
    samples: SAMPLES,
    threads: THREADS,
    settings: details.settings,
    activations: state.plan!.activations.map((a) => {
      const q = state.activationParams.get(a.sharesWith ?? a.tensor)!;
      return { tensor: a.tensor, qmin: q.qmin, qmax: q.qmax, scale: q.scale[0], zeroPoint: q.zeroPoint[0] };
    }),
    weights: state.plan!.weights.map((w) => {
      const p = fits.get(w.tensor)!.affine!;
      return {
        tensor: w.tensor,
        node: w.node,
        axis: w.axis,
        qmin: p.qmin,
        qmax: p.qmax,
        scale: [...p.scale],
        zeroPoint: [...p.zeroPoint],
      };
    }),
    biases: state.plan!.biases.map((b) => ({ tensor: b.tensor, input: b.input, weight: b.weight })),
    layers: details.layers.map((l, k) => ({ node: l.layer, weight: l.weight, activation: l.activation, index: k })),
  };
  details.layers.forEach((_, k) => {
    const seq = batchSequence(SEED + k, SAMPLES, ITER, Math.min(BATCH, SAMPLES));
    Deno.writeFileSync(`${dir}/batches_${bits}_${k}.i32`, new Uint8Array(seq.buffer));
  });
  // quantlab's hard codes, so the PyTorch side can report how many agree.
  const codes: Record<string, number[]> = {};
  for (const l of details.layers) {
    const v = ada.state.weightValues.get(l.weight)!, p = fits.get(l.weight)!.affine!;
    const w = spec.weights.find((e) => e.tensor === l.weight)!;
    const inner = v.length / p.scale.length;
    codes[l.weight] = Array.from(v, (x, i) => Math.round(x / p.scale[w.axis === 0 ? Math.floor(i / inner) : 0]));
  }
  await Deno.writeTextFile(`${dir}/codes_${bits}.json`, JSON.stringify(codes));
  await Deno.writeTextFile(`${dir}/spec_${bits}.json`, JSON.stringify(spec));
  await Deno.writeFile(`${dir}/model_${bits}.onnx`, state.model.encode());
  const row: Row = {
    setting: `W${bits}A8`,
    float: floatAcc,
    quantlabNearest,
    quantlabAdaRound,
    quantlabSeconds: rec.seconds,
    load: { quantlabBefore: loadQ0, quantlabAfter: loadQ1 },
    layers: details.layers.map((l) => ({
      layer: l.layer,
      weight: l.weight,
      quantlab: { mseNearest: l.mseNearest, mseAdaRound: l.mseAdaRound, flipped: l.flipped, seconds: l.seconds },
    })),
  };
  console.error(
    `quantlab W${bits}A8: nearest ${quantlabNearest.toFixed(2)} %, AdaRound ${quantlabAdaRound.toFixed(2)} % in ${
      rec.seconds.toFixed(1)
    } s (load ${loadQ0} -> ${loadQ1})`,
  );
  row.load.torchBefore = await loadavg();
  const py = new Deno.Command("/usr/bin/python3", {
    args: ["benchmarks/adaround_parity.py", dir, String(bits)],
    stdout: "piped",
    stderr: "inherit",
  });
  const res = await py.output();
  row.load.torchAfter = await loadavg();
  if (!res.success) throw new Error(`adaround_parity.py failed for W${bits}A8`);
  const j = JSON.parse(new TextDecoder().decode(res.stdout).trim().split("\n").pop()!);
  row.torchNearest = 100 * j.nearest;
  row.torchAdaRound = 100 * j.adaround;
  row.torchSeconds = j.seconds;
  for (const l of row.layers) {
    const t = j.layers[l.weight];
    l.torch = { mseNearest: t.mseNearest, mseAdaRound: t.mseAdaRound, flipped: t.flipped, seconds: t.seconds };
    l.codesAgree = t.codesAgree;
  }
  console.error(
    `torch W${bits}A8: nearest ${row.torchNearest.toFixed(2)} %, AdaRound ${row.torchAdaRound.toFixed(2)} % in ${
      j.seconds.toFixed(1)
    } s (load ${row.load.torchBefore} -> ${row.load.torchAfter})`,
  );
  rows.push(row);
}
if (args.includes("--keep")) console.error(`kept ${dir}`);
else await Deno.remove(dir, { recursive: true });

const f2 = (x: number | undefined) => x === undefined ? "-" : x.toFixed(2);
const ratio = (l: LayerRow) => l.torch ? l.quantlab.mseAdaRound / l.torch.mseAdaRound : NaN;
const lines = [
  "# AdaRound parity: quantlab vs a PyTorch reimplementation (ResNet-8, Fashion-MNIST)",
  "",
  `Command: \`nice -n 10 deno run -A --lock=deno.lock benchmarks/adaround_parity.ts --bits ${BITS.join(",")} ` +
  `--iterations ${ITER} --samples ${SAMPLES} --seed ${SEED} --test ${TEST}\` (PyTorch side: ` +
  "`benchmarks/adaround_parity.py`, torch 1.13 CPU).",
  "",
  `Setting: BN-folded ResNet-8, weights int-b symmetric (restricted) per channel, activations uint8 asymmetric ` +
  `(calibrated on the first 512 training images), AdaRound with AIMET's objective and hyperparameters (reg 0.01, ` +
  `beta 20 -> 2 cosine, warm start 0.2, Adam lr 1e-3, batch ${BATCH}) but ${ITER} iterations per layer on ${SAMPLES} ` +
  "cached examples (quantlab's `small` preset size, not AIMET's 15,000 on 2,000); inputs from the weight-quantized " +
  "model so far, targets from float. Same folded weights, quantizer grids, activation grids, calibration images and " +
  "batch index sequence on both sides (written by quantlab, read by PyTorch). Test on " +
  `${TEST} images; float ${f2(floatAcc)} %.`,
  "",
  "| setting | quantlab nearest | PyTorch nearest | quantlab AdaRound | PyTorch AdaRound | difference | within 0.5 |",
  "|---|---|---|---|---|---|---|",
  ...rows.map((r) =>
    `| ${r.setting} | ${f2(r.quantlabNearest)} | ${f2(r.torchNearest)} | ${f2(r.quantlabAdaRound)} | ${
      f2(r.torchAdaRound)
    } | ${f2(r.quantlabAdaRound - r.torchAdaRound!)} | ${
      Math.abs(r.quantlabAdaRound - r.torchAdaRound!) <= 0.5 ? "yes" : "no"
    } |`
  ),
  "",
  "Per-layer reconstruction MSE (hard rounding, first 256 cached examples, mean over output elements):",
  "",
  "| setting | layer | nearest (quantlab / PyTorch) | AdaRound quantlab | AdaRound PyTorch | ratio | codes agree |",
  "|---|---|---|---|---|---|---|",
];
for (const r of rows) {
  for (const l of r.layers) {
    lines.push(
      `| ${r.setting} | ${l.layer} | ${l.quantlab.mseNearest.toPrecision(3)} / ${
        l.torch?.mseNearest.toPrecision(3)
      } | ${l.quantlab.mseAdaRound.toPrecision(4)} | ${l.torch?.mseAdaRound.toPrecision(4)} | ${
        ratio(l).toFixed(3)
      } | ${((l.codesAgree ?? NaN) * 100).toFixed(1)} % |`,
    );
  }
}
const maxDev = Math.max(...rows.flatMap((r) => r.layers.map((l) => Math.abs(ratio(l) - 1))));
lines.push(
  "",
  `Largest per-layer MSE deviation: ${(100 * maxDev).toFixed(1)} % (target <= 10 %: ${
    maxDev <= 0.1 ? "met" : "not met"
  }).`,
  "",
  `Time of the whole-model AdaRound (${THREADS} intra-op threads both sides, run one after the other; load = 1-minute ` +
    "load average before -> after, on 2 shared cores):",
  "",
  "| setting | quantlab s (ORT node) | load | PyTorch s | load | quantlab / PyTorch |",
  "|---|---|---|---|---|---|",
  ...rows.map((r) =>
    `| ${r.setting} | ${r.quantlabSeconds.toFixed(1)} | ${r.load.quantlabBefore} -> ${r.load.quantlabAfter} | ${
      r.torchSeconds?.toFixed(1)
    } | ${r.load.torchBefore} -> ${r.load.torchAfter} | ${(r.quantlabSeconds / r.torchSeconds!).toFixed(2)} |`
  ),
);
await Deno.writeTextFile(`${OUT}.md`, lines.join("\n") + "\n");
await Deno.writeTextFile(
  `${OUT}.json`,
  JSON.stringify({ iterations: ITER, samples: SAMPLES, seed: SEED, test: TEST, threads: THREADS, rows }, null, 1) +
    "\n",
);
console.log(lines.join("\n"));
