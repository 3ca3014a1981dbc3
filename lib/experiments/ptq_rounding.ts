/**
 * Experiment 11, PTQ beyond round-to-nearest: on the Fashion-MNIST ResNet-8 and the digits CNN, per-channel
 * symmetric int-b weights (b = 4, 3, 2) and uint8 asymmetric activations (ONNX Runtime's placement), BN folded,
 * compare round-to-nearest with seeded stochastic rounding (mean, spread, best and worst of N draws), AdaRound
 * (AIMET's objective), AdaQuant (CalibTIP), block reconstruction (BRECQ), outlier channel splitting (OCS, grid-aware,
 * expand ratio 0.02) and empirical bias correction, with the wall time of each method; per-layer reconstruction
 * error before and after, and AdaRound's per-layer loss curves.
 *
 * Every method is one pass of the same `ptq()` recipe over the same plan and calibration (512 calibration images;
 * calibration is cached, so the times are each method's own). The learned methods run their cheaper presets for
 * small models (`preset: "small"`; not the papers' iteration counts): AdaRound 2,000 iterations per layer on 512
 * cached examples (AIMET: 15,000 on 2,000), AdaQuant 300 per layer on 512 (CalibTIP: 1,000 on 1,000), BRECQ 2,000 per
 * block on 512 (BRECQ: 20,000 on 1,024). `quick` shrinks everything for tests and CI: the digits CNN at W4A8 and
 * W2A8 with every method (3 stochastic draws, 60-80 iterations on 64 cached examples, 128 calibration images), the
 * ResNet-8 at W3A8 on 500 test images with the methods that learn nothing (nearest, stochastic, OCS, bias correction).
 *
 * @module
 */
import type { ImageDataset } from "../data/batching.ts";
import { subset, trainTestSplit } from "../data/batching.ts";
import { loadDigits } from "../data/digits.ts";
import { adaQuant, type AdaQuantLayerRecord } from "../adaround/adaquant.ts";
import { adaRound, type AdaRoundDetails } from "../adaround/adaround_pass.ts";
import { brecq, type BrecqUnitRecord } from "../adaround/brecq.ts";
import { stochasticRoundingTrials } from "../adaround/stochastic.ts";
import { QuantlabError } from "../errors.ts";
import { OnnxModel } from "../onnx/model.ts";
import { clearSessionCache, type SessionOptions } from "../onnx/session.ts";
import { progress } from "../notebook/progress.ts";
import { table } from "../notebook/table.ts";
import { evaluateAccuracy } from "../ptq/evaluate.ts";
import { materializeQdq } from "../ptq/materialize.ts";
import { ocs, type OcsLayerRecord } from "../ptq/ocs.ts";
import type { PtqPass } from "../ptq/pass.ts";
import { ptq, type PtqModels, type PtqPipeline } from "../ptq/pipeline.ts";
import { quantizer } from "../quant/quantizer.ts";
import { dotPlotChart, lineChart } from "../viz/charts.ts";
import { loadExperimentModel, loadFashionOrNote, type OnnxExperimentOptions } from "./ptq_onnx.ts";
import type { Experiment } from "./registry.ts";
import type { PaperReference } from "./report.ts";
import { Report } from "./report.ts";

const TITLE = "11 · PTQ beyond round-to-nearest (AdaRound, AdaQuant, BRECQ, OCS)";
const CLAIM = "Round-to-nearest is not the best post-training choice: learned rounding (AdaRound), per-layer " +
  "optimisation (AdaQuant), block reconstruction (BRECQ) and outlier channel splitting recover what low-bit " +
  "weights lose, without labels and without training";

/** The methods compared. */
export type PtqRoundingMethod =
  | "nearest"
  | "stochastic"
  | "adaround"
  | "adaquant"
  | "brecq"
  | "ocs"
  | "bias-correction";

/** All methods, in table order. */
const METHODS: readonly PtqRoundingMethod[] = [
  "nearest",
  "stochastic",
  "adaround",
  "adaquant",
  "brecq",
  "ocs",
  "bias-correction",
];

const LEARNED: ReadonlySet<PtqRoundingMethod> = new Set(["adaround", "adaquant", "brecq"]);

const METHOD_LABEL: Record<PtqRoundingMethod, string> = {
  nearest: "round-to-nearest",
  stochastic: "stochastic rounding",
  adaround: "AdaRound",
  adaquant: "AdaQuant",
  brecq: "BRECQ (block reconstruction)",
  ocs: "OCS (grid-aware, ratio 0.02)",
  "bias-correction": "bias correction",
};

const FAMILY: Record<PtqRoundingMethod, string> = {
  nearest: "baseline",
  stochastic: "baseline",
  adaround: "learned rounding / reconstruction",
  adaquant: "learned rounding / reconstruction",
  brecq: "learned rounding / reconstruction",
  ocs: "no data needed beyond calibration",
  "bias-correction": "no data needed beyond calibration",
};

/** The two models. */
export type PtqRoundingModel = "resnet8" | "digits";

/** Options of {@link ptqRoundingComparison}. */
export interface PtqRoundingOptions extends OnnxExperimentOptions {
  /** Weight bit widths (default 4, 3, 2; quick: 4, 2). */
  readonly bits?: readonly number[];
  /** Stochastic-rounding draws (default 20; quick 3). */
  readonly draws?: number;
  /** Methods to run (default all). */
  readonly methods?: readonly PtqRoundingMethod[];
  /** Models (default both; the ResNet-8 is left out with a note when Fashion-MNIST is missing). */
  readonly models?: readonly PtqRoundingModel[];
}

/** One (model, setting, method) result. */
export interface PtqRoundingRow {
  /** Model. */
  readonly model: PtqRoundingModel;
  /** `W<b>A8`. */
  readonly setting: string;
  /** Weight bits. */
  readonly bits: number;
  /** Method. */
  readonly method: PtqRoundingMethod;
  /** Top-1 accuracy (%) (stochastic: mean over draws). */
  readonly accuracy: number;
  /** Wall time of the method (s), after the shared calibration; stochastic: all draws, evaluation excluded. */
  readonly seconds: number;
  /** Stochastic rounding: spread over draws. */
  readonly draws?: { readonly n: number; readonly sd: number; readonly best: number; readonly worst: number };
}

/** Per-layer reconstruction error of one learned method (mean squared error on cached examples). */
export interface LayerErrorRow {
  /** Model. */
  readonly model: PtqRoundingModel;
  /** Setting. */
  readonly setting: string;
  /** Method. */
  readonly method: "adaround" | "adaquant" | "brecq";
  /** Layer (or block) label. */
  readonly layer: string;
  /** MSE with round-to-nearest. */
  readonly before: number;
  /** MSE after the method. */
  readonly after: number;
}

/** One point of an AdaRound loss curve. */
export interface CurvePoint {
  /** Model. */
  readonly model: PtqRoundingModel;
  /** Setting. */
  readonly setting: string;
  /** Layer label. */
  readonly layer: string;
  /** Iteration. */
  readonly iteration: number;
  /** Total loss of the batch. */
  readonly loss: number;
  /** Reconstruction part. */
  readonly recon: number;
}

/** What {@link ptqRoundingComparison} returns besides the report. */
export interface PtqRoundingComparison {
  /** The report (tables, charts, findings). */
  readonly report: Report;
  /** Accuracy and time of every (model, setting, method). */
  readonly rows: readonly PtqRoundingRow[];
  /** Float accuracy (%) per model. */
  readonly float: Readonly<Partial<Record<PtqRoundingModel, number>>>;
  /** Per-layer reconstruction error before/after. */
  readonly layers: readonly LayerErrorRow[];
  /** AdaRound loss curves (every layer, every setting). */
  readonly curves: readonly CurvePoint[];
  /** What OCS split, per model (first setting; the split does not depend on the width, its grid does). */
  readonly ocs: Readonly<Partial<Record<PtqRoundingModel, readonly OcsLayerRecord[]>>>;
}

async function loadDigitsModel(): Promise<OnnxModel> {
  const url = new URL("../../datasets/models/digits_cnn.onnx", import.meta.url);
  const res = await fetch(url);
  if (!res.ok) {
    await res.body?.cancel();
    throw new QuantlabError("DATASET", `digits CNN not found at ${url} (HTTP ${res.status})`);
  }
  return OnnxModel.decode(new Uint8Array(await res.arrayBuffer()), "digits_cnn.onnx");
}

function checkOptions(o: PtqRoundingOptions): void {
  for (const b of o.bits ?? []) {
    if (!Number.isInteger(b) || b < 2 || b > 8) {
      throw new QuantlabError("INVALID_ARGUMENT", `ptqRoundingComparison: weight bits must be integers 2..8, got ${b}`);
    }
  }
  if (o.draws !== undefined && !(Number.isInteger(o.draws) && o.draws >= 1)) {
    throw new QuantlabError("INVALID_ARGUMENT", `ptqRoundingComparison: draws must be a positive integer`);
  }
  for (const m of o.methods ?? []) {
    if (!METHODS.includes(m)) {
      throw new QuantlabError("INVALID_ARGUMENT", `ptqRoundingComparison: unknown method "${m}"`);
    }
  }
  for (const m of o.models ?? []) {
    if (m !== "resnet8" && m !== "digits") {
      throw new QuantlabError("INVALID_ARGUMENT", `ptqRoundingComparison: unknown model "${m}"`);
    }
  }
}

const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const fmt = (v: number) => Number(v.toFixed(2));

/** One model at one weight width: every method's result (what a notebook cell computes). */
export interface PtqRoundingRun {
  /** Model. */
  readonly model: PtqRoundingModel;
  /** Model title. */
  readonly title: string;
  /** Why the model did not run (its data is missing); the rest is then empty. */
  readonly note?: string;
  /** `W<b>A8`. */
  readonly setting: string;
  /** Float accuracy (%) on the test images used. */
  readonly float: number;
  /** Test images evaluated. */
  readonly testImages: number;
  /** Quick settings. */
  readonly quick: boolean;
  /** Stochastic draws. */
  readonly draws: number;
  /** Calibration images. */
  readonly calibCount: number;
  /** Calibration wall time (s; shared by the methods). */
  readonly calibSeconds: number;
  /** One row per method. */
  readonly rows: readonly PtqRoundingRow[];
  /** Per-layer reconstruction errors of the learned methods. */
  readonly layers: readonly LayerErrorRow[];
  /** AdaRound loss curves. */
  readonly curves: readonly CurvePoint[];
  /** What OCS split. */
  readonly ocs: readonly OcsLayerRecord[];
}

interface ModelSetup {
  name: PtqRoundingModel;
  title: string;
  model: OnnxModel;
  calib: ImageDataset;
  test: ImageDataset;
  limit: number;
}

const TITLES: Record<PtqRoundingModel, string> = { resnet8: "Fashion-MNIST ResNet-8", digits: "digits CNN" };

async function loadSetup(which: PtqRoundingModel, options: PtqRoundingOptions): Promise<ModelSetup | string> {
  if (which === "resnet8") {
    const data = await loadFashionOrNote();
    if ("note" in data) return data.note;
    const { model } = await loadExperimentModel(options.model);
    return {
      name: which,
      title: TITLES[which],
      model,
      calib: subset(data.train, 0, Math.min(2048, data.train.count)),
      test: data.test,
      limit: options.quick ? 500 : data.test.count,
    };
  }
  const split = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });
  return {
    name: which,
    title: TITLES[which],
    model: await loadDigitsModel(),
    calib: split.train,
    test: split.test,
    limit: split.test.count,
  };
}

/**
 * The runs of the preset (or of the `models` and `bits` given): every method on each (model, weight width). Quick:
 * the digits CNN at W4A8 and W2A8 with every method, the ResNet-8 at W3A8 (or the `bits` given) with the methods that
 * learn nothing. A notebook runs them a few per cell and passes them to {@link ptqRoundingComparison}.
 *
 * @example
 * ```ts ignore
 * const runs = await ptqRoundingRuns({ quick: true, models: ["digits"], bits: [4] });
 * const { report } = await ptqRoundingComparison({ runs });
 * ```
 */
export async function ptqRoundingRuns(options: PtqRoundingOptions = {}): Promise<PtqRoundingRun[]> {
  checkOptions(options);
  const quick = options.quick ?? false, seed = options.seed ?? 0;
  const session: SessionOptions = options.session ?? {};
  const draws = options.draws ?? (quick ? 3 : 20);
  const methods = METHODS.filter((m) => (options.methods ?? METHODS).includes(m));
  const wanted = options.models ?? ["resnet8", "digits"];
  const calibCount = quick ? 128 : 512;
  const samples = quick ? 64 : 512;
  const passFor = (m: PtqRoundingMethod): PtqPass | undefined => {
    if (m === "adaround") {
      return adaRound({ preset: "small", seed, ...(quick ? { iterations: 80, samples } : {}) });
    }
    if (m === "adaquant") return adaQuant({ preset: "small", seed, ...(quick ? { iterations: 60, samples } : {}) });
    if (m === "brecq") return brecq({ preset: "small", seed, ...(quick ? { iterations: 80, samples } : {}) });
    if (m === "ocs") return ocs({ expandRatio: 0.02 });
    return undefined;
  };
  const runs: PtqRoundingRun[] = [];
  const plan: [PtqRoundingModel, number[], PtqRoundingMethod[]][] = wanted.map((w) => {
    // Quick: the learned methods (each builds per-layer gradient graphs) run on the digits CNN only.
    const quickResnet = quick && w === "resnet8";
    const bits = options.bits ?? (quickResnet ? [3] : quick ? [4, 2] : [4, 3, 2]);
    return [w, [...bits], quickResnet ? methods.filter((m) => !LEARNED.has(m)) : methods];
  });
  const steps = plan.reduce((a, [, b, m]) => a + 1 + b.length * m.length, 0);
  const bar = progress(steps, { label: "11 ptq rounding", sink: options.progress });
  for (const [which, bitsList, ms] of plan) {
    const s = await loadSetup(which, options);
    if (typeof s === "string") {
      runs.push({
        model: which,
        title: TITLES[which],
        note: s,
        setting: "",
        float: NaN,
        testImages: 0,
        quick,
        draws,
        calibCount,
        calibSeconds: 0,
        rows: [],
        layers: [],
        curves: [],
        ocs: [],
      });
      await bar.tick(1 + bitsList.length * ms.length);
      continue;
    }
    const acc = async (m: OnnxModel) =>
      100 * (await evaluateAccuracy(m, s.test, { ...session, limit: s.limit, batchSize: 500 })).top1;
    const floatAcc = await acc(s.model);
    await bar.tick();
    for (const bits of bitsList) {
      const setting = `W${bits}A8`;
      const base: PtqPipeline = ptq(s.model)
        .weights(quantizer().int(bits).symmetric().perChannel())
        .activations(quantizer().uint(8).asymmetric())
        .session(session)
        .calibrateOn(s.calib, { count: calibCount });
      let t0 = performance.now();
      const state = await base.state();
      const calibSeconds = (performance.now() - t0) / 1000;
      const rows: PtqRoundingRow[] = [], layers: LayerErrorRow[] = [], curves: CurvePoint[] = [];
      let ocsLayers: readonly OcsLayerRecord[] = [];
      for (const method of ms) {
        t0 = performance.now();
        if (method === "stochastic") {
          const trials = stochasticRoundingTrials(state, { draws, seed });
          const seconds = (performance.now() - t0) / 1000;
          const accs: number[] = [];
          for (const t of trials) {
            accs.push(await acc(materializeQdq(t).model));
            await clearSessionCache();
          }
          const m = mean(accs);
          const sd = Math.sqrt(accs.reduce((a, v) => a + (v - m) ** 2, 0) / Math.max(1, accs.length - 1));
          rows.push({
            model: which,
            setting,
            bits,
            method,
            accuracy: m,
            seconds,
            draws: { n: accs.length, sd, best: Math.max(...accs), worst: Math.min(...accs) },
          });
          await bar.tick();
          continue;
        }
        const pass = passFor(method);
        const pipe = method === "bias-correction"
          ? base.biasCorrection({ count: calibCount })
          : pass
          ? base.use(pass)
          : base;
        const q: PtqModels = await pipe.quantize();
        const seconds = (performance.now() - t0) / 1000;
        rows.push({ model: which, setting, bits, method, accuracy: await acc(q.qdq), seconds });
        // Sessions are cached by model bytes: drop the ones of this method's models (dozens per width otherwise).
        await clearSessionCache();
        collectLayers(q, which, setting, method, layers, curves);
        if (method === "ocs") {
          ocsLayers = (q.state.records.find((r) => r.pass === "ocs")?.details as { layers: OcsLayerRecord[] }).layers;
        }
        await bar.tick();
      }
      runs.push({
        model: which,
        title: s.title,
        setting,
        float: floatAcc,
        testImages: Math.min(s.limit, s.test.count),
        quick,
        draws,
        calibCount,
        calibSeconds,
        rows,
        layers,
        curves,
        ocs: ocsLayers,
      });
    }
  }
  await bar.finish();
  return runs;
}

/**
 * Run the comparison (see the module doc) and build the report; with `runs`, build the report from runs made by
 * {@link ptqRoundingRuns} (a notebook runs them a few per cell). `quick` shrinks everything for tests and CI.
 *
 * @example
 * ```ts ignore
 * const { report, rows } = await ptqRoundingComparison({ quick: true, models: ["digits"] });
 * ```
 */
export async function ptqRoundingComparison(
  options: PtqRoundingOptions & { readonly runs?: readonly PtqRoundingRun[] } = {},
): Promise<PtqRoundingComparison> {
  const runs = options.runs ?? await ptqRoundingRuns(options);
  const done = runs.filter((r) => r.note === undefined);
  const notes = [...new Set(runs.filter((r) => r.note !== undefined).map((r) => `${r.title} left out: ${r.note}`))];
  if (done.length === 0) {
    const r = new Report("ptq-rounding", TITLE, CLAIM).text(`Skipped: no model ran. ${notes.join(" ")}`);
    return { report: r, rows: [], float: {}, layers: [], curves: [], ocs: {} };
  }
  const setups: { name: PtqRoundingModel; title: string; limit: number }[] = [];
  const float: Partial<Record<PtqRoundingModel, number>> = {};
  const ocsLayers: Partial<Record<PtqRoundingModel, readonly OcsLayerRecord[]>> = {};
  const calibSeconds: Partial<Record<PtqRoundingModel, number>> = {};
  for (const r of done) {
    if (!setups.some((s) => s.name === r.model)) {
      setups.push({ name: r.model, title: r.title, limit: r.testImages });
      float[r.model] = r.float;
      calibSeconds[r.model] = r.calibSeconds;
    }
    if (!ocsLayers[r.model] && r.ocs.length) ocsLayers[r.model] = r.ocs;
  }
  const rows = done.flatMap((r) => r.rows), layers = done.flatMap((r) => r.layers);
  const curves = done.flatMap((r) => r.curves);
  const report = buildReport({
    setups,
    rows,
    float,
    layers,
    curves,
    ocs: ocsLayers,
    notes,
    quick: done.some((r) => r.quick),
    draws: done[0].draws,
    calibCount: done[0].calibCount,
    calibSeconds,
  });
  await report.prerender();
  return { report, rows, float, layers, curves, ocs: ocsLayers };
}

function collectLayers(
  q: PtqModels,
  model: PtqRoundingModel,
  setting: string,
  method: PtqRoundingMethod,
  layers: LayerErrorRow[],
  curves: CurvePoint[],
): void {
  const rec = (name: string) => q.state.records.find((r) => r.pass === name)?.details;
  if (method === "adaround") {
    const d = rec("adaRound") as AdaRoundDetails | undefined;
    for (const l of d?.layers ?? []) {
      layers.push({ model, setting, method, layer: l.layer, before: l.mseNearest, after: l.mseAdaRound });
      for (const p of l.curve) {
        curves.push({ model, setting, layer: l.layer, iteration: p.iteration, loss: p.loss, recon: p.recon });
      }
    }
  } else if (method === "adaquant") {
    const d = rec("adaQuant") as { layers?: readonly AdaQuantLayerRecord[] } | undefined;
    for (const l of d?.layers ?? []) {
      layers.push({ model, setting, method, layer: l.layer, before: l.mseBefore, after: l.mseAfter });
    }
  } else if (method === "brecq") {
    const d = rec("brecq") as { units?: readonly BrecqUnitRecord[] } | undefined;
    for (const u of d?.units ?? []) {
      layers.push({
        model,
        setting,
        method,
        layer: `${u.kind === "block" ? "block" : "layer"} ${u.label}`,
        before: u.mseNearest,
        after: u.mseRounded,
      });
    }
  }
}

/** Papers' settings and numbers (as recorded in the project's notes and the lead's brief; not re-verified). */
const REFS: Record<string, PaperReference> = {
  adaround: {
    section: "survey §III-G2 Post-training quantization",
    source: "AdaRound (Nagel et al. 2020), ImageNet results table, as recorded in the lead's brief",
    setting: "ResNet-18 ImageNet, 4-bit weights, 8-bit activations (W4A8)",
    result: "AdaRound 68.71 % vs round-to-nearest 23.99 %",
    verified: false,
  },
  stochastic: {
    section: "survey §III-G2 / §III-H",
    source: "AdaRound (Nagel et al. 2020), Table 1, via the project's reading notes (PAPERS.md)",
    setting: "ResNet-18 ImageNet, only the first layer at 4 bits",
    result: "nearest 52.29 %; stochastic 52.06 ± 5.52 %; best stochastic 63.06 %",
    verified: false,
  },
  brecq: {
    section: "survey §III-G2 Post-training quantization",
    source: "BRECQ (Li et al. 2021, yhhhli/BRECQ README), via PAPERS.md",
    setting: "ResNet-18 ImageNet, W2A4 channel-wise (20,000 iterations per block, 1,024 images)",
    result: "66.33 % with weight-only reconstruction, 65.21 % full (float about 71 %)",
    verified: false,
  },
  adaquant: {
    section: "survey §III-G2 Post-training quantization",
    source: "AdaQuant (Hubara et al. 2021, itayhubara/CalibTIP utils/adaquant.py), via PAPERS.md",
    setting: "Adam lr weights 1e-5, bias 1e-3, step sizes 1e-3 (weights) / 1e-1 (inputs); 1,000 iterations, batch 50",
    result: "no accuracy number recorded in the project's notes; settings only",
    verified: false,
  },
  ocs: {
    section: "survey §III-G2 Post-training quantization",
    source: "OCS (Zhao et al. 2019, cornell-zhang/dnn-quant-ocs), via PAPERS.md",
    setting: "expand ratios swept 0-0.05 (README example 0.02), per-tensor weights, with and without clipping",
    result: "no accuracy number recorded in the project's notes; the method targets per-tensor weight ranges",
    verified: false,
  },
  bias: {
    section: "survey §III-G2 Post-training quantization",
    source: "survey §III-G2 (Banner et al.; Nagel et al. DFQ)",
    setting: "low-bit weights",
    result: "stated qualitatively in the survey; no single number to compare",
    verified: true,
  },
};

function buildReport(a: {
  setups: { name: PtqRoundingModel; title: string; limit: number }[];
  rows: PtqRoundingRow[];
  float: Partial<Record<PtqRoundingModel, number>>;
  layers: LayerErrorRow[];
  curves: CurvePoint[];
  ocs: Partial<Record<PtqRoundingModel, readonly OcsLayerRecord[]>>;
  notes: string[];
  quick: boolean;
  draws: number;
  calibCount: number;
  calibSeconds: Partial<Record<PtqRoundingModel, number>>;
}): Report {
  const { setups, rows, float, layers, curves } = a;
  const report = new Report("ptq-rounding", TITLE, CLAIM);
  report.text(
    `Models: ${
      setups.map((s) => `${s.title} (float ${float[s.name]!.toFixed(2)} % on ${s.limit} test images)`).join(", ")
    }. Weights per-channel symmetric int-b (restricted range), activations uint8 asymmetric min-max placed as ` +
      `ONNX Runtime does, BN folded, calibration on ${a.calibCount} training images. Learned methods: ` +
      (a.quick
        ? "quick settings (60-80 iterations on 64 cached examples, digits CNN only; not the papers' nor the small " +
          "presets)"
        : "the small presets (AdaRound 2,000 iterations/layer on 512 examples, AdaQuant 300 on 512, BRECQ 2,000 " +
          "per block on 512; the papers use 15,000 on 2,000, 1,000 on 1,000 and 20,000 on 1,024)") +
      `; stochastic rounding: ${a.draws} seeded draws. Times are each method's own wall time on this machine ` +
      `(calibration, shared and cached, excluded). Methods run: ${
        setups.map((s) =>
          `${s.title}: ${
            METHODS.filter((m) => rows.some((r) => r.model === s.name && r.method === m)).map((m) =>
              METHOD_LABEL[m]
            )
              .join(", ")
          }`
        ).join("; ")
      }. ${a.notes.join(" ")}`,
  );
  const methodsRun = METHODS.filter((m) => rows.some((r) => r.method === m));
  for (const s of setups) {
    const own = rows.filter((r) => r.model === s.name);
    const settings = [...new Set(own.map((r) => r.setting))];
    report.table(
      `accuracy-${s.name}`,
      table(
        methodsRun.map((m) => {
          const row: Record<string, string | number> = { method: METHOD_LABEL[m] };
          for (const st of settings) {
            const r = own.find((x) => x.method === m && x.setting === st);
            row[st] = !r
              ? "-"
              : r.draws
              ? `${r.accuracy.toFixed(2)} ± ${r.draws.sd.toFixed(2)} (best ${r.draws.best.toFixed(2)}, worst ${
                r.draws.worst.toFixed(2)
              })`
              : fmt(r.accuracy);
          }
          return row;
        }),
        {
          title: `${s.title}: top-1 accuracy (%) (float ${float[s.name]!.toFixed(2)} %)`,
          columns: ["method", ...settings],
        },
      ),
    );
    const dots = own.flatMap((r) =>
      r.draws
        ? [
          { setting: r.setting, method: "stochastic (mean)", accuracy: fmt(r.accuracy), kind: FAMILY.stochastic },
          {
            setting: r.setting,
            method: `stochastic (best of ${r.draws.n})`,
            accuracy: fmt(r.draws.best),
            kind: FAMILY.stochastic,
          },
        ]
        : [{ setting: r.setting, method: METHOD_LABEL[r.method], accuracy: fmt(r.accuracy), kind: FAMILY[r.method] }]
    );
    report.chart(
      `accuracy-${s.name}`,
      dotPlotChart(dots, {
        title: `${s.title}: accuracy by rounding method`,
        subtitle: `${s.limit} test images; each panel has its own zoomed axis; dashed: float`,
        x: { field: "accuracy", title: "top-1 accuracy (%)" },
        y: { field: "method", title: "method" },
        color: { field: "kind", title: "kind of method" },
        facet: { field: "setting", title: "setting", order: settings },
        reference: { value: fmt(float[s.name]!), label: `float ${float[s.name]!.toFixed(2)}%` },
        width: 300,
      }),
    );
  }
  report.table(
    "time",
    table(
      methodsRun.map((m) => {
        const row: Record<string, string | number> = { method: METHOD_LABEL[m] };
        for (const s of setups) {
          const t = rows.filter((r) => r.model === s.name && r.method === m).map((r) => r.seconds);
          row[s.name] = t.length ? Number(mean(t).toPrecision(3)) : "-";
        }
        return row;
      }),
      {
        title: "Wall time per method (s, mean over settings; calibration excluded: " +
          setups.map((s) => `${s.name} ${(a.calibSeconds[s.name] ?? 0).toFixed(1)} s`).join(", ") + ")",
        columns: ["method", ...setups.map((s) => s.name)],
      },
    ),
  );
  if (layers.length) {
    report.table(
      "layers",
      table(
        layers.map((l) => ({
          model: l.model,
          setting: l.setting,
          method: METHOD_LABEL[l.method],
          layer: l.layer,
          "MSE nearest": Number(l.before.toPrecision(3)),
          "MSE after": Number(l.after.toPrecision(3)),
          ratio: Number((l.after / l.before).toPrecision(3)),
        })),
        { title: "Per-layer (BRECQ: per-block) reconstruction MSE with round-to-nearest and after the method" },
      ),
    );
    // The first model that ran a learned method (quick: the digits CNN only).
    const lm = setups.find((s) => layers.some((l) => l.model === s.name))!;
    const mainSettings = [...new Set(layers.filter((l) => l.model === lm.name).map((l) => l.setting))];
    const shown = mainSettings.includes("W3A8") ? "W3A8" : mainSettings[0];
    const main = layers.filter((l) => l.model === lm.name && l.setting === shown);
    report.chart(
      "layers",
      dotPlotChart(
        main.map((l) => ({
          layer: l.layer,
          ratio: Number((l.after / l.before).toPrecision(4)),
          method: METHOD_LABEL[l.method],
        })),
        {
          title: `${lm.title} ${shown}: reconstruction MSE after / before, per layer`,
          subtitle: "below 1: the method reduced the layer's (BRECQ: block's) output error against round-to-nearest",
          x: { field: "ratio", title: "MSE after / MSE with nearest (log scale)", scale: "log" },
          y: { field: "layer", title: "layer or block" },
          color: { field: "method", title: "method" },
          facet: { field: "method", title: "method" },
          reference: { value: 1, label: "no change" },
          width: 200,
        },
      ),
    );
  }
  const split = setups.flatMap((s) =>
    (a.ocs[s.name] ?? []).map((l) => ({
      model: s.name,
      layer: l.layer,
      "input channels": l.channels,
      "channels split": l.split.join(" "),
      "max |w| before": Number(l.maxAbsBefore.toPrecision(3)),
      "max |w| after": Number(l.maxAbsAfter.toPrecision(3)),
    }))
  );
  if (split.length) {
    report.table(
      "ocs",
      table(split, {
        title: "OCS: input channels duplicated per layer (ceil(0.02 C)) and the weight's largest |w| before and after",
      }),
    );
  }
  const cm = setups.find((s) => curves.some((c) => c.model === s.name)) ?? setups[0];
  const curveModel = cm.name;
  const curveSettings = [...new Set(curves.filter((c) => c.model === curveModel).map((c) => c.setting))];
  const curveSetting = curveSettings.includes("W3A8") ? "W3A8" : curveSettings[0];
  if (curveSetting) {
    report.chart(
      "curves",
      lineChart(
        curves.filter((c) => c.model === curveModel && c.setting === curveSetting).map((c) => ({
          iteration: c.iteration,
          loss: c.loss,
          layer: c.layer,
        })),
        {
          title: `AdaRound loss per layer (${cm.title}, ${curveSetting})`,
          subtitle: "reconstruction + rounding term per Adam step; the rounding term starts after the 20 % warm start",
          x: { field: "iteration", title: "iteration" },
          y: { field: "loss", title: "loss (log scale)", scale: "log" },
          series: { field: "layer", title: "layer" },
          points: false,
        },
      ),
    );
  }
  addFindings(report, setups, rows, float);
  const numbers: Record<string, number> = {};
  for (const s of setups) numbers[`${s.name}_float`] = float[s.name]!;
  for (const r of rows) {
    numbers[`${r.model}_${r.setting}_${r.method}`] = r.accuracy;
    numbers[`${r.model}_${r.setting}_${r.method}_seconds`] = r.seconds;
    if (r.draws) numbers[`${r.model}_${r.setting}_stochastic_best`] = r.draws.best;
  }
  report.record(numbers);
  return report;
}

function addFindings(
  report: Report,
  setups: { name: PtqRoundingModel; title: string; limit: number }[],
  rows: PtqRoundingRow[],
  float: Partial<Record<PtqRoundingModel, number>>,
): void {
  const get = (model: PtqRoundingModel, setting: string, method: PtqRoundingMethod) =>
    rows.find((r) => r.model === model && r.setting === setting && r.method === method);
  const settingsOf = (
    model: PtqRoundingModel,
  ) => [...new Set(rows.filter((r) => r.model === model).map((r) => r.setting))];
  /** A claim "method beats nearest at every setting" over every model; evidence per model. */
  const beats = (method: PtqRoundingMethod, ref: PaperReference, extra = "") => {
    const parts: string[] = [];
    let holds = true, worst = Infinity, any = false;
    for (const s of setups) {
      const cells: string[] = [];
      for (const st of settingsOf(s.name)) {
        const a = get(s.name, st, method), n = get(s.name, st, "nearest");
        if (!a || !n) continue;
        any = true;
        const d = a.accuracy - n.accuracy;
        worst = Math.min(worst, d);
        if (!(d > 0)) holds = false;
        cells.push(`${st} ${n.accuracy.toFixed(2)} -> ${a.accuracy.toFixed(2)}`);
      }
      if (cells.length) parts.push(`${s.name}: ${cells.join(", ")}`);
    }
    if (!any) return;
    const i = report.findings.length;
    report.finding(
      `${METHOD_LABEL[method]} beats round-to-nearest at every weight width`,
      holds,
      `nearest -> ${METHOD_LABEL[method]} (top-1 %): ${parts.join("; ")}${extra}`,
      { value: worst, unit: `points (smallest gain of ${METHOD_LABEL[method]} over nearest)` },
    );
    report.cite(i, ref);
  };
  beats("adaround", REFS.adaround);
  // AdaRound at W3A8 within 3 points of float (the issue's bar).
  const w3 = setups.map((s) => ({ s, r: get(s.name, "W3A8", "adaround") })).filter((x) => x.r);
  if (w3.length) {
    const gaps = w3.map((x) => float[x.s.name]! - x.r!.accuracy);
    const i = report.findings.length;
    report.finding(
      "AdaRound at W3A8 comes within 3 points of float",
      gaps.every((g) => g <= 3),
      w3.map((x, k) =>
        `${x.s.name}: ${x.r!.accuracy.toFixed(2)} % vs float ${float[x.s.name]!.toFixed(2)} %` +
        ` (${gaps[k].toFixed(2)} points)`
      ).join("; "),
      { value: Math.max(...gaps), unit: "points below float (largest over models)" },
    );
    report.cite(i, REFS.adaround);
  }
  // Stochastic: mean no better than nearest; best of N above nearest at 4 bits.
  const sto = setups.flatMap((s) =>
    settingsOf(s.name).map((st) => ({ s, st, r: get(s.name, st, "stochastic"), n: get(s.name, st, "nearest") }))
  ).filter((x) => x.r?.draws && x.n);
  if (sto.length) {
    const i = report.findings.length;
    const meanWorse = sto.every((x) => x.r!.accuracy <= x.n!.accuracy + 0.5);
    report.finding(
      "Stochastic rounding on average does no better than round-to-nearest, and varies a lot between draws",
      meanWorse,
      sto.map((x) =>
        `${x.s.name} ${x.st}: nearest ${x.n!.accuracy.toFixed(2)}, stochastic ${x.r!.accuracy.toFixed(2)} ± ${
          x.r!.draws!.sd.toFixed(2)
        } (best ${x.r!.draws!.best.toFixed(2)})`
      ).join("; "),
      {
        value: Math.max(...sto.map((x) => x.r!.accuracy - x.n!.accuracy)),
        unit: "points (largest stochastic-mean minus nearest)",
      },
    );
    report.cite(i, REFS.stochastic);
    const w4 = sto.filter((x) => x.st === "W4A8");
    if (w4.length) {
      const j = report.findings.length;
      report.finding(
        `The best of ${w4[0].r!.draws!.n} stochastic draws beats round-to-nearest at W4A8`,
        w4.every((x) => x.r!.draws!.best > x.n!.accuracy),
        w4.map((x) => `${x.s.name}: best ${x.r!.draws!.best.toFixed(2)} vs nearest ${x.n!.accuracy.toFixed(2)}`)
          .join("; "),
        { value: Math.min(...w4.map((x) => x.r!.draws!.best - x.n!.accuracy)), unit: "points (best minus nearest)" },
      );
      report.cite(j, REFS.stochastic);
    }
  }
  beats("adaquant", REFS.adaquant);
  beats("brecq", REFS.brecq);
  // BRECQ vs AdaRound at the lowest width.
  const low = (s: { name: PtqRoundingModel }) => {
    const st = settingsOf(s.name);
    return st[st.length - 1];
  };
  const br = setups.map((s) => ({ s, st: low(s), b: get(s.name, low(s), "brecq"), a: get(s.name, low(s), "adaround") }))
    .filter((x) => x.b && x.a);
  if (br.length) {
    const i = report.findings.length;
    report.finding(
      "Block reconstruction (BRECQ) does at least as well as layer-wise AdaRound at the lowest weight width",
      br.every((x) => x.b!.accuracy >= x.a!.accuracy - 0.5),
      br.map((x) => `${x.s.name} ${x.st}: BRECQ ${x.b!.accuracy.toFixed(2)} vs AdaRound ${x.a!.accuracy.toFixed(2)}`)
        .join("; "),
      { value: Math.min(...br.map((x) => x.b!.accuracy - x.a!.accuracy)), unit: "points (BRECQ minus AdaRound)" },
    );
    report.cite(i, REFS.brecq);
  }
  beats(
    "ocs",
    REFS.ocs,
    " (OCS shrinks the per-tensor range; with per-channel weights only the split channels' rows gain)",
  );
  beats("bias-correction", REFS.bias);
}

/**
 * Experiment 11 in the registry.
 *
 * @example
 * ```ts
 * import { ptqRoundingExperiment } from "./ptq_rounding.ts";
 * if (ptqRoundingExperiment.id !== "ptq-rounding" || !ptqRoundingExperiment.notebook?.includes("11_")) throw new Error("bad");
 * ```
 */
export const ptqRoundingExperiment: Experiment = {
  id: "ptq-rounding",
  title: TITLE,
  section: "post-training quantization (PTQ): beyond round-to-nearest",
  notebook: "notebooks/11_ptq_rounding.ipynb",
  run: async (options) => (await ptqRoundingComparison(options)).report,
};
