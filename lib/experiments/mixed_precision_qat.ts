/**
 * Experiment 14, second part: quantization-aware training after bit allocation. Each equal-size allocation of the
 * mixed-precision comparison (mixed_precision.ts: HAWQ's integer program, uniform 3-bit and greedy by sensitivity at
 * the size of uniform 3-bit weights; HAWQ and uniform 4-bit at HAWQ-v3's size rule `int4 + 0.25 (int8 - int4)`)
 * is trained from its own PTQ state with one recipe: `qat(allocation.apply(base))`,
 * LSQ step sizes for weights and activations starting at the PTQ scales, Adam at a constant learning rate, the same
 * training images in the same seeded order, BN folded with its running statistics. The per-layer widths are the
 * plan's, so they hold in the training graph (LSQ grids of `2^b` levels per layer) and in the QDQ and QOperator
 * exports. Accuracies are the exported QDQ models' on the comparison's test images on ONNX Runtime's default session
 * (which fuses QDQ into integer kernels, as for the comparison's PTQ accuracies); beside them the training graph's
 * evaluation, the QDQ model with graph optimization `"basic"` (float QDQ arithmetic: equal to the training graph)
 * and the QOperator model's.
 *
 * Departures from HAWQ-v3's `quant_train.py` (SGD with momentum, lr 1e-4 decayed 10x every 30 epochs, BN fixed,
 * static activation ranges with momentum 0.99, up to 90 ImageNet epochs): LSQ (learned steps) instead of fixed
 * min-max scales, Adam, and a few hundred steps on Fashion-MNIST, the recipe of notebook 12.
 *
 * @module
 */
import { subset } from "../data/batching.ts";
import { QuantlabError } from "../errors.ts";
import { progress, type ProgressSink } from "../notebook/progress.ts";
import { table } from "../notebook/table.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { evaluateAccuracy } from "../ptq/evaluate.ts";
import { qat } from "../qat/qat.ts";
import { dotPlotChart } from "../viz/charts.ts";
import type { ComparedAllocation, MixedPrecisionComparison } from "./mixed_precision.ts";
import type { PaperReference, Report } from "./report.ts";

/** Options of {@link mixedPrecisionQat}. */
export interface MixedPrecisionQatOptions {
  /** Quick preset (default: the comparison's): 16 Adam steps of batch 32 per allocation. */
  readonly quick?: boolean;
  /** Adam steps per allocation (default quick 16, full 300). */
  readonly steps?: number;
  /** Batch size (default quick 32, full 64). */
  readonly batchSize?: number;
  /** Adam learning rate (default 5e-4). */
  readonly lr?: number;
  /**
   * Which equal-size comparison to train (default `"uniform-3-bit-size"`: HAWQ, uniform 3-bit and greedy at the size
   * of uniform 3-bit weights; `"hawq-v3-rule"`: HAWQ and uniform 4-bit at `int4 + 0.25 (int8 - int4)`). Each call
   * adds its own table, chart and finding, so a notebook can run the two in separate cells.
   */
  readonly budget?: QatBudget;
  /** Seed of the training order (default: the comparison's). */
  readonly seed?: number;
  /** Where progress goes (default `"auto"`). */
  readonly progress?: ProgressSink;
  /** ONNX Runtime options (default: the comparison's). */
  readonly session?: SessionOptions;
}

/** The two equal-size comparisons QAT after allocation runs. */
export type QatBudget = "uniform-3-bit-size" | "hawq-v3-rule";

/** One allocation trained after PTQ. */
export interface MixedQatRun {
  /** The budget's label. */
  readonly budget: string;
  /** The allocation method's label. */
  readonly method: string;
  /** Weight bits per layer, in the comparison's layer order, `/`-separated. */
  readonly bits: string;
  /** Weight bits by node. */
  readonly bitsByNode: Readonly<Record<string, number>>;
  /** Weight codes, bytes. */
  readonly sizeBytes: number;
  /** PTQ top-1 (%) of the allocation (the comparison's). */
  readonly ptq: number;
  /** QAT top-1 (%) of the exported QDQ model on ONNX Runtime's default session (integer kernels, as the PTQ one). */
  readonly qat: number;
  /** QAT top-1 (%) of the training graph (fake-quantized, trained parameters) as the training loop evaluated it. */
  readonly training: number;
  /** QAT top-1 (%) of the exported QDQ model with graph optimization `"basic"` (float QDQ arithmetic, no fusion). */
  readonly qdqFloat: number;
  /** QAT top-1 (%) of the exported QOperator model (undefined when ONNX Runtime could not run it). */
  readonly qoperator?: number;
  /** Why the QOperator model did not run (ONNX Runtime's message), when it did not. */
  readonly qoperatorError?: string;
  /** Mean training loss over the run's steps. */
  readonly loss: number;
  /** Training wall time, seconds. */
  readonly seconds: number;
}

/** What {@link mixedPrecisionQat} returns. */
export interface MixedPrecisionQat {
  /** The comparison's report, with the QAT table, chart and findings added. */
  readonly report: Report;
  /** The runs, in table order. */
  readonly runs: readonly MixedQatRun[];
  /** The settings in words. */
  readonly setting: string;
}

const SECTION = "survey §IV-B Mixed-precision quantization";
const B3 = "size of uniform 3-bit";

/** HAWQ-v3's ResNet-18 results after its quantization-aware training (Zhen-Dong/HAWQ model_zoo.md). */
const HAWQ_V3_QAT: PaperReference = {
  section: SECTION,
  source: "HAWQ-v3 (Yao et al. 2021), Zhen-Dong/HAWQ model_zoo.md (results after quant_train.py QAT: SGD, lr 1e-4, " +
    "BN fixed, up to 90 epochs)",
  setting: "ResNet-18, ImageNet, 4/8-bit mixed weights and activations at int4 + 0.25 (int8 - int4) size vs W4A4; " +
    "no 2- or 3-bit widths",
  result: "mixed (size 0.25) 70.01 % at 7.3 MB vs W4A4 68.45 % at 5.8 MB (+1.56 points); W8A8 71.56 %, float 71.47 %",
  verified: true,
};

/**
 * QAT after allocation (see the module doc): trains the allocations of one equal-size comparison of `comparison`
 * (`budget`) from their PTQ parameters with one recipe, and adds a table (allocation, bits, size, PTQ top-1, QAT
 * top-1, gain), a chart (PTQ vs QAT per allocation) and a finding citing HAWQ-v3's QAT numbers to
 * `comparison.report`, which it returns. Quick preset (CI): 16 Adam steps of 32 images per allocation; full: 300
 * steps of 64 (the first 19,200 training images, one pass). Progress shows per allocation.
 *
 * @example
 * ```ts
 * import { mixedPrecisionQat } from "./mixed_precision_qat.ts";
 * import { Report } from "./report.ts";
 * // In a notebook: const comparison = await mixedPrecisionComparison({ quick });
 * //   await mixedPrecisionQat(comparison, { quick, budget: "uniform-3-bit-size" }); show(report.table("qat-u3"))
 * // A comparison without data (no setup) gets a note and no runs:
 * const { runs, report } = await mixedPrecisionQat({ report: new Report("mixed-precision", "14", "claim") });
 * if (runs.length !== 0 || report.blocks.length !== 1) throw new Error("bad");
 * ```
 */
export async function mixedPrecisionQat(
  comparison: MixedPrecisionComparison,
  options: MixedPrecisionQatOptions = {},
): Promise<MixedPrecisionQat> {
  const report = comparison.report;
  const setup = comparison.setup;
  if (!setup) {
    report.text("QAT after allocation: not run (the comparison had no data).");
    return { report, runs: [], setting: "not run" };
  }
  const quick = options.quick ?? setup.quick;
  const steps = options.steps ?? (quick ? 16 : 300);
  const batchSize = options.batchSize ?? (quick ? 32 : 64);
  const lr = options.lr ?? 5e-4;
  const seed = options.seed ?? setup.seed;
  const session = options.session ?? setup.session;
  const budget = options.budget ?? "uniform-3-bit-size";
  if (budget !== "uniform-3-bit-size" && budget !== "hawq-v3-rule") {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `mixedPrecisionQat budget must be "uniform-3-bit-size" or "hawq-v3-rule", got "${budget}"`,
    );
  }
  if (!(Number.isInteger(steps) && steps >= 1 && Number.isInteger(batchSize) && batchSize >= 2 && lr > 0)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `mixedPrecisionQat needs integer steps >= 1, batchSize >= 2 and lr > 0 (got ${steps}, ${batchSize}, ${lr})`,
    );
  }
  const train = subset(setup.train, 0, Math.min(setup.train.count, steps * batchSize));
  const test = setup.test;
  const v3 = setup.allocations.find((a) => a.budget !== B3)?.budget;
  const label = budget === "uniform-3-bit-size" ? B3 : v3 ?? "HAWQ-v3 rule";
  const wanted: [string | undefined, string][] = budget === "uniform-3-bit-size"
    ? [[B3, "HAWQ (integer program)"], [B3, "uniform 3-bit"], [B3, "greedy by sensitivity"]]
    : [[v3, "HAWQ (integer program)"], [v3, "uniform 4-bit"]];
  const todo = wanted
    .map(([b, m]) => setup.allocations.find((a) => a.budget === b && a.method === m))
    .filter((a): a is ComparedAllocation => a !== undefined);
  const setting = `LSQ weights and activations from each allocation's PTQ state, Adam lr ${lr} constant, ` +
    `${Math.ceil(train.count / batchSize)} steps of ${batchSize} images (the first ${train.count} training images, ` +
    `one pass, seed ${seed}), BN folded (running statistics), evaluated on ${test.count} test images`;
  const bar = progress(todo.length, { label: `14 QAT after allocation (${label})`, sink: options.progress });
  const pct = async (m: OnnxModel, o: SessionOptions = session) =>
    100 * (await evaluateAccuracy(m, test, { ...o, batchSize: 250 })).top1;
  const runs: MixedQatRun[] = [];
  for (const c of todo) {
    const a = c.allocation;
    const t0 = performance.now();
    const r = await qat(a.apply(setup.base))
      .fakeQuant({ weights: "lsq", activations: "lsq" })
      .optimizer({ kind: "adam", lr })
      .epochs(1)
      .batchSize(batchSize)
      .seed(seed)
      .session(session)
      .train(train, { test });
    const seconds = (performance.now() - t0) / 1000;
    const h = r.history[r.history.length - 1];
    let qoperator: number | undefined, qoperatorError: string | undefined;
    try {
      qoperator = await pct(r.qoperator);
    } catch (e) {
      qoperatorError = String((e as Error)?.message ?? e);
    }
    runs.push({
      budget: c.budget,
      method: c.method,
      bits: setup.order.map((n) => a.bits[n]).join("/"),
      bitsByNode: a.bits,
      sizeBytes: a.usage.size,
      ptq: c.top1,
      qat: await pct(r.qdq),
      training: 100 * (h.testAccuracy ?? NaN),
      qdqFloat: await pct(r.qdq, { ...session, optimization: "basic" }),
      qoperator,
      qoperatorError,
      loss: h.loss,
      seconds,
    });
    await bar.tick(1, `${c.method} (${c.budget})`);
  }

  const f2 = (v: number) => Number(v.toFixed(2));
  const id = budget === "uniform-3-bit-size" ? "qat-u3" : "qat-v3";
  report.text(
    `QAT after allocation (${label}): ${setting}. Every allocation starts from its own PTQ state (the ` +
      "comparison's int-b per-channel weights at its per-layer widths, uint8 activations, first and last layers " +
      "8-bit) and trains with the same recipe, steps and images. QAT top-1 is the exported QDQ model's on ONNX " +
      "Runtime's default session, which fuses QDQ around Conv/Gemm into integer kernels (as for the PTQ column); " +
      'with graph optimization "basic" (float QDQ arithmetic) the export reproduces the training graph exactly. ' +
      "Departures from HAWQ-v3's quant_train.py: LSQ steps and Adam instead of fixed scales and SGD, and a few " +
      "hundred steps instead of up to 90 ImageNet epochs." +
      (quick ? " QUICK preset: the numbers are for wiring, not conclusions." : ""),
  );
  report.table(
    id,
    table(
      runs.map((r) => ({
        allocation: r.method,
        bits: r.bits,
        "size (B)": Math.round(r.sizeBytes),
        "PTQ top-1 %": f2(r.ptq),
        "QAT top-1 %": f2(r.qat),
        "gain (points)": f2(r.qat - r.ptq),
        "training graph %": f2(r.training),
        "QDQ float %": f2(r.qdqFloat),
        "QOperator %": r.qoperator === undefined ? `did not run: ${r.qoperatorError ?? "?"}` : f2(r.qoperator),
        "train (s)": Math.round(r.seconds),
      })),
      {
        title: `QAT after allocation at the ${label}: top-1 of the exported models (bits in layer order ${
          setup.order.join(", ")
        })`,
      },
    ),
  );
  report.chart(
    id,
    dotPlotChart(
      runs.flatMap((r) => [
        { allocation: `${r.method} ${r.bits}`, stage: "PTQ", accuracy: f2(r.ptq) },
        { allocation: `${r.method} ${r.bits}`, stage: "QAT (LSQ)", accuracy: f2(r.qat) },
      ]),
      {
        title: `PTQ and QAT accuracy per allocation at the ${label}`,
        subtitle: `${test.count} test images, ${Math.ceil(train.count / batchSize)} Adam steps of ${batchSize} ` +
          `per allocation; dashed: float`,
        x: { field: "accuracy", title: "top-1 accuracy (%)" },
        y: { field: "allocation", title: "allocation (bits in layer order)" },
        color: { field: "stage", title: "stage" },
        reference: { value: f2(setup.floatTop1), label: `float ${setup.floatTop1.toFixed(2)} %` },
        width: 520,
      },
    ),
  );

  const at = (method: string) => runs.find((r) => r.method === method);
  const h = at("HAWQ (integer program)"), u = at(budget === "uniform-3-bit-size" ? "uniform 3-bit" : "uniform 4-bit");
  const g = at("greedy by sensitivity");
  if (h && u) {
    const ub = budget === "uniform-3-bit-size" ? "uniform 3-bit" : "uniform 4-bit";
    report.finding(
      budget === "uniform-3-bit-size"
        ? "After QAT, at the size of uniform 3-bit weights, the HAWQ allocation beats uniform 3-bit"
        : "After QAT, at HAWQ-v3's budget (int4 + 0.25 (int8 - int4)) the HAWQ allocation beats uniform 4-bit",
      h.qat > u.qat,
      `QAT (exported QDQ on ONNX Runtime's integer kernels): HAWQ ${h.qat.toFixed(2)} % (${h.bits}, ${
        Math.round(h.sizeBytes)
      } B) vs ${ub} ${u.qat.toFixed(2)} % (${Math.round(u.sizeBytes)} B)` +
        (g ? `, greedy ${g.qat.toFixed(2)} %` : "") +
        `; the same models in float QDQ arithmetic (= training graph): ${h.qdqFloat.toFixed(2)} % vs ${
          u.qdqFloat.toFixed(2)
        } %` + (g ? `, greedy ${g.qdqFloat.toFixed(2)} %` : "") +
        `; PTQ before: HAWQ ${h.ptq.toFixed(2)} % vs ${ub} ${u.ptq.toFixed(2)} %` +
        (g ? `, greedy ${g.ptq.toFixed(2)} %` : "") +
        `; float ${setup.floatTop1.toFixed(2)} %; ${Math.ceil(train.count / batchSize)} Adam steps each`,
      { value: h.qat - u.qat, unit: `points (HAWQ minus ${ub}, after QAT)` },
    );
    report.cite(report.findings.length - 1, HAWQ_V3_QAT);
  }
  const key = (r: MixedQatRun) =>
    `qat_${budget === "uniform-3-bit-size" ? "u3size" : "v3rule"}_${r.method.split(" ")[0].toLowerCase()}`;
  report.record(Object.fromEntries(runs.map((r) => [key(r), r.qat])));
  await report.prerender();
  await bar.finish();
  return { report, runs, setting };
}
