/**
 * Experiment 09, simulated vs integer-only inference on ONNX Runtime: the fake-quantized QDQ model against the
 * integer-operator (QOperator: QLinearConv, QGemm, QLinearAdd, ...) model of the same W8A8 quantization of a
 * Fashion-MNIST ResNet-8: output agreement in LSB, accuracy, model sizes, ORT latency on onnxruntime-node and
 * onnxruntime-web, and the dyadic requantization parameters (TFLite's `M ~ M0 * 2^-n`) of every integer layer.
 *
 * Model and data as in experiment 08 (`loadExperimentModel`); without Fashion-MNIST the report says so.
 *
 * @module
 */
import { batches, subset } from "../data/batching.ts";
import { quantizeMultiplier } from "../integer/dyadic.ts";
import { table } from "../notebook/table.ts";
import { progress } from "../notebook/progress.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, loadBackend, type SessionOptions } from "../onnx/session.ts";
import { tensorValues } from "../onnx/tensor_data.ts";
import { evaluateAccuracy, modelSize } from "../ptq/evaluate.ts";
import { ptq } from "../ptq/pipeline.ts";
import { quantizer } from "../quant/quantizer.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { dotPlotChart } from "../viz/charts.ts";
import type { Experiment } from "./registry.ts";
import { Report } from "./report.ts";
import { fixed } from "./sources.ts";
import { loadExperimentModel, loadFashionOrNote, type OnnxExperimentOptions, skippedReport } from "./ptq_onnx.ts";

/** Requantization parameters of one integer layer. */
export interface RequantLayer {
  /** Integer node name. */
  readonly node: string;
  /** Its op (QLinearConv, QGemm, QLinearMatMul). */
  readonly op: string;
  /** Output channels (scales). */
  readonly channels: number;
  /** Smallest and largest real multiplier `M = s_x * s_w[c] / s_y`. */
  readonly mMin: number;
  /** See `mMin`. */
  readonly mMax: number;
  /** `M0` (int32 in [2^30, 2^31)) and right shift `n` of channel 0. */
  readonly m0: number;
  /** See `m0`. */
  readonly shift: number;
  /** Range of right shifts over channels. */
  readonly shiftMin: number;
  /** See `shiftMin`. */
  readonly shiftMax: number;
  /** Largest relative error `|M0 * 2^-n - M| / M` over channels. */
  readonly maxRelError: number;
}

/**
 * The dyadic requantization parameters of every QLinearConv / QLinearMatMul / QGemm of a QOperator model:
 * per output channel `M = s_x * s_w[c] / s_y`, quantized with TFLite's `quantizeMultiplier`.
 *
 * @example
 * ```ts ignore
 * import { requantizationTable } from "./integer_only.ts";
 * const rows = requantizationTable((await pipeline.quantize()).qoperator.model);
 * ```
 */
export function requantizationTable(model: OnnxModel): RequantLayer[] {
  const ix = indexGraph(model.graph);
  const vals = (name: string) => tensorValues(ix.initializers.get(name)!) as Float32Array;
  const out: RequantLayer[] = [];
  for (const n of model.graph.node) {
    let xs: string, ws: string, ys: string;
    if (n.opType === "QLinearConv" || n.opType === "QLinearMatMul") [xs, ws, ys] = [n.input[1], n.input[4], n.input[6]];
    else if (n.opType === "QGemm") [xs, ws, ys] = [n.input[1], n.input[4], n.input[7]];
    else continue;
    if (!ys || !ix.initializers.has(ys)) continue;
    const sx = vals(xs)[0], sy = vals(ys)[0], sw = vals(ws);
    let mMin = Infinity, mMax = 0, worst = 0, shiftMin = Infinity, shiftMax = -Infinity;
    let first = { multiplier: 0, rightShift: 0 };
    for (let c = 0; c < sw.length; c++) {
      const m = (sx * sw[c]) / sy;
      const q = quantizeMultiplier(m, `${n.name} channel ${c}`);
      if (c === 0) first = q;
      mMin = Math.min(mMin, m);
      mMax = Math.max(mMax, m);
      shiftMin = Math.min(shiftMin, q.rightShift);
      shiftMax = Math.max(shiftMax, q.rightShift);
      worst = Math.max(worst, Math.abs(q.multiplier * 2 ** -q.rightShift - m) / m);
    }
    out.push({
      node: n.name,
      op: n.opType,
      channels: sw.length,
      mMin,
      mMax,
      m0: first.multiplier,
      shift: first.rightShift,
      shiftMin,
      shiftMax,
      maxRelError: worst,
    });
  }
  return out;
}

async function medianMs(run: () => Promise<unknown>, iterations: number): Promise<number> {
  await run();
  await run();
  const t: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await run();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[t.length >> 1];
}

/**
 * Run experiment 09 (see the module doc). Claims checked: integer-only inference matches the simulated (QDQ)
 * model to within rounding (1 LSB of the output scale); and it runs faster than float.
 *
 * @example
 * ```ts ignore
 * import { integerOnlyComparison } from "./integer_only.ts";
 * const r = await integerOnlyComparison({ quick: true, progress: "none" });
 * console.log(r.findingsText());
 * ```
 */
export async function integerOnlyComparison(options: OnnxExperimentOptions = {}): Promise<Report> {
  const quick = options.quick ?? false;
  const title = "09 · Simulated (QDQ) vs integer-only (QOperator) inference on ONNX Runtime";
  const claim = "Integer-only inference (integer kernels, dyadic requantization) matches fake-quantized simulation " +
    "to within rounding and runs faster than float.";
  const data = await loadFashionOrNote();
  if ("note" in data) return skippedReport("integer-only", title, claim, data.note);
  const session: SessionOptions = { ...options.session };
  const { model, origin } = await loadExperimentModel(options.model);
  const testCount = quick ? 500 : 2000;
  const iterations = quick ? 5 : 15;
  const p = progress(5, { label: "09 integer only", sink: options.progress });
  const pipeline = ptq(model)
    .weights(quantizer().int(8).symmetric().perChannel())
    .activations(quantizer().uint(8).asymmetric())
    .calibrateOn(data.train, { count: quick ? 256 : 512 })
    .batchSize(250)
    .session(session);
  const m = await pipeline.quantize();
  await p.tick(1, "quantized");
  const report = new Report("integer-only", title, claim);
  const qop = m.qoperator.model;
  const counts = new Map<string, number>();
  for (const n of qop.graph.node) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
  report.text(
    `Model: ${origin}, BatchNorm folded, quantized W8A8 (int8 symmetric per-channel weights, uint8 asymmetric ` +
      `min-max activations calibrated on ${quick ? 256 : 512} Fashion-MNIST training images). The QOperator model ` +
      `holds ${[...counts].map(([k, v]) => `${v} ${k}`).join(", ")}; ${
        m.qoperator.float.length
          ? `left in float: ${m.qoperator.float.map((f) => f.node).join(", ")}`
          : "nothing is left in float"
      }. Only the input QuantizeLinear and the output DequantizeLinear remain.`,
  );

  // Agreement and accuracy.
  const test = subset(data.test, 0, testCount);
  const out = m.float.graph.output[0].name;
  const outScale = m.activationParams.get(out)!.scale[0];
  const a = await createSession(m.qdq, session), b = await createSession(qop, session);
  const input = a.inputNames[0];
  let worst = 0, same = 0, total = 0, argSame = 0, images = 0;
  for (const batch of batches(test, { batchSize: 250 })) {
    const x = (await a.run({ [input]: batch.x }))[out], y = (await b.run({ [input]: batch.x }))[out];
    const dx = x.data as Float32Array, dy = y.data as Float32Array;
    const classes = x.shape[1];
    for (let i = 0; i < dx.length; i++) {
      const d = Math.abs(dx[i] - dy[i]) / outScale;
      worst = Math.max(worst, d);
      if (d < 0.5) same++;
    }
    total += dx.length;
    for (let r = 0; r < x.shape[0]; r++) {
      let ax = 0, ay = 0;
      for (let c = 1; c < classes; c++) {
        if (dx[r * classes + c] > dx[r * classes + ax]) ax = c;
        if (dy[r * classes + c] > dy[r * classes + ay]) ay = c;
      }
      if (ax === ay) argSame++;
    }
    images += x.shape[0];
  }
  const evalOpts = { ...session, batchSize: 500 };
  const acc = {
    float: (await evaluateAccuracy(m.float, test, evalOpts)).top1,
    qdq: (await evaluateAccuracy(m.qdq, test, evalOpts)).top1,
    qoperator: (await evaluateAccuracy(qop, test, evalOpts)).top1,
  };
  await p.tick(1, "agreement");
  report.table(
    "agreement",
    table([
      { measure: "largest |QDQ - QOperator| logit difference (output LSB)", value: worst },
      { measure: "logits identical (%)", value: (100 * same) / total },
      { measure: "same predicted class (%)", value: (100 * argSame) / images },
      { measure: "top-1 float (%)", value: 100 * acc.float },
      { measure: "top-1 QDQ (%)", value: 100 * acc.qdq },
      { measure: "top-1 QOperator (%)", value: 100 * acc.qoperator },
    ], {
      title: `QDQ (simulated) vs QOperator (integer-only) on the first ${testCount} test images (output scale ${
        outScale.toPrecision(4)
      })`,
      columns: [{ key: "measure", title: "measure" }, { key: "value", title: "value", digits: 5 }],
    }),
  );

  // Sizes.
  const sizes = [["float32", m.float], ["QDQ", m.qdq], ["QOperator", qop]] as const;
  report.table(
    "sizes",
    table(
      sizes.map(([name, mm]) => {
        const s = modelSize(mm);
        return { model: name, kib: s.bytes / 1024, file: s.fileBytes / 1024, nodes: mm.graph.node.length };
      }),
      {
        title: "Model size",
        digits: 4,
        columns: [
          { key: "model", title: "model" },
          { key: "kib", title: "initializers (KiB)" },
          { key: "file", title: "serialized file (KiB)" },
          { key: "nodes", title: "nodes" },
        ],
      },
    ),
  );

  // Latency.
  const x64 = new Tensor<"float32">(new Prng(0).fillNormal(new Float32Array(64 * 784)) as Float32Array, [
    64,
    1,
    28,
    28,
  ]);
  const lat: { backend: string; model: string; ms: number }[] = [];
  // Quick sizes (the default `deno task reproduce`) time only the binding in use, so that a fresh machine downloads
  // one ONNX Runtime binding (the other is 140-290 MB); full sizes compare both.
  const inUse = (await loadBackend(options.session?.backend ?? "auto")).backend;
  const bindings = quick ? [inUse] : (["node", "web"] as const);
  if (bindings.length === 1) await p.tick(1, "latency: only the binding in use at quick sizes");
  for (const backend of bindings) {
    for (const [name, mm] of sizes) {
      let s;
      try {
        s = await createSession(mm, { backend, threads: backend === "node" ? 2 : 1 });
      } catch {
        continue; // binding unavailable
      }
      lat.push({
        backend: `onnxruntime-${backend}`,
        model: name,
        ms: await medianMs(() => s.run({ input: x64 }), iterations),
      });
    }
    await p.tick(1, `latency ${backend}`);
  }
  const msOf = (b: string, mdl: string) => lat.find((r) => r.backend === b && r.model === mdl)?.ms;
  report.text(
    `Latency: median of ${iterations} runs of one batch of 64 images (after 2 warm-up runs), onnxruntime 1.30.0, ` +
      "native with 2 intra-op threads, WASM with 1 thread (2 WASM threads hang under Deno, see session.ts). The " +
      "machine has 2 shared cores: compare within one run only.",
  );
  report.table(
    "latency",
    table(
      [...new Set(lat.map((r) => r.backend))].map((bk) => ({
        backend: bk,
        ...Object.fromEntries(lat.filter((r) => r.backend === bk).map((r) => [r.model, r.ms])),
        speedup: (msOf(bk, "float32") ?? NaN) / (msOf(bk, "QOperator") ?? NaN),
      })),
      {
        title: "ORT latency (ms per batch of 64) and int8 speed-up (float32 / QOperator)",
        digits: 3,
        columns: [
          { key: "backend", title: "binding" },
          ...sizes.map(([n]) => ({ key: n, title: `${n} (ms)` })),
          { key: "speedup", title: "QOperator speed-up (x)" },
        ],
      },
    ),
  );
  report.chart(
    "latency",
    dotPlotChart(lat.map((r) => ({ ...r })), {
      title: "ORT latency per batch of 64 by model format",
      subtitle: "lower is better",
      x: { field: "ms", title: "latency (ms per batch)", zero: true },
      y: { field: "model", title: "model format", order: sizes.map(([n]) => n) },
      color: { field: "backend", title: "binding" },
    }),
  );

  await p.tick(1, "latency");

  // Dyadic requantization.
  const rq = requantizationTable(qop);
  report.text(
    "Each integer layer accumulates in int32 and requantizes with M = s_x s_w[c] / s_y per output channel, " +
      "applied as M0 * 2^-n with M0 an int32 in [2^30, 2^31) (TFLite's QuantizeMultiplier, lib/integer/dyadic.ts): " +
      "a 32x32-bit multiply, a rounding shift, and the output zero point.",
  );
  report.table(
    "requantization",
    table(
      rq.map((r) => ({ ...r, shifts: r.shiftMin === r.shiftMax ? `${r.shiftMin}` : `${r.shiftMin}..${r.shiftMax}` })),
      {
        title: "Dyadic requantization parameters per integer layer",
        digits: 4,
        columns: [
          { key: "node", title: "layer" },
          { key: "op", title: "op" },
          { key: "channels", title: "channels" },
          { key: "mMin", title: "min M" },
          { key: "mMax", title: "max M" },
          { key: "m0", title: "M0 (channel 0)", format: (v) => String(v) },
          { key: "shift", title: "n (channel 0)" },
          { key: "shifts", title: "n range" },
          { key: "maxRelError", title: "max |M0 2^-n - M| / M" },
        ],
      },
    ),
  );
  report.chart(
    "multipliers",
    dotPlotChart(
      rq.flatMap((r) => [
        { layer: r.node, m: r.mMin, which: "smallest M over channels" },
        { layer: r.node, m: r.mMax, which: "largest M over channels" },
      ]),
      {
        title: "Requantization multipliers M = s_x s_w / s_y per integer layer",
        subtitle: "each is stored as M0 * 2^-n with a 31-bit M0; layers in graph order (top first)",
        x: { field: "m", title: "multiplier M (log scale)", scale: "log" },
        y: { field: "layer", title: "integer layer", order: rq.map((r) => r.node) },
        color: { field: "which", title: "per-channel M" },
      },
    ),
  );

  await p.tick(1, "requantization");

  report.finding(
    "Integer-only inference matches simulation to within rounding",
    worst <= 1,
    `largest QDQ vs QOperator logit difference ${fixed(worst, 3)} LSB of the output scale over ${images} images; ` +
      `${fixed((100 * same) / total, 2)}% of logits identical, ${fixed((100 * argSame) / images, 2)}% same class; ` +
      `top-1 QDQ ${fixed(100 * acc.qdq, 2)}%, QOperator ${fixed(100 * acc.qoperator, 2)}%, float ${
        fixed(100 * acc.float, 2)
      }%`,
  );
  const speed = [...new Set(lat.map((r) => r.backend))].map((bk) => ({
    bk,
    s: (msOf(bk, "float32") ?? NaN) / (msOf(bk, "QOperator") ?? NaN),
  }));
  report.finding(
    "Integer-only inference runs faster than float",
    speed.length > 0 && speed.every((s) => s.s > 1),
    `${speed.map((s) => `${s.bk}: ${fixed(s.s, 2)}x`).join(", ")} (float32 / QOperator latency at batch 64; ` +
      "the QDQ model runs about as fast, because ONNX Runtime fuses DequantizeLinear-op-QuantizeLinear groups into " +
      "the same integer kernels). On narrow layers (8-32 channels) per-op requantization and layout work can " +
      "outweigh the int8 savings: see benchmarks/results_onnx.md",
  );
  report.record({
    maxLsb: worst,
    identical: same / total,
    classAgreement: argSame / images,
    qdqTop1: acc.qdq,
    qoperatorTop1: acc.qoperator,
    floatTop1: acc.float,
    qoperatorBytes: modelSize(qop).bytes,
    floatBytes: modelSize(m.float).bytes,
  });
  await report.prerender();
  await p.finish("done"); // 100 % when the charts are rendered too
  return report;
}

/**
 * Experiment 09 for the registry.
 *
 * @example
 * ```ts
 * import { integerOnlyExperiment } from "./integer_only.ts";
 * if (integerOnlyExperiment.id !== "integer-only" || typeof integerOnlyExperiment.run !== "function") throw new Error("bad");
 * ```
 */
export const integerOnlyExperiment: Experiment = {
  id: "integer-only",
  title: "Simulated vs integer-only inference",
  section: "simulated vs integer-only quantization; dyadic requantization",
  notebook: "notebooks/09_integer_only.ipynb",
  run: integerOnlyComparison,
};
