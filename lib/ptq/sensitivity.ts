/**
 * Sensitivity analysis, the way users debug a quantized model's accuracy drop (AIMET's quant analyzer, ONNX
 * Runtime's `qdq_loss_debug`): which layers lose the accuracy?
 *
 * The plan's entries are grouped by the node that owns them: a weight layer owns its weight, its int32 bias and
 * its output activation (after a fused Relu: the Relu's output); every other quantized op owns its output; graph
 * inputs own themselves. For each group the analysis measures, with the calibrated parameters of the full plan
 * (nothing is recalibrated):
 * - the metric with only that group quantized ("only this"),
 * - the metric with everything but that group quantized ("all but this"),
 * plus the metric with weights only and with activations only, and the SQNR of every quantized activation of the
 * full QDQ model against the float model. The metric is top-1 accuracy on a labelled dataset, or, for any
 * model, the SQNR (dB) of the first graph output against the float model on a reader's batches.
 *
 * {@link SensitivityResult.exclusions} turns the ranking into an exclusion list for `ptq().exclude(...)`.
 *
 * @module
 */
import { isImageDataset } from "../data/images.ts";
import { QuantlabError } from "../errors.ts";
import { batches, type ImageDataset } from "../data/batching.ts";
import type { InputFeeds, InputReader } from "../data/reader.ts";
import { exposeValues } from "../onnx/capture.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { SqnrAccumulator } from "../quant/metrics.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { limitedBatches } from "./calibrate_pass.ts";
import { evaluateAccuracy } from "./evaluate.ts";
import { fitPlannedWeights, materializeQdq } from "./materialize.ts";
import type { PtqState } from "./pass.ts";
import { type PlanEntry, QuantPlan } from "./plan.ts";

/** One group's sensitivity. */
export interface SensitivityRow {
  /** The owning node (plan label) or graph input name. */
  readonly group: string;
  /** Its op type (`input` for graph inputs). */
  readonly opType: string;
  /** Tensors the group quantizes. */
  readonly tensors: readonly string[];
  /** Metric with only this group quantized. */
  readonly onlyThis: number;
  /** Metric with every group but this one quantized. */
  readonly allButThis: number;
  /** `float - onlyThis` (how much this group alone costs; higher = more sensitive). */
  readonly drop: number;
  /** `allButThis - full` (how much keeping this group in float recovers). */
  readonly recovery: number;
}

/** Options of {@link analyzeSensitivity}. */
export interface SensitivityOptions extends SessionOptions {
  /** Examples to evaluate (default 1000 of a dataset, all of a reader). */
  readonly limit?: number;
  /** Batch size for datasets (default 250). */
  readonly batchSize?: number;
  /** Examples for the per-activation SQNR (default 256). */
  readonly sqnrExamples?: number;
  /** Progress: a message and the fraction done. */
  readonly progress?: (message: string, fraction: number) => void;
}

function ownerGroups(state: PtqState, plan: QuantPlan): Map<string, { opType: string; entries: PlanEntry[] }> {
  const g = state.model.graph;
  const ix = indexGraph(g);
  const labelOf = (i: number) => g.node[i].name || `${g.node[i].opType}#${i}`;
  const byLabel = new Map(g.node.map((_, i) => [labelOf(i), i]));
  const groups = new Map<string, { opType: string; entries: PlanEntry[] }>();
  const groupOf = new Map<string, string>();
  const add = (key: string, opType: string, e: PlanEntry) => {
    let gr = groups.get(key);
    if (!gr) groups.set(key, gr = { opType, entries: [] });
    gr.entries.push(e);
    groupOf.set(e.tensor, key);
  };
  // Shared activations (after data-movement ops) belong to their source's group.
  const shared = plan.entries.filter((e) => e.kind === "activation" && e.sharesWith !== undefined);
  for (const e of plan.entries) {
    if (e.kind === "activation" && e.sharesWith !== undefined) continue;
    if (e.kind === "weight" || e.kind === "bias") {
      const i = byLabel.get(e.node);
      add(e.node, i === undefined ? "" : g.node[i].opType, e);
      continue;
    }
    if (e.role === "input" || e.role === "constant" || e.producer === undefined) {
      // Constants belong to their consumer; inputs to themselves.
      if (e.role === "constant") {
        const c = (ix.consumers.get(e.tensor) ?? [])[0];
        if (c !== undefined) add(labelOf(c), g.node[c].opType, e);
        else add(e.tensor, "constant", e);
      } else add(e.tensor, "input", e);
      continue;
    }
    // A Relu fused after a weight layer or Add: the producer of its input owns it.
    let owner = e.producer;
    const pi = byLabel.get(e.producer);
    if (pi !== undefined && g.node[pi].opType === "Relu") {
      const src = ix.producer.get(g.node[pi].input[0]);
      if (src !== undefined && !plan.has(g.node[pi].input[0])) owner = labelOf(src);
    }
    const oi = byLabel.get(owner);
    add(owner, oi === undefined ? "" : g.node[oi].opType, e);
  }
  for (const e of shared) {
    const key = groupOf.get((e as { sharesWith: string }).sharesWith);
    if (key !== undefined) groups.get(key)!.entries.push(e);
  }
  return groups;
}

/** A plan holding only `keep` (dropping biases and shared entries whose dependencies are gone). */
function restrict(plan: QuantPlan, keep: (e: PlanEntry) => boolean): QuantPlan {
  const kept = plan.entries.filter(keep);
  // Shared activations need their source; then int32 biases need their weight and (possibly shared) input.
  const roots = new Set(kept.map((e) => e.tensor));
  const acts = kept.filter((e) => !(e.kind === "activation" && e.sharesWith && !roots.has(e.sharesWith)));
  const names = new Set(acts.map((e) => e.tensor));
  const ok = acts.filter((e) => e.kind !== "bias" || (names.has(e.weight) && names.has(e.input)));
  return new QuantPlan(ok, { model: plan.model, policy: `${plan.policy} (restricted)` });
}

async function outputSqnr(
  reference: OnnxModel,
  approx: OnnxModel,
  reader: InputReader,
  limit: number | undefined,
  session: SessionOptions,
): Promise<number> {
  const out = reference.graph.output[0].name;
  const a = await createSession(reference, { ...session, cache: false });
  const b = await createSession(approx, { ...session, cache: false });
  const inputs = [...indexGraph(reference.graph).inputs];
  const acc = new SqnrAccumulator();
  try {
    for await (const feeds of limitedBatches(reader, inputs, limit, reference.source)) {
      const x = (await a.run(feeds, [out]))[out].data as Float32Array;
      acc.add(x, (await b.run(feeds, [out]))[out].data as Float32Array);
    }
  } finally {
    await a.release();
    await b.release();
  }
  return acc.db();
}

/** The result of {@link analyzeSensitivity}. */
export class SensitivityResult {
  /** Make a result (use {@link analyzeSensitivity}). */
  constructor(
    /** What the metric is: `"top-1 accuracy"` or `"output SQNR (dB)"`. */
    readonly metric: string,
    /** Metric of the float model (Infinity for SQNR). */
    readonly float: number,
    /** Metric of the fully quantized model. */
    readonly full: number,
    /** Metric with weights only quantized. */
    readonly weightsOnly: number,
    /** Metric with activations only quantized. */
    readonly activationsOnly: number,
    /** One row per group, most sensitive first (largest drop; for SQNR, lowest only-this SQNR). */
    readonly rows: readonly SensitivityRow[],
    /** SQNR (dB) of each quantized activation of the full model against float, in graph order. */
    readonly layerSqnr: readonly { readonly tensor: string; readonly sqnrDb: number }[],
  ) {}

  /**
   * The groups to keep in float: the `top` most sensitive, or those whose "only this" drop exceeds `drop`.
   * Pass the result to `ptq(model).exclude(...)`.
   */
  exclusions(options: { top?: number; drop?: number } = {}): string[] {
    const weightRows = this.rows.filter((r) => r.opType !== "input");
    if (options.top !== undefined) return weightRows.slice(0, options.top).map((r) => r.group);
    const d = options.drop ?? 0;
    return weightRows.filter((r) => r.drop > d).map((r) => r.group);
  }

  /** A readable ranked table. */
  toString(): string {
    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : String(v));
    const lines = [
      `sensitivity (${this.metric}): float ${f(this.float)}, quantized ${f(this.full)}, weights only ${
        f(this.weightsOnly)
      }, activations only ${f(this.activationsOnly)}`,
      "rank  group                                     op                 only this   all but this",
      ...this.rows.map((r, k) =>
        `${String(k + 1).padEnd(4)}  ${r.group.slice(0, 40).padEnd(40)}  ${r.opType.padEnd(17)}  ${
          f(r.onlyThis).padStart(9)
        }   ${f(r.allButThis).padStart(12)}`
      ),
    ];
    return lines.join("\n");
  }

  /** Jupyter display: the ranked table as HTML plus the text form (the chart: lib/viz `sensitivityChart`). */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    const esc = (v: string) => v.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : String(v));
    const rows = this.rows.map((r, k) =>
      `<tr><td>${k + 1}</td><td>${esc(r.group)}</td><td>${esc(r.opType)}</td><td>${f(r.onlyThis)}</td><td>${
        f(r.allButThis)
      }</td></tr>`
    ).join("");
    return {
      "text/html":
        `<p><b>Sensitivity</b> (${esc(this.metric)}): float ${f(this.float)}, quantized ${f(this.full)}, weights only ${
          f(this.weightsOnly)
        }, activations only ${f(this.activationsOnly)}</p>` +
        `<table><thead><tr><th>rank</th><th>group</th><th>op</th><th>only this</th><th>all but this</th></tr></thead>` +
        `<tbody>${rows}</tbody></table>`,
      "text/plain": this.toString(),
    };
  }

  /** Rows for charts and tables. */
  toJSON(): Record<string, unknown> {
    return {
      metric: this.metric,
      float: this.float,
      full: this.full,
      weightsOnly: this.weightsOnly,
      activationsOnly: this.activationsOnly,
      rows: this.rows,
      layerSqnr: this.layerSqnr,
    };
  }
}

/**
 * Run the analysis on a calibrated state (`await ptq(model)...calibrateOn(data).state()`), see the module doc.
 *
 * @example
 * ```ts ignore
 * const run = ptq(model).weights(quantizer().int(4).perChannel()).calibrateOn(train, { count: 512 });
 * const s = await analyzeSensitivity(await run.state(), test, { limit: 1000 });
 * console.log(String(s));
 * const better = run.exclude(...s.exclusions({ top: 2 }));
 * ```
 */
export async function analyzeSensitivity(
  state: PtqState,
  data: ImageDataset | InputReader,
  options: SensitivityOptions = {},
): Promise<SensitivityResult> {
  const plan = state.plan;
  if (!plan) throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: sensitivity needs a calibrated state`);
  const session: SessionOptions = { backend: options.backend, threads: options.threads };
  const float = state.model;
  const labelled = isImageDataset(data);
  const limit = options.limit ?? (labelled ? Math.min(1000, (data as ImageDataset).count) : undefined);
  const bs = options.batchSize ?? 250;
  const metricOf = async (m: OnnxModel): Promise<number> => {
    if (labelled) {
      return (await evaluateAccuracy(m, data as ImageDataset, { ...session, batchSize: bs, limit })).top1;
    }
    return await outputSqnr(float, m, data as InputReader, limit, session);
  };
  // Fit every planned weight once; each restricted plan re-uses the fits (only the entries differ).
  const weightFits = fitPlannedWeights(state);
  const quantizedWith = (p: QuantPlan) => materializeQdq({ ...state, plan: p, weightFits }).model;
  const groups = [...ownerGroups(state, plan)];
  const total = 4 + 2 * groups.length;
  let done = 0;
  const tick = (what: string) => options.progress?.(`sensitivity: ${what}`, ++done / total);
  const floatMetric = labelled ? await metricOf(float) : Infinity;
  tick("float");
  const full = await metricOf(quantizedWith(plan));
  tick("fully quantized");
  const weightsOnly = await metricOf(quantizedWith(restrict(plan, (e) => e.kind === "weight")));
  tick("weights only");
  const activationsOnly = await metricOf(quantizedWith(restrict(plan, (e) => e.kind === "activation")));
  tick("activations only");
  const rows: SensitivityRow[] = [];
  for (const [group, { opType, entries }] of groups) {
    const mine = new Set(entries.map((e) => e.tensor));
    const only = await metricOf(quantizedWith(restrict(plan, (e) => mine.has(e.tensor))));
    tick(`${group} only`);
    const allBut = await metricOf(quantizedWith(restrict(plan, (e) => !mine.has(e.tensor))));
    tick(`all but ${group}`);
    rows.push({
      group,
      opType,
      tensors: [...mine],
      onlyThis: only,
      allButThis: allBut,
      drop: labelled ? floatMetric - only : -only,
      recovery: labelled ? allBut - full : allBut - full,
    });
  }
  rows.sort((a, b) => b.drop - a.drop);
  const layerSqnr = await activationSqnr(
    float,
    quantizedWith(plan),
    plan,
    data,
    options.sqnrExamples ?? 256,
    bs,
    session,
  );
  return new SensitivityResult(
    labelled ? "top-1 accuracy" : "output SQNR (dB)",
    floatMetric,
    full,
    weightsOnly,
    activationsOnly,
    rows,
    layerSqnr,
  );
}

async function activationSqnr(
  float: OnnxModel,
  qdq: OnnxModel,
  plan: QuantPlan,
  data: ImageDataset | InputReader,
  examples: number,
  bs: number,
  session: SessionOptions,
): Promise<{ tensor: string; sqnrDb: number }[]> {
  const produced = new Set(float.graph.node.flatMap((n) => n.output));
  const names = plan.activations.filter((e) => produced.has(e.tensor)).map((e) => e.tensor);
  if (!names.length) return [];
  const inputs = [...indexGraph(float.graph).inputs];
  const a = await createSession(exposeValues(float, names, { replace: true }), { ...session, cache: false });
  const b = await createSession(exposeValues(qdq, names, { replace: true }), { ...session, cache: false });
  const accs = names.map(() => new SqnrAccumulator());
  const feedsOf = async function* (): AsyncGenerator<InputFeeds> {
    if (isImageDataset(data)) {
      if (inputs.length !== 1) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `${float.source}: a dataset feeds one input, the model has ${inputs.length}`,
        );
      }
      for (const batch of batches(data, { batchSize: bs, count: Math.min(examples, data.count) })) {
        yield { [inputs[0]]: batch.x };
      }
    } else yield* limitedBatches(data, inputs, examples, float.source);
  };
  try {
    for await (const feeds of feedsOf()) {
      const r = await a.run(feeds), q = await b.run(feeds);
      names.forEach((t, k) => accs[k].add((r[t] as Tensor<"float32">).data, (q[t] as Tensor<"float32">).data));
    }
  } finally {
    await a.release();
    await b.release();
  }
  return names.map((tensor, k) => ({ tensor, sqnrDb: accs[k].db() }));
}
