/**
 * The calibration pass: run the float model on ONNX Runtime with every observed activation of the plan exposed
 * as an output, stream each batch through one observer per tensor (each entry's own quantizer and calibrator:
 * min-max, percentile, entropy, MSE, ...), and turn the ranges into per-tensor parameters. Add/Mul constants
 * get min-max parameters of their own values (they are exact data, not samples). Memory stays bounded: one batch
 * of inputs and intermediates at a time. Any number of named model inputs (the reader's feeds).
 *
 * Results are cached by (model fingerprint = SHA-256 of its bytes, observed tensors with their quantizers, data
 * identity, example count), so a sweep over weight settings, exclusions of weight layers, bias correction or
 * sensitivity analysis calibrates once. {@link calibrationStats} counts runs and hits.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { minMax } from "../quant/calibrate/min_max.ts";
import type { Observer } from "../quant/calibrate/observer.ts";
import type { InputFeeds, InputReader } from "../data/reader.ts";
import { exposeValues } from "../onnx/capture.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { tensorValues } from "../onnx/tensor_data.ts";
import type { QuantParams } from "../quant/params.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type PassContext, type PtqPass, type PtqState, registerPass, timedPass } from "./pass.ts";
import type { QuantPlan } from "./plan.ts";

const fingerprints = new WeakMap<OnnxModel, Promise<string>>();

/**
 * SHA-256 of a model's encoded bytes, hex (cached per model object).
 *
 * @example
 * ```ts
 * import { modelFingerprint } from "./calibrate_pass.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const a = await modelFingerprint(new OnnxModel(emptyModel(13)));
 * const b = await modelFingerprint(new OnnxModel(emptyModel(13)));
 * if (a !== b || a.length !== 64) throw new Error("bad");
 * ```
 */
export function modelFingerprint(model: OnnxModel): Promise<string> {
  let f = fingerprints.get(model);
  if (!f) {
    f = crypto.subtle.digest("SHA-256", model.encode() as Uint8Array<ArrayBuffer>).then((h) =>
      Array.from(new Uint8Array(h), (x) => x.toString(16).padStart(2, "0")).join("")
    );
    fingerprints.set(model, f);
  }
  return f;
}

const CACHE_LIMIT = 32;
const cache = new Map<string, Promise<Map<string, QuantParams>>>();
const stats = { runs: 0, hits: 0 };

/**
 * How often calibration ran and how often the cache answered, since the process started (or the last
 * {@link clearCalibrationCache}).
 *
 * @example
 * ```ts
 * import { calibrationStats } from "./calibrate_pass.ts";
 * const s = calibrationStats();
 * if (typeof s.runs !== "number" || typeof s.hits !== "number") throw new Error("bad");
 * ```
 */
export function calibrationStats(): { readonly runs: number; readonly hits: number } {
  return { ...stats };
}

/**
 * Forget cached calibrations and reset the counters.
 *
 * @example
 * ```ts
 * import { calibrationStats, clearCalibrationCache } from "./calibrate_pass.ts";
 * clearCalibrationCache();
 * if (calibrationStats().runs !== 0) throw new Error("bad");
 * ```
 */
export function clearCalibrationCache(): void {
  cache.clear();
  stats.runs = 0;
  stats.hits = 0;
}

function sliceBatch(t: Tensor, n: number): Tensor {
  if (t.shape[0] <= n) return t;
  const per = t.size / t.shape[0];
  return new Tensor(t.data.subarray(0, n * per) as Float32Array, [n, ...t.shape.slice(1)]);
}

/**
 * Iterate a reader's batches up to `count` examples (counted along axis 0 of the first input; the last batch is
 * cut), checking that each batch feeds exactly the model's inputs.
 *
 * @example
 * ```ts
 * import { limitedBatches } from "./calibrate_pass.ts";
 * import { readerFromFeeds } from "../data/reader.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const r = readerFromFeeds([{ x: Tensor.from([1, 2, 3], [3, 1]) }, { x: Tensor.from([4, 5, 6], [3, 1]) }]);
 * let n = 0;
 * for await (const b of limitedBatches(r, ["x"], 4, "m")) n += b.x.shape[0];
 * if (n !== 4) throw new Error(String(n));
 * ```
 */
export async function* limitedBatches(
  reader: InputReader,
  inputs: readonly string[],
  count: number | undefined,
  source: string,
): AsyncGenerator<InputFeeds> {
  const want = [...inputs].sort().join(",");
  const have = [...reader.inputs].sort().join(",");
  if (want !== have) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${reader.name}: feeds inputs [${have}] but ${source} has inputs [${want}]`,
    );
  }
  let seen = 0;
  for await (const feeds of reader.batches() as AsyncIterable<InputFeeds>) {
    if (count !== undefined && seen >= count) return;
    const first = feeds[inputs[0]];
    const n = first.shape[0] ?? 1;
    if (count !== undefined && seen + n > count) {
      const keep = count - seen;
      const cut: Record<string, Tensor> = {};
      for (const k of Object.keys(feeds)) cut[k] = sliceBatch(feeds[k], keep);
      yield cut;
      return;
    }
    seen += n;
    yield feeds;
  }
}

async function calibrateNow(
  model: OnnxModel,
  plan: QuantPlan,
  reader: InputReader,
  count: number | undefined,
  session: SessionOptions,
  progress: (message: string, fraction?: number) => void,
): Promise<Map<string, QuantParams>> {
  stats.runs++;
  const observed = plan.observed;
  const entries = new Map(plan.activations.map((e) => [e.tensor, e]));
  const observers = new Map<string, Observer>();
  for (const t of observed) observers.set(t, entries.get(t)!.quantizer.observer(t));
  const out = new Map<string, QuantParams>();
  const inputs = [...indexGraph(model.graph).inputs];
  if (observed.length) {
    const probe = exposeValues(model, observed, { replace: true });
    const s = await createSession(probe, { ...session, cache: false });
    let batches = 0, examples = 0;
    try {
      for await (const feeds of limitedBatches(reader, inputs, count, model.source)) {
        const r = await s.run(feeds);
        for (const [t, obs] of observers) obs.observe(r[t] as Tensor<"float32">);
        batches++;
        examples += feeds[inputs[0]].shape[0] ?? 1;
        progress(
          `calibrating ${observed.length} activations: ${examples} examples`,
          count ? examples / count : undefined,
        );
      }
    } finally {
      await s.release();
    }
    if (batches === 0) throw new QuantlabError("EMPTY_TENSOR", `${reader.name}: calibration data holds no batch`);
    for (const [t, obs] of observers) out.set(t, entries.get(t)!.quantizer.fromObserver(obs).params);
  }
  return out;
}

/** Min-max parameters of the plan's Add/Mul constants from their own values. */
function constantParams(model: OnnxModel, plan: QuantPlan): Map<string, QuantParams> {
  const inits = indexGraph(model.graph).initializers;
  const out = new Map<string, QuantParams>();
  for (const e of plan.activations) {
    if (e.role !== "constant") continue;
    const v = tensorValues(inits.get(e.tensor)!) as Float32Array;
    out.set(e.tensor, e.quantizer.calibrate(minMax()).fit(new Tensor(v), undefined, e.tensor).params);
  }
  return out;
}

/**
 * Calibrated parameters of the plan's observed activations and constants (cached; see the module doc).
 *
 * @example
 * ```ts ignore
 * const params = await calibratePlan(model, plan, readerFromDataset(train, { input: "input", count: 1024 }));
 * ```
 */
export async function calibratePlan(
  model: OnnxModel,
  plan: QuantPlan,
  reader: InputReader,
  options: { count?: number; session?: SessionOptions; progress?: (message: string, fraction?: number) => void } = {},
): Promise<Map<string, QuantParams>> {
  const entries = plan.activations.filter((e) => e.role !== "constant" && !e.sharesWith)
    .map((e) => `${e.tensor}=${e.quantizer.toString()}`);
  const key = [await modelFingerprint(model), entries.join(";"), reader.identity, options.count ?? "all"].join("|");
  let p = cache.get(key);
  if (p) stats.hits++;
  else {
    p = calibrateNow(model, plan, reader, options.count, options.session ?? {}, options.progress ?? (() => {}));
    cache.set(key, p);
    p.catch(() => cache.delete(key));
    while (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  }
  // Constants are cheap and depend on the plan, not the data: computed every time.
  return new Map([...await p, ...constantParams(model, plan)]);
}

/**
 * The calibration pass (stage `calibrate`).
 *
 * @example
 * ```ts
 * import { calibratePass } from "./calibrate_pass.ts";
 * if (calibratePass().stage !== "calibrate") throw new Error("bad");
 * ```
 */
export function calibratePass(): PtqPass {
  return {
    name: "calibrate",
    stage: "calibrate",
    run(state: PtqState, ctx: PassContext): Promise<PtqState> {
      return timedPass("calibrate", state, async () => {
        if (!state.plan) throw new QuantlabError("NOT_CALIBRATED", `${state.model.source}: calibrate needs a plan`);
        const needsData = state.plan.observed.length > 0;
        if (needsData && !ctx.data) {
          throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: call calibrateOn(data) before quantizing`);
        }
        const before = stats.runs;
        const params = needsData
          ? await calibratePlan(state.model, state.plan, ctx.data!, {
            count: ctx.count,
            session: ctx.session,
            progress: ctx.progress,
          })
          : constantParams(state.model, state.plan);
        return {
          patch: { activationParams: params },
          summary: `${state.plan.observed.length} activations${
            stats.runs === before ? " (cached)" : ` on ${ctx.data?.name ?? "no data"}`
          }`,
        };
      });
    },
    toString: () => "calibrate()",
  };
}

registerPass("calibrate", () => calibratePass());
