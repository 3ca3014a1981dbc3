/**
 * AdaRound vs AdaQuant vs BRECQ block reconstruction (and round-to-nearest) on the Fashion-MNIST ResNet-8 reference:
 * per-channel symmetric weights, uint8 asymmetric activations (placement as ORT), BN folded, calibration on the first
 * training images, accuracy on the test split, wall time of each pass. JSON to stdout (and to `--out`).
 *
 *   nice -n 10 deno run -A benchmarks/reconstruction_resnet8.ts --bits 4,3,2 --test 10000 \
 *     [--methods adaround,adaquant,brecq] [--out benchmarks/reconstruction_resnet8.json]
 *
 * Presets: `adaRound({ preset: "small" })`, `adaQuant({ preset: "small" })`, `brecq({ preset: "small" })` (see
 * lib/adaround/*.ts; none is the paper's full setting).
 *
 * @module
 */
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { subset } from "../lib/data/batching.ts";
import { loadExperimentModel } from "../lib/experiments/ptq_onnx.ts";
import { evaluateAccuracy } from "../lib/ptq/evaluate.ts";
import type { PtqPass } from "../lib/ptq/pass.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { quantizer } from "../lib/quant/quantizer.ts";
import { adaRound } from "../lib/adaround/adaround_pass.ts";
import { adaQuant } from "../lib/adaround/adaquant.ts";
import { brecq } from "../lib/adaround/brecq.ts";

const args: Record<string, string | undefined> = {};
for (let i = 0; i < Deno.args.length; i += 2) args[Deno.args[i].replace(/^--/, "")] = Deno.args[i + 1];
const bitsList = (args.bits ?? "4,3,2").split(",").map(Number);
const testCount = Number(args.test ?? 10000);
const methods = (args.methods ?? "adaround,adaquant,brecq").split(",");
const session = { backend: "node" as const };
const passes: Record<string, () => PtqPass> = {
  adaround: () => adaRound({ preset: "small", seed: 0 }),
  adaquant: () => adaQuant({ preset: "small", seed: 0 }),
  brecq: () => brecq({ preset: "small", seed: 0 }),
};

const { model } = await loadExperimentModel();
const train = await loadFashionMnist("train");
const test = subset(await loadFashionMnist("test"), 0, testCount);
const calib = subset(train, 0, 2048);
const floatAcc = (await evaluateAccuracy(model, test, session)).top1;
const rows: Record<string, unknown>[] = [];
for (const bits of bitsList) {
  const base = ptq(model)
    .weights(quantizer().int(bits).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric())
    .session(session)
    .calibrateOn(calib, { count: 512 });
  let t0 = performance.now();
  const nearest = await base.quantize();
  const row: Record<string, unknown> = {
    setting: `W${bits}A8`,
    float: floatAcc,
    nearest: (await evaluateAccuracy(nearest.qdq, test, session)).top1,
    nearestSeconds: (performance.now() - t0) / 1000,
  };
  for (const m of methods) {
    const pass = passes[m]();
    t0 = performance.now();
    const q = await base.use(pass).quantize();
    const seconds = (performance.now() - t0) / 1000;
    const rec = q.state.records.find((r) => r.pass === pass.name)!;
    row[m] = {
      accuracy: (await evaluateAccuracy(q.qdq, test, session)).top1,
      seconds,
      passSeconds: rec.seconds,
      summary: rec.summary,
      pass: pass.toString(),
    };
    console.error(`W${bits}A8 ${m}: ${JSON.stringify(row[m])}`);
  }
  rows.push(row);
  console.error(JSON.stringify({ setting: row.setting, float: row.float, nearest: row.nearest }));
}
const out = JSON.stringify({ model: "resnet8_fashion", testImages: test.count, rows }, null, 1);
if (args.out) await Deno.writeTextFile(args.out, out);
console.log(out);
