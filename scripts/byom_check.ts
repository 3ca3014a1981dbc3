/**
 * "Bring your own model" check (issue 10): quantlab's PTQ pipeline on a model it did not build, against the
 * PyTorch reference written by `tests/fixtures/make_byom.py` (`tests/fixtures/byom_reference.json`).
 *
 * - ORT runs `byom_folded.onnx` and `byom_bn.onnx` on the probe images and compares with PyTorch's logits;
 * - float accuracy of both files on the full test set (with the model's own normalisation, mean 0.5 std 0.25);
 * - each quantized row: `ptq(model).weights(int(b) symmetric per-channel|per-tensor).activations(uint(a)
 *   asymmetric).calibrateOn(first 1024 training images).batchSize(64)`, the QDQ model's top-1 on the 10,000
 *   test images, and its activation parameters against PyTorch's MinMaxObserver ones;
 * - the A32 rows (float activations): the same pipeline with no activation quantizer placed
 *   (`.placement(() => false).input(false).withPolicy({ outputs: false })`), so biases stay float too;
 * - W8A8 per-channel once more from `byom_bn.onnx` (quantlab folds the BatchNorms itself).
 *
 * Fails (exit 1) when a row differs from PyTorch by more than 0.3 points.
 *
 * Usage: `deno run -A scripts/byom_check.ts [--threads 2]`
 *
 * @module
 */
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { withNormalization } from "../lib/data/images.ts";
import { batches, type ImageDataset, subset } from "../lib/data/batching.ts";
import { OnnxModel } from "../lib/onnx/model.ts";
import { createSession } from "../lib/onnx/session.ts";
import { evaluateAccuracy } from "../lib/ptq/evaluate.ts";
import { ptq } from "../lib/ptq/pipeline.ts";
import { quantizer, type QuantizerBuilder } from "../lib/quant/quantizer.ts";

interface Row {
  weights: "per-channel" | "per-tensor";
  weightBits: number;
  activationBits: number;
  top1: number;
}
interface Reference {
  float: number;
  normalization: { mean: number; std: number };
  calibration: {
    count: number;
    batchSize: number;
    params: Record<string, Record<string, { point: string; scale: number; zeroPoint: number }>>;
  };
  rows: Row[];
  probe: { logits: number[][] };
}

const threadsArg = Deno.args.indexOf("--threads");
const threads = threadsArg >= 0 ? Number(Deno.args[threadsArg + 1]) : 2;
const session = { threads };
const ref: Reference = JSON.parse(await Deno.readTextFile("tests/fixtures/byom_reference.json"));
const folded = await OnnxModel.load("datasets/models/byom_folded.onnx");
const withBn = await OnnxModel.load("datasets/models/byom_bn.onnx");
const norm = { mean: ref.normalization.mean, std: ref.normalization.std };
const test: ImageDataset = withNormalization(await loadFashionMnist("test"), norm);
const train: ImageDataset = withNormalization(await loadFashionMnist("train"), norm);
const calib = subset(train, 0, ref.calibration.count);
const EVAL_BATCH = 500;

// 1. ORT vs PyTorch logits on the probe images.
const probeX = batches(test, { batchSize: ref.probe.logits.length, count: ref.probe.logits.length }).next().value!.x;
for (const [name, m] of [["byom_folded.onnx", folded], ["byom_bn.onnx", withBn]] as const) {
  const s = await createSession(m, session);
  const y = (await s.run({ [s.inputNames[0]]: probeX }))[s.outputNames[0]].data as Float32Array;
  let d = 0;
  ref.probe.logits.flat().forEach((v, i) => d = Math.max(d, Math.abs(v - y[i])));
  console.log(`${name}: max |ORT - PyTorch| logits over ${ref.probe.logits.length} images = ${d.toExponential(2)}`);
}

// 2. Float accuracy.
const floatFolded = (await evaluateAccuracy(folded, test, { ...session, batchSize: EVAL_BATCH })).top1;
const floatBn = (await evaluateAccuracy(withBn, test, { ...session, batchSize: EVAL_BATCH })).top1;
console.log(`float: PyTorch ${ref.float.toFixed(4)}  folded ${floatFolded.toFixed(4)}  bn ${floatBn.toFixed(4)}`);

const weightQ = (r: Row): QuantizerBuilder => {
  const q = quantizer().int(r.weightBits).symmetric();
  return r.weights === "per-channel" ? q.perChannel() : q.perTensor();
};

/** The pipeline of one row; A32 = no activation quantizers (input, activations, outputs all float). */
function pipeline(model: OnnxModel, r: Row) {
  let p = ptq(model).weights(weightQ(r));
  p = r.activationBits < 32
    ? p.activations(quantizer().uint(r.activationBits).asymmetric())
    : p.placement(() => false).input(false).withPolicy({ outputs: false });
  return p.calibrateOn(calib, { count: ref.calibration.count }).batchSize(ref.calibration.batchSize).session(session);
}

// 3. The rows.
const out: (Row & { quantlab: number; diff: number; params?: string })[] = [];
for (const r of ref.rows) {
  let params: string | undefined;
  const q = await pipeline(folded, r).quantize();
  const top1 = (await evaluateAccuracy(q.qdq, test, { ...session, batchSize: EVAL_BATCH })).top1;
  if (r.activationBits < 32) {
    // Activation parameters against PyTorch's.
    const want = ref.calibration.params[String(r.activationBits)];
    let worst = 0, worstAt = "", zpOff = 0, missing = 0;
    for (const [t, w] of Object.entries(want)) {
      const p = q.activationParams.get(t);
      if (!p) {
        missing++;
        continue;
      }
      const d = Math.abs(p.scale[0] - w.scale) / w.scale;
      if (d > worst) [worst, worstAt] = [d, w.point];
      if (p.zeroPoint[0] !== w.zeroPoint) zpOff++;
    }
    const extra = [...q.activationParams.keys()].filter((t) => !(t in want) && !t.startsWith("/Flatten"));
    params =
      `act params: max rel scale diff ${worst.toExponential(1)}${
        worstAt ? ` (${worstAt})` : ""
      }, zero points differing ${zpOff}, ` +
      `missing ${missing}, extra [${extra.join(", ")}]`;
  } else {
    const qdqOps = new Set(q.qdq.graph.node.map((n) => n.opType));
    params = `activation params ${q.activationParams.size}, QuantizeLinear in graph: ${qdqOps.has("QuantizeLinear")}`;
  }
  const diff = 100 * (top1 - r.top1);
  out.push({ ...r, quantlab: top1, diff, params });
  const a = r.activationBits < 32 ? `A${r.activationBits}` : "A32";
  console.log(
    `W${r.weightBits}${a} ${r.weights.padEnd(11)} PyTorch ${r.top1.toFixed(4)}  quantlab ${top1.toFixed(4)}  ` +
      `diff ${diff >= 0 ? "+" : ""}${diff.toFixed(2)} pt${params ? `  (${params})` : ""}`,
  );
}

// 4. quantlab folds the BatchNorms itself.
{
  const r = ref.rows.find((x) => x.weightBits === 8 && x.activationBits === 8 && x.weights === "per-channel")!;
  const q = await pipeline(withBn, r).quantize();
  const top1 = (await evaluateAccuracy(q.qdq, test, { ...session, batchSize: EVAL_BATCH })).top1;
  console.log(`W8A8 per-channel from byom_bn.onnx (quantlab's BN folding): ${top1.toFixed(4)} vs PyTorch ${r.top1}`);
}

const bad = out.filter((r) => Math.abs(r.diff) > 0.3);
console.log(bad.length ? `${bad.length} row(s) differ by more than 0.3 points` : "all rows within 0.3 points");
if (bad.length) Deno.exit(1);
