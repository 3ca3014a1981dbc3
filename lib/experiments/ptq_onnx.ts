/**
 * Experiment 08, post-training quantization of an ONNX model on ONNX Runtime: per-tensor vs per-channel weights
 * x min-max / percentile / KL (entropy) / MSE activation calibration at W8A8, W6A6 and W4A8 on a Fashion-MNIST
 * ResNet-8 (accuracy table and chart, per-layer SQNR chart), plus cross-layer equalization and empirical bias
 * correction rows at W4A8.
 *
 * The model is the trained reference `datasets/models/resnet8_fashion.onnx` when it is present, else the residual
 * test fixture `tests/fixtures/models/resnet8_op13.onnx` (both read with `fetch(new URL(..., import.meta.url))`),
 * or bytes passed as an option. Without Fashion-MNIST the experiment returns a report that says so.
 *
 * @module
 */
import { calibrate } from "../quant/calibrate/mod.ts";
import type { Calibrator } from "../quant/calibrate/observer.ts";
import { type ImageDataset, subset } from "../data/batching.ts";
import { loadFashionMnist } from "../data/fashion_mnist.ts";
import { QuantlabError } from "../errors.ts";
import { table } from "../notebook/table.ts";
import { progress } from "../notebook/progress.ts";
import { foldBatchNorm } from "../onnx/fold_bn.ts";
import { indexGraph } from "../onnx/graph.ts";
import { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { equalizeCrossLayer } from "../ptq/equalize.ts";
import { compareModels, evaluateAccuracy } from "../ptq/evaluate.ts";
import { ptq, type PtqModels } from "../ptq/pipeline.ts";
import type { QuantParams } from "../quant/params.ts";
import { quantizer } from "../quant/quantizer.ts";
import { dotPlotChart } from "../viz/charts.ts";
import type { Experiment, ExperimentOptions } from "./registry.ts";
import { Report } from "./report.ts";
import { compareByom, loadByom } from "./byom.ts";
import { fixed } from "./sources.ts";

/** Where the experiment's model came from. */
export interface LoadedModel {
  /** The decoded model. */
  readonly model: OnnxModel;
  /** A readable origin, e.g. `datasets/models/resnet8_fashion.onnx`. */
  readonly origin: string;
}

/** Candidate models, in order of preference, relative to this file. */
const MODEL_CANDIDATES = [
  ["../../datasets/models/resnet8_fashion.onnx", "datasets/models/resnet8_fashion.onnx (trained reference ResNet-8)"],
  ["../../tests/fixtures/models/resnet8_op13.onnx", "tests/fixtures/models/resnet8_op13.onnx (residual test fixture)"],
] as const;

/**
 * The Fashion-MNIST ResNet-8 for experiments 08 and 09: `bytes` when given, else the trained reference model when
 * it exists, else the residual test fixture. Throws `IO` when none can be read.
 *
 * @example
 * ```ts
 * import { loadExperimentModel } from "./ptq_onnx.ts";
 * const { model, origin } = await loadExperimentModel();
 * if (!model.graph.node.some((n) => n.opType === "Conv") || !origin.includes("resnet8")) throw new Error(origin);
 * ```
 */
export async function loadExperimentModel(bytes?: Uint8Array): Promise<LoadedModel> {
  if (bytes) return { model: OnnxModel.decode(bytes, "model bytes"), origin: "model bytes passed as an option" };
  const tried: string[] = [];
  for (const [rel, origin] of MODEL_CANDIDATES) {
    const url = new URL(rel, import.meta.url);
    try {
      const res = await fetch(url);
      if (!res.ok) {
        await res.body?.cancel();
        tried.push(`${url}: HTTP ${res.status}`);
        continue;
      }
      return { model: OnnxModel.decode(new Uint8Array(await res.arrayBuffer()), origin.split(" ")[0]), origin };
    } catch (e) {
      tried.push(`${url}: ${(e as Error).message}`);
    }
  }
  throw new QuantlabError("IO", `no experiment model could be read (${tried.join("; ")})`);
}

/**
 * Fashion-MNIST train and test splits, or the reason they could not be loaded.
 *
 * @example
 * ```ts ignore
 * import { loadFashionOrNote } from "./ptq_onnx.ts";
 * const data = await loadFashionOrNote(); // reads Fashion-MNIST when present
 * if ("note" in data) console.log(data.note);
 * else console.log(data.train.count, data.test.count); // 60000 10000
 * ```
 */
export async function loadFashionOrNote(): Promise<{ train: ImageDataset; test: ImageDataset } | { note: string }> {
  try {
    const [train, test] = await Promise.all([loadFashionMnist("train"), loadFashionMnist("test")]);
    return { train, test };
  } catch (e) {
    if (e instanceof QuantlabError && e.code === "DATASET") return { note: e.message };
    throw e;
  }
}

/** Options of experiments 08 and 09. */
export interface OnnxExperimentOptions extends ExperimentOptions {
  /** ONNX bytes of the model to quantize (default: see {@link loadExperimentModel}). */
  readonly model?: Uint8Array;
  /** ONNX Runtime binding (default native when it loads). */
  readonly session?: SessionOptions;
}

/**
 * A skipped report when Fashion-MNIST is missing.
 *
 * @example
 * ```ts
 * import { skippedReport } from "./ptq_onnx.ts";
 * const r = skippedReport("demo", "Demo", "a claim", "no data here");
 * const b = r.blocks[0];
 * if (r.id !== "demo" || b.kind !== "text" || !b.text.includes("no data here")) throw new Error("bad");
 * ```
 */
export function skippedReport(id: string, title: string, claim: string, note: string): Report {
  return new Report(id, title, claim).text(
    `Skipped: Fashion-MNIST is not available on this machine, so this experiment did not run. ${note}`,
  );
}

const CONFIGS = [
  { name: "W8A8", w: 8, a: 8 },
  { name: "W6A6", w: 6, a: 6 },
  { name: "W4A8", w: 4, a: 8 },
] as const;

/**
 * Run experiment 08 (see the module doc). Claims checked: per-channel weights beat per-tensor at 4 bits;
 * clipping calibrators beat min-max at low activation bits; W8A8 stays close to float; bias correction and
 * cross-layer equalization help per-tensor 4-bit weights.
 *
 * @example
 * ```ts ignore
 * import { ptqOnnxComparison } from "./ptq_onnx.ts";
 * const r = await ptqOnnxComparison({ quick: true, progress: "none" });
 * console.log(r.findingsText());
 * ```
 */
export async function ptqOnnxComparison(options: OnnxExperimentOptions = {}): Promise<Report> {
  const quick = options.quick ?? false;
  const title = "08 · PTQ of an ONNX model: granularity x calibration x bit width, CLE and bias correction";
  const claim = "Per-channel weight scales are the standard for conv weights, with a large gain over per-tensor at " +
    "4 bits; clipping calibrators (percentile, KL, MSE) beat min-max at low bit widths; 8-bit PTQ is nearly " +
    "lossless; bias correction and cross-layer equalization recover accuracy lost by low-bit per-tensor weights.";
  const data = await loadFashionOrNote();
  if ("note" in data) return skippedReport("ptq-onnx", title, claim, data.note);
  const session = { ...options.session };
  const { model: raw, origin } = await loadExperimentModel(options.model);
  const float = foldBatchNorm(raw).model;
  const calibCount = quick ? 256 : 512;
  const testCount = quick ? 500 : 1500;
  const bcCount = quick ? 250 : 500;
  const bs = 250;
  const test = subset(data.test, 0, testCount);
  const calibrators: { name: string; c: Calibrator }[] = [
    { name: "min-max", c: calibrate.minMax() },
    { name: "percentile 99.99", c: calibrate.percentile({ percentile: 99.99 }) },
    { name: "entropy (KL)", c: calibrate.entropy() },
    { name: "MSE-optimal", c: calibrate.mse() },
  ];
  const granularities = ["per-tensor", "per-channel"] as const;
  // float, the grid, per-layer SQNR (2 settings x 2 granularities), 4 methods x 2 granularities, BYOM.
  const total = 1 + CONFIGS.length * granularities.length * calibrators.length + 4 + 8 + 1;
  const p = progress(total, { label: "08 ptq onnx", sink: options.progress });
  const report = new Report("ptq-onnx", title, claim);
  const evalOpts = { ...session, batchSize: 500 };
  const floatAcc = await evaluateAccuracy(float, test, evalOpts);
  await p.tick(1, "float");
  report.text(
    `Model: ${origin}, BatchNorm folded (${float.graph.node.filter((n) => n.opType === "Conv").length} Conv, ` +
      `${float.graph.node.filter((n) => n.opType === "Gemm").length} Gemm). Calibration: the first ${calibCount} ` +
      `Fashion-MNIST training images; accuracy on the first ${testCount} test images (one image is ` +
      `${fixed(100 / testCount, 2)} points), run as QDQ models on onnxruntime-${floatAcc.backend}. Weights: ` +
      "signed symmetric (restricted range) min-max, per tensor or per output channel. Activations: unsigned " +
      "asymmetric per tensor, calibrated by each method; Conv outputs feeding a ReLU are quantized after it (fused).",
  );
  const actQ = (bits: number, c: Calibrator) => quantizer().uint(bits).asymmetric().calibrate(c);
  const weightQ = (bits: number, g: "per-tensor" | "per-channel") =>
    g === "per-channel" ? quantizer().int(bits).symmetric().perChannel() : quantizer().int(bits).symmetric();
  // One recipe, varied per row: calibration runs once per activation quantizer (cached by the core).
  const base = ptq(raw).session(session).batchSize(bs).calibrateOn(data.train, { count: calibCount });
  const runs = new Map<string, PtqModels>();
  const quantized = async (w: number, a: number, g: "per-tensor" | "per-channel", ci: number) => {
    const key = `${w}|${a}|${g}|${ci}`;
    let m = runs.get(key);
    if (!m) {
      m = await base.weights(weightQ(w, g)).activations(actQ(a, calibrators[ci].c)).quantize();
      runs.set(key, m);
    }
    return m;
  };
  const rows: { config: string; granularity: string; calibrator: string; top1: number }[] = [];
  for (const cfg of CONFIGS) {
    for (const g of granularities) {
      for (const [ci, c] of calibrators.entries()) {
        const q = await quantized(cfg.w, cfg.a, g, ci);
        const r = await evaluateAccuracy(q.qdq, test, evalOpts);
        rows.push({ config: cfg.name, granularity: g, calibrator: c.name, top1: r.top1 });
        await p.tick(1, `${cfg.name} ${g} ${c.name}`);
      }
    }
  }
  const acc = (cfg: string, g: string, c: string) =>
    rows.find((r) => r.config === cfg && r.granularity === g && r.calibrator === c)!.top1;
  report.table(
    "accuracy",
    table(
      CONFIGS.flatMap((cfg) =>
        granularities.map((g) => ({
          config: cfg.name,
          granularity: g,
          ...Object.fromEntries(calibrators.map((c) => [c.name, 100 * acc(cfg.name, g, c.name)])),
        }))
      ),
      {
        title: `Top-1 accuracy (%) of the QDQ model; float: ${fixed(100 * floatAcc.top1, 2)}%`,
        digits: 4,
        columns: [
          { key: "config", title: "bits" },
          { key: "granularity", title: "weights" },
          ...calibrators.map((c) => ({ key: c.name, title: `${c.name} (%)` })),
        ],
      },
    ),
  );
  report.chart(
    "accuracy",
    dotPlotChart(rows, {
      title: "Top-1 accuracy of PTQ by bit width, weight granularity and activation calibrator",
      subtitle: `Fashion-MNIST, ${testCount} test images (one image = ${fixed(100 / testCount, 2)} points); ` +
        "each panel has its own zoomed axis; dashed: float",
      x: { field: "top1", title: "test accuracy", format: ".1%" },
      y: { field: "calibrator", title: "activation calibrator", order: calibrators.map((c) => c.name) },
      color: { field: "granularity", title: "weights" },
      facet: { field: "config", title: "weight / activation bits", order: CONFIGS.map((c) => c.name) },
      reference: { value: floatAcc.top1, label: `float ${fixed(100 * floatAcc.top1, 2)}%` },
    }),
  );

  const input = [...indexGraph(float.graph).inputs][0], output = float.graph.output[0].name;
  const actParams = async (bits: number, ci: number) =>
    (await quantized(bits === 8 ? 8 : 4, bits, "per-channel", ci)).activationParams;
  const firstActivation = (await quantized(8, 8, "per-channel", 0)).plan.observed[1];
  const ranges = await Promise.all(calibrators.map(async (_, ci) => await actParams(8, ci)));
  const range = (p: QuantParams) => {
    const lo = (p.qmin - p.zeroPoint[0]) * p.scale[0], hi = (p.qmax - p.zeroPoint[0]) * p.scale[0];
    return `[${fixed(lo, 2)}, ${fixed(hi, 2)}]`;
  };
  report.table(
    "clipping",
    table(
      calibrators.map((c, ci) => ({
        calibrator: c.name,
        input: range(ranges[ci].get(input)!),
        first: range(ranges[ci].get(firstActivation)!),
        output: range(ranges[ci].get(output)!),
      })),
      {
        title: "8-bit activation ranges chosen by each calibrator: network input, first activation, logits",
        columns: [
          { key: "calibrator", title: "calibrator" },
          { key: "input", title: `input "${input}"` },
          { key: "first", title: `first activation "${firstActivation}"` },
          { key: "output", title: `logits "${output}"` },
        ],
      },
    ),
  );
  report.text(
    "The entropy (KL) calibrator histograms |x| and picks a symmetric threshold. The normalised input image is " +
      "mostly background at one value (-0.81 here) with the garments' pixels spread up to +2.02: the KL-optimal " +
      "threshold lands on the background spike and clips the foreground, which costs accuracy at every bit width. " +
      "KL calibration assumes bell-shaped activations; the network input is not one (ONNX Runtime's tool offers " +
      "to keep the input in float for this reason).",
  );

  // Per-layer SQNR at W8A8 and W4A8 (min-max, both granularities).
  const plan = (await quantized(8, 8, "per-channel", 0)).plan;
  const layers = plan.observed.filter((t) => float.graph.node.some((n) => n.output.includes(t)));
  const sqnrRows: { layer: number; name: string; config: string; sqnr: number }[] = [];
  const sqnrTest = subset(data.test, 0, quick ? 250 : 500);
  for (const cfg of [CONFIGS[0], CONFIGS[2]]) {
    for (const g of granularities) {
      const q = await quantized(cfg.w, cfg.a, g, 0);
      const cmp = await compareModels(float, q.qdq, sqnrTest, { ...evalOpts, layers });
      cmp.layerSqnr.forEach((l, i) =>
        sqnrRows.push({ layer: i + 1, name: l.name, config: `${cfg.name} ${g}`, sqnr: l.sqnrDb })
      );
      await p.tick(1, `SQNR ${cfg.name} ${g}`);
    }
  }
  report.chart(
    "layer-sqnr",
    dotPlotChart(sqnrRows, {
      title: "Per-layer SQNR of the quantized activations (min-max calibration)",
      subtitle: "float vs QDQ activations after each quantized op, in graph order (top first); higher is better",
      x: { field: "sqnr", title: "SQNR (dB)" },
      y: {
        field: "name",
        title: "quantized activation (graph order)",
        order: [...new Set(sqnrRows.map((r) => r.name))],
      },
      color: { field: "config", title: "bits, weights" },
    }),
  );

  report.table(
    "layer-sqnr",
    table(
      [...new Set(sqnrRows.map((r) => r.layer))].map((layer) => ({
        layer,
        name: sqnrRows.find((r) => r.layer === layer)!.name,
        ...Object.fromEntries(sqnrRows.filter((r) => r.layer === layer).map((r) => [r.config, r.sqnr])),
      })),
      { title: "Per-layer SQNR (dB)", digits: 3 },
    ),
  );

  // CLE and bias correction at W4A8 (min-max activations): passes on the same recipe.
  const eq = equalizeCrossLayer(float);
  const methodRows: { granularity: string; method: string; top1: number }[] = [];
  for (const g of granularities) {
    const w4 = base.weights(weightQ(4, g)).activations(actQ(8, calibrate.minMax()));
    const variants = [
      ["none", w4],
      ["bias correction", w4.biasCorrection({ count: bcCount })],
      ["CLE", w4.equalize()],
      ["CLE + bias correction", w4.equalize().biasCorrection({ count: bcCount })],
    ] as const;
    for (const [name, run] of variants) {
      const q = await run.quantize();
      methodRows.push({ granularity: g, method: name, top1: (await evaluateAccuracy(q.qdq, test, evalOpts)).top1 });
      await p.tick(1, `${g} ${name}`);
    }
  }
  const m4 = (g: string, m: string) => methodRows.find((r) => r.granularity === g && r.method === m)!.top1;
  report.text(
    `Cross-layer equalization rescaled ${eq.pairs.length} Conv-ReLU-Conv pairs (${
      eq.pairs.map((q) =>
        `${q.first.replace(/^Conv /, "")}: s in [${fixed(Math.min(...q.scales), 2)}, ${
          fixed(Math.max(...q.scales), 2)
        }]`
      ).join("; ")
    }); float outputs are unchanged. Bias correction used the first ${bcCount} calibration images.`,
  );
  report.table(
    "methods",
    table(
      granularities.map((g) => ({
        granularity: g,
        ...Object.fromEntries(methodRows.filter((r) => r.granularity === g).map((r) => [r.method, 100 * r.top1])),
      })),
      {
        title:
          "W4A8 top-1 accuracy (%) with cross-layer equalization and empirical bias correction (min-max activations)",
        digits: 4,
        columns: [
          { key: "granularity", title: "weights" },
          ...["none", "bias correction", "CLE", "CLE + bias correction"].map((k) => ({ key: k, title: `${k} (%)` })),
        ],
      },
    ),
  );
  report.chart(
    "methods",
    dotPlotChart(methodRows, {
      title: "W4A8: cross-layer equalization and bias correction",
      subtitle: `min-max activations, ${testCount} test images; dashed: float`,
      x: { field: "top1", title: "test accuracy", format: ".1%" },
      y: { field: "method", title: "method", order: ["none", "bias correction", "CLE", "CLE + bias correction"] },
      color: { field: "granularity", title: "weights" },
      reference: { value: floatAcc.top1, label: `float ${fixed(100 * floatAcc.top1, 2)}%` },
    }),
  );

  // Bring your own model: PyTorch's min-max PTQ of a network quantlab did not build, row by row.
  const byom = await loadByom();
  const byomRows = quick
    ? byom.reference.rows.filter((r) =>
      (r.weightBits === 8 && r.activationBits === 8 && r.weights === "per-channel") ||
      (r.weightBits === 4 && r.activationBits === 32 && r.weights === "per-tensor")
    )
    : byom.reference.rows;
  const parity = await compareByom(byom.folded, byom.reference, data.train, data.test, { session, rows: byomRows });
  await p.tick(1, "bring your own model");
  report.text(
    "Bring your own model: a residual Fashion-MNIST network trained and exported by PyTorch " +
      "(tests/fixtures/make_byom.py; BatchNorm folded by the exporter; its own normalisation (p/255 - 0.5) / 0.25), " +
      "quantized by PyTorch 1.13's observers and fake-quantizers following the procedure written in that script, " +
      "and by quantlab with a plan stating the same procedure. Top-1 on all 10,000 test images.",
  );
  report.table(
    "byom",
    table(
      parity.map((r) => ({
        setting: `W${r.weightBits}A${r.activationBits === 32 ? "32 (float)" : r.activationBits}`,
        weights: r.weights,
        pytorch: 100 * r.top1,
        quantlab: 100 * r.quantlab,
        diff: r.diff,
      })),
      {
        title: `PyTorch vs quantlab min-max PTQ (%), float ${fixed(100 * byom.reference.float, 2)}%`,
        digits: 4,
        columns: [
          { key: "setting", title: "bits" },
          { key: "weights", title: "weights" },
          { key: "pytorch", title: "PyTorch (%)" },
          { key: "quantlab", title: "quantlab (%)" },
          { key: "diff", title: "difference (points)" },
        ],
      },
    ),
  );
  const worstParity = Math.max(...parity.map((r) => Math.abs(r.diff)));
  report.finding(
    "quantlab's plan reproduces PyTorch's min-max PTQ of a model it did not build (within 0.3 points per row)",
    worstParity <= 0.3,
    `${parity.length} rows, largest difference ${fixed(worstParity, 2)} points on 10,000 test images`,
  );

  // Findings.
  const best = (cfg: string, g: string) => Math.max(...calibrators.map((c) => acc(cfg, g, c.name)));
  const pt4 = best("W4A8", "per-tensor"), pc4 = best("W4A8", "per-channel");
  report.finding(
    "Per-channel weight scales beat per-tensor at 4 bits",
    pc4 > pt4 + 0.005,
    `W4A8 best calibrator: per-channel ${fixed(100 * pc4, 2)}% vs per-tensor ${fixed(100 * pt4, 2)}% (float ${
      fixed(100 * floatAcc.top1, 2)
    }%); at W8A8 ${fixed(100 * best("W8A8", "per-channel"), 2)}% vs ${fixed(100 * best("W8A8", "per-tensor"), 2)}%`,
  );
  const w8mm = Math.min(...granularities.map((g) => acc("W8A8", g, "min-max")));
  const w8 = Math.min(...rows.filter((r) => r.config === "W8A8").map((r) => r.top1));
  report.finding(
    "8-bit PTQ (W8A8, min-max calibration) is within 1 point of float",
    floatAcc.top1 - w8mm <= 0.01,
    `W8A8 min-max: per-tensor ${fixed(100 * acc("W8A8", "per-tensor", "min-max"), 2)}%, per-channel ${
      fixed(100 * acc("W8A8", "per-channel", "min-max"), 2)
    }% vs float ${fixed(100 * floatAcc.top1, 2)}%; worst W8A8 over all calibrators ${fixed(100 * w8, 2)}% (${
      rows.filter((r) => r.config === "W8A8" && r.top1 === w8).map((r) => r.calibrator)[0]
    }): see the clipping table`,
  );
  const mm6 = acc("W6A6", "per-channel", "min-max");
  const clip6 = Math.max(...calibrators.slice(1).map((c) => acc("W6A6", "per-channel", c.name)));
  const bestClip = calibrators.slice(1).find((c) => acc("W6A6", "per-channel", c.name) === clip6)!.name;
  report.finding(
    "A clipping calibrator beats min-max at low activation bits (W6A6)",
    clip6 > mm6,
    `W6A6 per-channel: min-max ${fixed(100 * mm6, 2)}%, best clipping (${bestClip}) ${fixed(100 * clip6, 2)}%; ` +
      `per-tensor: min-max ${fixed(100 * acc("W6A6", "per-tensor", "min-max"), 2)}%, ${
        calibrators.slice(1).map((c) => `${c.name} ${fixed(100 * acc("W6A6", "per-tensor", c.name), 2)}%`).join(", ")
      }. Differences below ${fixed(100 / testCount * 3, 2)} points (3 images) are noise`,
  );
  report.finding(
    "Empirical bias correction recovers accuracy of 4-bit weights",
    m4("per-tensor", "bias correction") > m4("per-tensor", "none") &&
      m4("per-channel", "bias correction") >= m4("per-channel", "none") - 3 / testCount,
    `W4A8 per-tensor ${fixed(100 * m4("per-tensor", "none"), 2)}% -> ${
      fixed(100 * m4("per-tensor", "bias correction"), 2)
    }%, per-channel ${fixed(100 * m4("per-channel", "none"), 2)}% -> ${
      fixed(100 * m4("per-channel", "bias correction"), 2)
    }% (per-channel counts as kept when within 3 images)`,
  );
  report.finding(
    "Cross-layer equalization helps per-tensor 4-bit weights",
    m4("per-tensor", "CLE") > m4("per-tensor", "none") + 0.002,
    `W4A8 per-tensor ${fixed(100 * m4("per-tensor", "none"), 2)}% -> CLE ${
      fixed(100 * m4("per-tensor", "CLE"), 2)
    }%, ` +
      `CLE + bias correction ${fixed(100 * m4("per-tensor", "CLE + bias correction"), 2)}%; per-channel ${
        fixed(100 * m4("per-channel", "none"), 2)
      }% -> CLE ${fixed(100 * m4("per-channel", "CLE"), 2)}%. CLE can rescale only the ${eq.pairs.length} ` +
      "Conv-ReLU-Conv pairs inside the residual blocks (a ReLU output that also feeds a skip connection cannot be " +
      "rescaled); the paper's large gains are on depthwise MobileNets with extreme channel ranges",
  );
  report.record({
    floatTop1: floatAcc.top1,
    "w4.perChannel": pc4,
    "w4.perTensor": pt4,
    "w8.worst": w8,
    "w4.perTensor.bc": m4("per-tensor", "bias correction"),
    "w4.perTensor.none": m4("per-tensor", "none"),
    "w4.perTensor.cle": m4("per-tensor", "CLE"),
    "w4.perChannel.bc": m4("per-channel", "bias correction"),
    "w4.perChannel.none": m4("per-channel", "none"),
  });
  await report.prerender();
  await p.finish("done"); // 100 % when the charts are rendered too
  return report;
}

/**
 * Experiment 08 for the registry.
 *
 * @example
 * ```ts
 * import { ptqOnnxExperiment } from "./ptq_onnx.ts";
 * if (ptqOnnxExperiment.id !== "ptq-onnx" || typeof ptqOnnxExperiment.run !== "function") throw new Error("bad");
 * ```
 */
export const ptqOnnxExperiment: Experiment = {
  id: "ptq-onnx",
  title: "PTQ of an ONNX model on ONNX Runtime",
  section: "PTQ; granularity; range calibration; bias correction; cross-layer equalization",
  notebook: "notebooks/08_ptq_onnx.ipynb",
  run: ptqOnnxComparison,
};
