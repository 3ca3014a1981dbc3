/**
 * Activation caching for layer-wise reconstruction (AIMET `ActivationSampler.sample_and_place_all_acts_on_cpu`):
 * run a model over in-memory calibration batches and concatenate one intermediate value of every example.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { InputFeeds } from "../data/reader.ts";
import { exposeValues } from "../onnx/capture.ts";
import { removeDeadNodes } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import type { CachedActivations } from "./optimize_layer.ts";

/**
 * The values of `name` in `model` over all `batches`, concatenated sample-major. A graph input is copied from the
 * feeds without running the model.
 *
 * @example
 * ```ts ignore
 * const acts = await cacheActivations(model, "/layer1/conv1/Conv_output_0", feeds, { backend: "node" });
 * console.log(acts.count, acts.sampleDims);
 * ```
 */
export async function cacheActivations(
  model: OnnxModel,
  name: string,
  batches: readonly InputFeeds[],
  session: SessionOptions,
): Promise<CachedActivations> {
  const parts: Float32Array[] = [];
  let sampleDims: readonly number[] | undefined;
  let count = 0;
  const push = (data: Float32Array, shape: readonly number[]) => {
    sampleDims ??= shape.slice(1);
    parts.push(data);
    count += shape[0];
  };
  if (batches.length && name in batches[0]) {
    for (const f of batches) push(f[name].data as Float32Array, f[name].shape);
  } else {
    const probe = exposeValues(model, [name], { replace: true });
    removeDeadNodes(probe.graph);
    const s = await createSession(probe, { ...session, cache: false });
    try {
      for (const f of batches) {
        const feeds: Record<string, InputFeeds[string]> = {};
        for (const i of probe.graph.input) if (f[i.name]) feeds[i.name] = f[i.name];
        const r = (await s.run(feeds))[name];
        push((r.data as Float32Array).slice(), r.shape);
      }
    } finally {
      await s.release();
    }
  }
  if (!sampleDims || count === 0) throw new QuantlabError("EMPTY_TENSOR", `${model.source}: no data to cache ${name}`);
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  return { data, sampleDims, count };
}
