/**
 * AdaRound vs round-to-nearest (and stochastic rounding) on the Fashion-MNIST ResNet-8 reference, per-channel
 * symmetric weights, uint8 asymmetric activations (placement as ORT), BN folded, calibration on the first training
 * images. Writes JSON to stdout (and to `--out`).
 *
 *   deno run -A benchmarks/adaround_resnet8.ts --bits 4,3,2 --preset small [--iterations N] [--samples N]
 *     [--test 10000] [--stochastic 0] [--out reports/adaround_resnet8.json]
 *
 * @module
 */
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { subset } from "../lib/data/batching.ts";
import { loadExperimentModel } from "../lib/experiments/ptq_onnx.ts";
import { evaluateAccuracy } from "../lib/ptq/evaluate.ts";
import { materializeQdq } from "../lib/ptq/materialize.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { quantizer } from "../lib/quant/quantizer.ts";
import { adaRound, type AdaRoundDetails } from "../lib/adaround/adaround_pass.ts";
import { stochasticRoundingTrials } from "../lib/adaround/stochastic.ts";

const args: Record<string, string | undefined> = {};
for (let i = 0; i < Deno.args.length; i += 2) args[Deno.args[i].replace(/^--/, "")] = Deno.args[i + 1];
const bitsList = (args.bits ?? "4,3").split(",").map(Number);
const preset = (args.preset ?? "small") as "small" | "aimet";
const iterations = args.iterations ? Number(args.iterations) : undefined;
const samples = args.samples ? Number(args.samples) : undefined;
const testCount = Number(args.test ?? 10000);
const stochastic = Number(args.stochastic ?? 0);
const session = { backend: "node" as const };

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
  const nearestAcc = (await evaluateAccuracy(nearest.qdq, test, session)).top1;
  const nearestSec = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const ada = await base.use(adaRound({ preset, iterations, samples, seed: 0 })).quantize();
  const adaSec = (performance.now() - t0) / 1000;
  const adaAcc = (await evaluateAccuracy(ada.qdq, test, session)).top1;
  const details = ada.state.records.find((r) => r.pass === "adaRound")!.details as AdaRoundDetails;
  const row: Record<string, unknown> = {
    setting: `W${bits}A8`,
    float: floatAcc,
    nearest: nearestAcc,
    adaround: adaAcc,
    nearestSeconds: nearestSec,
    adaroundSeconds: adaSec,
    settings: details.settings,
    layers: details.layers.map((l) => ({
      layer: l.layer,
      activation: l.activation,
      mseNearest: l.mseNearest,
      mseAdaRound: l.mseAdaRound,
      flipped: l.flipped,
      undecided: l.undecided,
      seconds: l.seconds,
    })),
  };
  if (stochastic > 0) {
    t0 = performance.now();
    const state = await base.state();
    const trials = stochasticRoundingTrials(state, { draws: stochastic, seed: 0 });
    const accs: number[] = [];
    for (const t of trials) {
      accs.push((await evaluateAccuracy(materializeQdq(t).model, test, session)).top1);
    }
    const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
    const sd = Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, accs.length - 1));
    row.stochastic = { draws: stochastic, mean, sd, best: Math.max(...accs), worst: Math.min(...accs), accs };
    row.stochasticSeconds = (performance.now() - t0) / 1000;
  }
  rows.push(row);
  console.error(JSON.stringify({ ...row, layers: undefined }));
}
const out = JSON.stringify({ model: "resnet8_fashion", testImages: test.count, preset, rows }, null, 1);
if (args.out) await Deno.writeTextFile(args.out, out);
console.log(out);
