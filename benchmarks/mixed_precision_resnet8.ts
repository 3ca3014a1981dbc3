/**
 * HAWQ on the Fashion-MNIST ResNet-8 (datasets/models/resnet8_fashion.onnx): Hessian-guided weight widths from the
 * exact integer program against uniform widths, random allocations at the same size and the same program with the
 * Hessian trace replaced by 1 (the quantization error alone), PTQ accuracy on the test set.
 *
 * Settings: weights int-b symmetric per-channel (min-max), activations uint8 asymmetric min-max, first and last
 * layers 8-bit, BN folded, calibration on 1,024 training images; candidates 2, 3, 4, 8 bits; the Hessian of the
 * mean cross-entropy over `--count` training images, Hutchinson with PyHessian's rule (tol 1e-3, <= 100 probes),
 * seed 0. Budgets: the weight size of uniform 3-bit, and HAWQ-v3's int4 + 0.25 (int8 - int4).
 *
 * Usage: `deno run -A benchmarks/mixed_precision_resnet8.ts [--count 256] [--seeds 20] [--test 10000]
 * [--bits 2,3,4,8] [--out benchmarks/mixed_precision_resnet8.md]` (about 5 minutes on 2 cores with the defaults).
 *
 * @module
 */
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { subset } from "../lib/data/batching.ts";
import { type HawqAnalysis, hawqAnalysis, type MixedAllocation } from "../lib/mixed/hawq.ts";
import { solveBitProblem } from "../lib/mixed/ilp.ts";
import { OnnxModel } from "../lib/onnx/model.ts";
import { evaluateAccuracy } from "../lib/ptq/evaluate.ts";
import { ptq, type PtqPipeline } from "../lib/ptq/pipeline.ts";
import { quantizer } from "../lib/quant/quantizer.ts";

const args: Record<string, string> = {
  count: "256",
  seeds: "20",
  test: "10000",
  out: "",
  iterations: "100",
  bits: "2,3,4,8",
};
for (let i = 0; i < Deno.args.length; i += 2) {
  const k = Deno.args[i].replace(/^--/, "");
  if (!(k in args) || Deno.args[i + 1] === undefined) throw new Error(`unknown or incomplete option ${Deno.args[i]}`);
  args[k] = Deno.args[i + 1];
}
const cand = args.bits.split(",").map(Number);
const count = Number(args.count), seeds = Number(args.seeds), testCount = Number(args.test);
const t0 = performance.now();
const log = (m: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}`);

const model = await OnnxModel.load(new URL("../datasets/models/resnet8_fashion.onnx", import.meta.url).pathname);
const train = await loadFashionMnist("train");
const testFull = await loadFashionMnist("test");
const test = subset(testFull, 0, Math.min(testCount, testFull.count));
const base: PtqPipeline = ptq(model)
  .weights(quantizer().int(8).symmetric().perChannel())
  .activations(quantizer().uint(8).asymmetric())
  .firstLast(8)
  .calibrateOn(train, { count: 1024 })
  .session({ backend: "node" });

let lastLog = 0;
const analysis: HawqAnalysis = await hawqAnalysis(base, train, {
  count,
  bits: args.bits.split(",").map(Number),
  trace: { seed: 0, maxIterations: Number(args.iterations) },
  onProgress: (m) => {
    if (performance.now() - lastLog > 15_000) (lastLog = performance.now()), log(m);
  },
});
const hessianSeconds = (performance.now() - t0) / 1000;
log(`traces done in ${hessianSeconds.toFixed(0)} s`);

async function accuracy(a: MixedAllocation): Promise<number> {
  const m = await a.apply(base).quantize();
  return (await evaluateAccuracy(m.qdq, test, { batchSize: 250, backend: "node" })).top1;
}

const floatTop1 = (await evaluateAccuracy(model, test, { batchSize: 250, backend: "node" })).top1;

/** The same program with every trace set to 1: sensitivity = ||Q(W) - W||^2 alone. */
async function noHessian(budget: number): Promise<MixedAllocation> {
  const p = analysis.problem({ size: budget });
  const flat = {
    ...p,
    layers: p.layers.map((l, k) => ({
      ...l,
      cost: l.bits.map((b) => analysis.layers[k].delta2[b]),
    })),
  };
  const s = await solveBitProblem(flat);
  return analysis.allocation({ ...s.bits }, "no-hessian");
}

interface Row {
  method: string;
  sizeBytes: number;
  omega: number;
  top1: number;
  bits: string;
}
const fmtBits = (a: MixedAllocation) => analysis.layers.map((l) => a.bits[l.node]).join("/");
const sections: { title: string; budget: number; rows: Row[]; random: number[] }[] = [];
for (
  const [title, budget, uniformBits] of [
    ["size of uniform 3-bit weights", analysis.usage(analysis.uniform(3)).size, 3],
    ["int4 + 0.25 (int8 - int4) (HAWQ-v3 alpha rule)", analysis.budgetAt("size", 4, 8, 0.25), 4],
  ] as const
) {
  const rows: Row[] = [];
  const add = async (a: MixedAllocation) => {
    const top1 = await accuracy(a);
    rows.push({ method: a.method, sizeBytes: a.usage.size, omega: a.objective, top1, bits: fmtBits(a) });
    log(`${title}: ${a.method} ${(100 * top1).toFixed(2)} % ${fmtBits(a)}`);
  };
  await add(await analysis.allocate({ size: budget }));
  await add(analysis.allocation(analysis.uniform(uniformBits), `uniform ${uniformBits}-bit`));
  await add(await noHessian(budget));
  const random: number[] = [];
  for (let s = 0; s < seeds; s++) {
    const a = analysis.random(s, { size: budget });
    await add(a);
    random.push(rows[rows.length - 1].top1);
  }
  sections.push({ title, budget, rows, random });
}

const pct = (x: number) => (100 * x).toFixed(2);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const lines: string[] = [
  "# HAWQ mixed precision on the Fashion-MNIST ResNet-8",
  "",
  `Command: \`deno run -A benchmarks/mixed_precision_resnet8.ts --count ${count} --seeds ${seeds} --test ${test.count}` +
  ` --iterations ${args.iterations} --bits ${args.bits}\``,
  "",
  `Float top-1 ${pct(floatTop1)} % on ${test.count} test images. Weights int-b symmetric per-channel (min-max), ` +
  "activations uint8 asymmetric min-max, first and last layers 8-bit (fixed), BN folded, calibration on 1,024 " +
  `training images. Hessian of the mean cross-entropy over ${count} training images, Hutchinson (Rademacher, joint ` +
  `probes, PyHessian rule tol 1e-3, <= ${args.iterations} probes, seed 0): ${hessianSeconds.toFixed(0)} s. ` +
  `Candidates ${args.bits} bits; ties ` + JSON.stringify(analysis.ties) + ". Size = weight codes, bytes.",
  "",
  "## Per-layer traces and sensitivities",
  "",
  `| layer | n | Tr/n | stderr/n | probes | converged | ${cand.map((b) => `Omega(${b})`).join(" | ")} |`,
  `|---|---|---|---|---|---|${cand.map(() => "---|").join("")}`,
  ...analysis.layers.map((l) =>
    `| ${l.node} | ${l.params} | ${l.trace.tracePerParam.toExponential(3)} | ${
      (l.trace.stderr / l.params).toExponential(1)
    } | ${l.trace.iterations} | ${l.trace.converged} | ${
      cand.map((b) => l.sensitivity[b] === undefined ? `fixed ${l.fixed}` : l.sensitivity[b].toExponential(2))
        .join(" | ")
    } |`
  ),
  "",
  `Bits are listed in layer order: ${analysis.layers.map((l) => l.node).join(", ")}.`,
];
for (const s of sections) {
  const [hawq, uniform, flat, ...rand] = s.rows;
  lines.push(
    "",
    `## Budget: ${s.title} = ${s.budget.toFixed(0)} bytes`,
    "",
    "| method | size (B) | Omega | top-1 % | bits |",
    "|---|---|---|---|---|",
    ...[hawq, uniform, flat].map((r) =>
      `| ${r.method} | ${r.sizeBytes.toFixed(0)} | ${r.omega.toExponential(3)} | ${pct(r.top1)} | ${r.bits} |`
    ),
    `| random (${rand.length} seeds): median / best / worst | | | ${pct(median(s.random))} / ${
      pct(Math.max(...s.random))
    } / ${pct(Math.min(...s.random))} | |`,
    "",
    `HAWQ - uniform: ${pct(hawq.top1 - uniform.top1)} points; HAWQ - median random: ${
      pct(hawq.top1 - median(s.random))
    } points; HAWQ beats ${s.random.filter((r) => hawq.top1 > r).length} of ${s.random.length} random allocations.`,
    "",
    "<details><summary>random allocations</summary>",
    "",
    "| seed | size (B) | Omega | top-1 % | bits |",
    "|---|---|---|---|---|",
    ...rand.map((r) =>
      `| ${r.method} | ${r.sizeBytes.toFixed(0)} | ${r.omega.toExponential(3)} | ${pct(r.top1)} | ${r.bits} |`
    ),
    "",
    "</details>",
  );
}
const md = lines.join("\n") + "\n";
console.log(md);
if (args.out) await Deno.writeTextFile(args.out, md);
log("done");
