/**
 * "Bring your own model": quantlab's PTQ on a network it did not build, against PyTorch.
 *
 * `tests/fixtures/make_byom.py` (Debian's python3-torch 1.13) trains a residual Fashion-MNIST classifier that
 * is not one of quantlab's (other depth and widths, BatchNorm, its own normalisation `(p/255 - 0.5) / 0.25`),
 * exports it twice (BatchNorm folded by PyTorch's exporter, and kept with `TrainingMode.PRESERVE`), and records
 * PyTorch's own min-max PTQ accuracies on the full 10,000-image test set (`datasets/models/byom_reference.json`;
 * the procedure is written down in the script: BN folded, per-channel or per-tensor symmetric weights through
 * `PerChannelMinMaxObserver`/`MinMaxObserver`, uint activations through `MinMaxObserver` on the first 1,024
 * training images, placed as quantlab's default plan places them, int32 biases at `s_x * s_w`, round half to
 * even). quantlab states the same procedure as a plan: `ptq(model).weights(...).activations(...)` with the
 * model's preprocessing declared on the dataset; A32 rows are weights-only (`activations(false)`).
 *
 * @module
 */
import { type ImageDataset, subset } from "../data/batching.ts";
import { withNormalization } from "../data/images.ts";
import { QuantlabError } from "../errors.ts";
import { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { evaluateAccuracy } from "../ptq/evaluate.ts";
import { ptq, type PtqPipeline } from "../ptq/pipeline.ts";
import { quantizer } from "../quant/quantizer.ts";

/** One row of PyTorch's reference. */
export interface ByomRow {
  /** Weight granularity. */
  readonly weights: "per-channel" | "per-tensor";
  /** Weight bits. */
  readonly weightBits: number;
  /** Activation bits (32 = float activations). */
  readonly activationBits: number;
  /** PyTorch's top-1 on the 10,000 test images. */
  readonly top1: number;
}

/** The committed PyTorch reference (the parts quantlab reads). */
export interface ByomReference {
  /** PyTorch float top-1. */
  readonly float: number;
  /** The model's own input normalisation. */
  readonly normalization: { readonly mean: number; readonly std: number };
  /** Calibration images (first `count` training images) and batch size. */
  readonly calibration: { readonly count: number; readonly batchSize: number };
  /** The PTQ rows. */
  readonly rows: readonly ByomRow[];
}

/** One row compared. */
export interface ByomComparison extends ByomRow {
  /** quantlab's top-1 on the same images. */
  readonly quantlab: number;
  /** `quantlab - PyTorch`, in points. */
  readonly diff: number;
}

/**
 * Read the committed reference and the two exported models (relative to this module, so it works from a URL).
 *
 * @example
 * ```ts
 * import { loadByom } from "./byom.ts";
 * const b = await loadByom();
 * if (b.reference.rows.length !== 8 || !b.bn.graph.node.some((n) => n.opType === "BatchNormalization")) throw new Error("bad");
 * ```
 */
export async function loadByom(): Promise<{ reference: ByomReference; folded: OnnxModel; bn: OnnxModel }> {
  const read = async (rel: string) => {
    const url = new URL(`../../datasets/models/${rel}`, import.meta.url);
    const res = await fetch(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new QuantlabError("IO", `cannot read ${url}: HTTP ${res.status}`);
    }
    return new Uint8Array(await res.arrayBuffer());
  };
  const reference = JSON.parse(new TextDecoder().decode(await read("byom_reference.json"))) as ByomReference;
  const folded = OnnxModel.decode(await read("byom_folded.onnx"), "datasets/models/byom_folded.onnx");
  const bn = OnnxModel.decode(await read("byom_bn.onnx"), "datasets/models/byom_bn.onnx");
  return { reference, folded, bn };
}

/**
 * The PTQ recipe of one reference row, as quantlab states PyTorch's procedure.
 *
 * @example
 * ```ts
 * import { byomPipeline } from "./byom.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const p = byomPipeline(new OnnxModel(emptyModel(13)), { weights: "per-tensor", weightBits: 4, activationBits: 32, top1: 0 });
 * if (!p.toString().includes("int4") || !p.toString().includes("activations=false")) throw new Error(p.toString());
 * ```
 */
export function byomPipeline(model: OnnxModel, row: ByomRow): PtqPipeline {
  const w = quantizer().int(row.weightBits).symmetric();
  return ptq(model)
    .weights(row.weights === "per-channel" ? w.perChannel() : w.perTensor())
    .activations(row.activationBits < 32 ? quantizer().uint(row.activationBits).asymmetric() : false);
}

/**
 * Run every reference row through quantlab on the same data: calibration on the first `calibration.count`
 * training images, top-1 on `test` (both with the model's own normalisation applied here).
 *
 * @example
 * ```ts ignore
 * const { reference, folded } = await loadByom();
 * const rows = await compareByom(folded, reference, train, test);
 * console.log(rows.map((r) => `${r.weightBits}/${r.activationBits} ${r.weights}: ${r.diff.toFixed(2)}`));
 * ```
 */
export async function compareByom(
  model: OnnxModel,
  reference: ByomReference,
  train: ImageDataset,
  test: ImageDataset,
  options: { session?: SessionOptions; rows?: readonly ByomRow[]; onRow?: (r: ByomComparison) => void } = {},
): Promise<ByomComparison[]> {
  const norm = { mean: [reference.normalization.mean], std: [reference.normalization.std] };
  const trainN = withNormalization(train, norm), testN = withNormalization(test, norm);
  const calib = subset(trainN, 0, reference.calibration.count);
  const out: ByomComparison[] = [];
  for (const row of options.rows ?? reference.rows) {
    const q = await byomPipeline(model, row)
      .calibrateOn(calib, { count: reference.calibration.count })
      .batchSize(reference.calibration.batchSize)
      .session(options.session ?? {})
      .quantize();
    const top1 = (await evaluateAccuracy(q.qdq, testN, { ...options.session, batchSize: 500 })).top1;
    const r = { ...row, quantlab: top1, diff: 100 * (top1 - row.top1) };
    out.push(r);
    options.onRow?.(r);
  }
  return out;
}
