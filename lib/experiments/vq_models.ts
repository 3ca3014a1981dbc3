/**
 * Experiment 15, model-level vector quantization: the Fashion-MNIST ResNet-8 with every Conv/Gemm weight but the
 * first convolution (144 weights, kept in float by every method, as kill-the-bits does) quantized at about 0.5, 1,
 * 2 and 4 bits per weight (codes plus float16 codebooks, or float32 scales/levels for scalar methods), by uniform scalar (per-channel symmetric),
 * Lloyd-Max non-uniform, ternary (TWN, per channel), Deep Compression k-means weight sharing with and without
 * centroid fine-tuning, and kill-the-bits product quantization (activation-aware EM, model-wide bit budget) with
 * and without fine-tuning (layer-wise, then global, BatchNorm re-estimated). Every vector-quantized model is
 * exported as compressed ONNX (`Gather(codebook, codes)`) and its file evaluated too.
 *
 * @module
 */
import { subset } from "../data/batching.ts";
import { ternary } from "../extreme/ternary.ts";
import { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { nonUniform } from "../nonuniform/nonuniform_quantizer.ts";
import { progress } from "../notebook/progress.ts";
import { table } from "../notebook/table.ts";
import { evaluateAccuracy } from "../ptq/evaluate.ts";
import { ptq } from "../ptq/pipeline.ts";
import { quantizer } from "../quant/quantizer.ts";
import type { WeightQuantizer } from "../quant/weight_quantizer.ts";
import { lineChart } from "../viz/charts.ts";
import { weightSites } from "../vqmodel/fit.ts";
import { type VqModel, vqModel, type VqModelBuilder } from "../vqmodel/vq_model.ts";
import { loadExperimentModel, loadFashionOrNote, type OnnxExperimentOptions, skippedReport } from "./ptq_onnx.ts";
import type { Experiment } from "./registry.ts";
import { type PaperReference, Report } from "./report.ts";

const ID = "vq-models";
const TITLE = "15 · Vector quantization of a trained network (Deep Compression, And the Bit Goes Down)";
const CLAIM = "At equal bits per weight, product quantization keeps more accuracy than scalar quantization";
const SECTION = "survey §IV-F Vector quantization";

/** Options of {@link vqModelsComparison}. */
export interface VqModelsOptions extends OnnxExperimentOptions {
  /** Global fine-tuning steps (default 200; quick 15). */
  readonly steps?: number;
  /** Test images (default 3,000; quick 500). */
  readonly testImages?: number;
  /** Bits points to run (default 0.5, 1, 2 and 4). */
  readonly targets?: readonly number[];
  /**
   * Earlier results of this comparison (other bits points) to merge: the returned report covers them all (so a
   * notebook can run one bits point per cell).
   */
  readonly merge?: readonly VqModelsComparison[];
}

/** One quantized model. */
export interface VqModelsRow {
  /** Method label. */
  readonly method: string;
  /** Family: scalar methods, k-means sharing or PQ. */
  readonly family: "scalar" | "kmeans" | "pq";
  /** Whether codebooks were fine-tuned. */
  readonly finetuned: boolean;
  /** The bits point it belongs to (0.5, 1, 2, 4). */
  readonly target: number;
  /** Bits per quantized weight, codes plus tables. */
  readonly bitsPerWeight: number;
  /** Float32 weight bits over stored bits (all Conv/Gemm weights; the float first conv at 32 bits). */
  readonly ratio: number;
  /** Top-1 accuracy (%) of the in-memory model. */
  readonly top1: number;
  /** Bytes of the compressed ONNX file (vector-quantized models only). */
  readonly fileBytes?: number;
  /** Top-1 (%) of the compressed ONNX file read back (vector-quantized models only). */
  readonly exportedTop1?: number;
}

/** Result of {@link vqModelsComparison}. */
export interface VqModelsComparison {
  /** The report. */
  readonly report: Report;
  /** All rows. */
  readonly rows: readonly VqModelsRow[];
  /** Float accuracy (%). */
  readonly floatTop1?: number;
  /** The fine-tuned PQ model at about 1 bit per weight (its layers are in the report's "layers" table). */
  readonly example?: VqModel;
  /** The settings the rows were made with (what the report states). */
  readonly settings?: VqModelsSettings;
}

/** The settings of a {@link vqModelsComparison} run. */
export interface VqModelsSettings {
  /** Model origin. */
  readonly origin: string;
  /** Test images. */
  readonly limit: number;
  /** Global fine-tuning steps. */
  readonly steps: number;
  /** Layer-wise steps per PQ layer. */
  readonly layerSteps: number;
  /** Quick preset. */
  readonly quick: boolean;
  /** Training images. */
  readonly trainImages: number;
  /** BatchNorm re-estimation images. */
  readonly bnImages: number;
  /** Float model file bytes. */
  readonly floatBytes: number;
}

const STOCK: PaperReference = {
  section: SECTION,
  source: `"And the Bit Goes Down" (Stock et al. 2020), facebookresearch/kill-the-bits (via PAPERS.md)`,
  setting: "ImageNet ResNet-18 / ResNet-50, PQ (block 9/18, 256 centroids), layer-wise + global fine-tuning",
  result: "ResNet-18 69.76 % -> 65.81 % at 29x, 61.18 % at 43x; ResNet-50 76.15 % -> 73.79 % at 19x",
  verified: false,
};

const DEEP_COMPRESSION: PaperReference = {
  section: SECTION,
  source: "Deep Compression (Han, Mao & Dally 2016) (via PAPERS.md)",
  setting: "per-layer k-means, linear initialisation, centroid gradient = sum of member gradients",
  result: "stated as the method; our check is whether fine-tuning the centroids recovers accuracy",
  verified: false,
};

/** Run the comparison (see the module doc). */
export async function vqModelsComparison(options: VqModelsOptions = {}): Promise<VqModelsComparison> {
  const quick = options.quick ?? false, seed = options.seed ?? 0;
  const session: SessionOptions = options.session ?? {};
  const { model, origin } = await loadExperimentModel(options.model);
  const data = await loadFashionOrNote();
  if ("note" in data) return { report: skippedReport(ID, TITLE, CLAIM, data.note), rows: [] };
  const steps = options.steps ?? (quick ? 10 : 150);
  const layerSteps = quick ? 0 : Math.max(1, Math.round(steps / 8));
  const bnImages = quick ? 256 : 1024;
  const limit = Math.min(options.testImages ?? (quick ? 500 : 3000), data.test.count);
  const train = subset(data.train, 0, Math.min(data.train.count, quick ? 2000 : 20000));
  const targets = [...(options.targets ?? [0.5, 1, 2, 4])];
  const first = weightSites(model)[0];
  const evalModel = async (m: OnnxModel) =>
    100 * (await evaluateAccuracy(m, data.test, { ...session, limit, batchSize: 500 })).top1;

  const scalar: { method: string; target: number; q: WeightQuantizer }[] = [];
  for (const b of targets.filter((t) => t >= 1)) {
    if (b >= 2) scalar.push({ method: `uniform int${b}`, target: b, q: quantizer().int(b).symmetric().perChannel(0) });
    scalar.push({ method: `Lloyd-Max ${b}-bit`, target: b, q: nonUniform().levels("lloyd-max").bits(b) });
    if (b === 2) scalar.push({ method: "ternary (TWN)", target: 2, q: ternary().twn().perChannel(0) });
  }
  const vqs: { method: string; family: "kmeans" | "pq"; target: number; finetuned: boolean; b: VqModelBuilder }[] = [];
  const base = vqModel(model).seed(seed).session(session).data(train, { batchSize: 32, activationBatches: 4 })
    .skipFirst(true);
  for (const t of targets) {
    if (t >= 1) {
      const km = base.kmeans({ bits: t, codebookBits: 16 });
      vqs.push({ method: `k-means ${t}-bit`, family: "kmeans", target: t, finetuned: false, b: km });
      vqs.push({
        method: `k-means ${t}-bit + fine-tune`,
        family: "kmeans",
        target: t,
        finetuned: true,
        b: km.finetune({ steps }),
      });
    }
    // PQ: kill-the-bits' blocks (18/8 at 0.5 bits, 9/4 at 1 and 2, 2 at 4 bits), the model-wide budget
    const blocks = t <= 0.5 ? { largeBlocks: true } : t >= 4 ? { blockSizes: pairBlocks(model, first.weight) } : {};
    const pq = base.pq({ targetBits: t, ...blocks, samples: quick ? 1024 : 4096, codebookBits: 16 });
    vqs.push({ method: `PQ ${t} bit`, family: "pq", target: t, finetuned: false, b: pq });
    vqs.push({
      method: `PQ ${t} bit + fine-tune`,
      family: "pq",
      target: t,
      finetuned: true,
      b: pq.layerwise({ steps: layerSteps }).batchNorm({ images: bnImages }).finetune({ steps }),
    });
  }
  const bar = progress(1 + scalar.length + vqs.length, { label: "15 vq models", sink: options.progress });
  const floatTop1 = await evalModel(model);
  await bar.tick();
  const rows: VqModelsRow[] = [];
  const totalWeights = weightSites(model).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  const firstSize = first.shape.reduce((x, y) => x * y, 1);
  for (const s of scalar) {
    const m = await ptq(model).weights(s.q).activations(false).exclude(nodeName(model, first.weight)).session(session)
      .quantize();
    const bits = m.bitsPerWeight;
    const ratio = (32 * totalWeights) / (bits * (totalWeights - firstSize) + 32 * firstSize);
    rows.push({
      method: s.method,
      family: "scalar",
      finetuned: false,
      target: s.target,
      bitsPerWeight: bits,
      ratio,
      top1: await evalModel(m.qdq),
    });
    await bar.tick();
  }
  let example: VqModel | undefined;
  for (const v of vqs) {
    const q = await v.b.quantize();
    if (v.family === "pq" && v.finetuned && v.target === 1) example = q;
    const bytes = q.exportCompressed().model.encode();
    const back = OnnxModel.decode(bytes, `${v.method} (compressed)`);
    rows.push({
      method: v.method,
      family: v.family,
      finetuned: v.finetuned,
      target: v.target,
      bitsPerWeight: q.bitsPerWeight,
      ratio: q.compressionRatio,
      top1: await evalModel(q.model),
      fileBytes: bytes.length,
      exportedTop1: await evalModel(back),
    });
    await bar.tick();
  }
  await bar.finish();
  const settings: VqModelsSettings = {
    origin,
    limit,
    steps,
    layerSteps,
    quick,
    trainImages: train.count,
    bnImages,
    floatBytes: model.encode().length,
  };
  const all = [...(options.merge ?? []).flatMap((m) => m.rows), ...rows].sort((a, b) => a.target - b.target);
  example ??= options.merge?.find((m) => m.example)?.example;
  const report = buildReport(all, floatTop1, settings);
  if (example) {
    report.table(
      "layers",
      table(
        example.summary().map((l) => ({ ...l, bitsPerWeight: Number(l.bitsPerWeight.toFixed(3)) })),
        { title: "PQ ~1 bit + fine-tune: centroids and block size per layer (model-wide budget)" },
      ),
    );
  }
  return { report, rows: all, floatTop1, example, settings };
}

/** Block size 2 for every quantized weight (the 4-bit PQ point: 256 centroids of 2 values = 4 bits a weight). */
function pairBlocks(model: OnnxModel, skip: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of weightSites(model)) if (s.weight !== skip) out[s.weight] = 2;
  return out;
}

/** The label of the node reading `weight` (for ptq's exclude). */
function nodeName(model: OnnxModel, weight: string): string {
  return model.graph.node.find((n) => n.input[1] === weight)!.name;
}

function buildReport(
  rows: VqModelsRow[],
  floatTop1: number,
  s: VqModelsSettings,
): Report {
  const f2 = (v: number) => Number(v.toFixed(2));
  const report = new Report(ID, TITLE, CLAIM);
  report.text(
    `Model: ${s.origin}, float accuracy ${floatTop1.toFixed(2)} % on ${s.limit} Fashion-MNIST test images` +
      ` (float file ${(s.floatBytes / 1024).toFixed(1)} KiB). The first convolution stays in float for every method;` +
      " bits per weight count codes plus tables over the quantized weights: float16 codebooks for k-means and PQ" +
      " (kill-the-bits stores its centroids in float16), float32 scales/levels for the scalar methods. Fine-tuning: " +
      `${s.steps} Adam steps (lr 1e-3, batch 32, KL to the float model) on ${s.trainImages} training images` +
      (s.layerSteps
        ? `; PQ also ${s.layerSteps} layer-wise steps per layer and BatchNorm re-estimated on ${s.bnImages} images`
        : `; PQ BatchNorm re-estimated on ${s.bnImages} images`) +
      `${s.quick ? " (quick preset)" : ""}. PQ centroids per layer: a model-wide bit budget (allocateCentroids), ` +
      "at most kill-the-bits' rule (256, and blocks / 4 for small layers).",
  );
  report.table(
    "accuracy",
    table(
      rows.map((r) => ({
        method: r.method,
        "bits/weight": Number(r.bitsPerWeight.toFixed(3)),
        ratio: Number(r.ratio.toFixed(1)),
        "top-1 %": f2(r.top1),
        "file KiB": r.fileBytes !== undefined ? Number((r.fileBytes / 1024).toFixed(1)) : "",
        "file ratio": r.fileBytes !== undefined ? Number((s.floatBytes / r.fileBytes).toFixed(1)) : "",
        "file top-1 %": r.exportedTop1 !== undefined ? f2(r.exportedTop1) : "",
      })),
      { title: "Accuracy, bits per weight, compression and compressed-ONNX file size" },
    ),
  );
  report.chart(
    "accuracy",
    lineChart(
      rows.map((r) => ({
        bits: Number(r.bitsPerWeight.toFixed(3)),
        accuracy: f2(r.top1),
        method: r.family === "scalar" ? r.method.replace(/ .*/, "") : r.family === "pq" ? "PQ" : "k-means",
        tuned: r.finetuned ? "fine-tuned" : "not fine-tuned",
      })),
      {
        title: "Accuracy against bits per weight (codebooks counted)",
        subtitle: `ResNet-8, Fashion-MNIST; float ${floatTop1.toFixed(2)} %`,
        x: { field: "bits", title: "bits per weight", scale: "log" },
        y: { field: "accuracy", title: "top-1 accuracy (%)" },
        series: { field: "method", title: "method" },
        dash: { field: "tuned", title: "codebooks" },
      },
    ),
  );
  const exportOk = rows.every((r) => r.exportedTop1 === undefined || r.exportedTop1 === r.top1);
  report.finding(
    "The compressed ONNX file (Gather(codebook, codes)) matches the in-memory model exactly",
    exportOk,
    rows.filter((r) => r.exportedTop1 !== undefined).map((r) =>
      `${r.method}: ${f2(r.top1)} % in memory, ${f2(r.exportedTop1!)} % from ${(r.fileBytes! / 1024).toFixed(1)} KiB`
    ).join("; "),
  );
  report.cite(report.findings.length - 1, {
    section: SECTION,
    source: "Deep Compression (Han, Mao & Dally 2016), storage format (via PAPERS.md)",
    setting: "weights stored as per-layer codebooks plus b-bit indices; compression ratio counts the codebooks",
    result: "no accuracy number: the papers report sizes of the index + codebook format; ours is that format as " +
      "standard ONNX (Gather), checked to give the in-memory model's accuracy",
    verified: false,
  });
  const points = [...new Set(rows.map((r) => r.target))].sort((a, b) => a - b);
  for (const tuned of [false, true]) {
    for (const t of points) {
      const pq = rows.find((r) => r.family === "pq" && r.target === t && r.finetuned === tuned);
      if (!pq) continue;
      // scalar competitors at no fewer bits: untuned scalar methods and k-means (tuned only against tuned k-means)
      const rivals = rows.filter((r) =>
        r.family !== "pq" && r.bitsPerWeight >= pq.bitsPerWeight - 1e-9 &&
        (tuned ? r.family === "kmeans" && r.finetuned : !r.finetuned) && r.target <= Math.max(1, t)
      );
      if (rivals.length === 0) continue;
      const best = rivals.reduce((a, b) => (b.top1 > a.top1 ? b : a));
      const margin = pq.top1 - best.top1;
      const i = report.findings.length;
      report.finding(
        `${CLAIM} (~${t} bit${t === 1 ? "" : "s"}, ${tuned ? "after" : "before"} fine-tuning)`,
        margin > 0,
        `${pq.method}: ${f2(pq.top1)} % at ${pq.bitsPerWeight.toFixed(3)} bits/weight (${pq.ratio.toFixed(1)}x) vs ` +
          `best scalar with at least as many bits, ${best.method}: ${f2(best.top1)} % at ` +
          `${best.bitsPerWeight.toFixed(3)} bits/weight; float ${f2(floatTop1)} %`,
        { value: Number(margin.toFixed(2)), unit: "points" },
      );
      report.cite(i, STOCK);
    }
  }
  const kmGain = points.flatMap((t) => {
    const a = rows.find((r) => r.family === "kmeans" && r.target === t && !r.finetuned);
    const b = rows.find((r) => r.family === "kmeans" && r.target === t && r.finetuned);
    return a && b ? [{ t, before: a.top1, after: b.top1 }] : [];
  });
  if (kmGain.length) {
    const i = report.findings.length;
    report.finding(
      "Fine-tuning the shared centroids (Deep Compression) recovers accuracy lost to k-means weight sharing",
      kmGain.every((g) => g.after >= g.before),
      kmGain.map((g) => `${g.t} bit${g.t === 1 ? "" : "s"}: ${f2(g.before)} % -> ${f2(g.after)} %`).join("; "),
    );
    report.cite(i, DEEP_COMPRESSION);
  }
  return report;
}

/**
 * Experiment 15 in the registry.
 *
 * @example
 * ```ts
 * import { vqModelsExperiment } from "./vq_models.ts";
 * if (vqModelsExperiment.id !== "vq-models") throw new Error("bad");
 * ```
 */
export const vqModelsExperiment: Experiment = {
  id: ID,
  title: TITLE,
  section: "vector quantization (VQ)",
  notebook: "notebooks/15_vector_quantization_models.ipynb",
  run: async (options) => (await vqModelsComparison(options)).report,
};
