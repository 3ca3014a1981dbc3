/**
 * Checkpoints: a trained model written as a plain ONNX inference model (BatchNormalization in inference mode
 * with the running statistics), atomically (temporary file + rename), with the training facts stored as
 * `metadata_props` so any ONNX tool shows them.
 *
 * @module
 */
import type { OnnxModel } from "../onnx/model.ts";
import { tensorValues } from "../onnx/tensor_data.ts";
import { type SourceLike, writeModelAtomic } from "../onnx/io.ts";

/**
 * The float32 values of every float initializer (copies), by name.
 *
 * @example
 * ```ts
 * import { initializerValues } from "./checkpoint.ts";
 * import { digitsCnn } from "../models/digits_cnn.ts";
 * const v = initializerValues(digitsCnn());
 * if (v.get("bn1.running_var")?.[0] !== 1 || v.get("conv1.weight")?.length !== 144) throw new Error("bad");
 * ```
 */
export function initializerValues(model: OnnxModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const t of model.graph.initializer) {
    const v = tensorValues(t);
    if (v instanceof Float32Array) out.set(t.name, v);
  }
  return out;
}

/**
 * Write `model` to `path` atomically with `metadata` as `metadata_props` (values JSON-encoded unless strings).
 * The model is not modified. Refuses (code `IO`) to overwrite the model's origin (`model.origin`: the file it,
 * or the model it was trained from, was loaded from) or any of `options.sources`.
 *
 * @example
 * ```ts
 * import { saveCheckpoint } from "./checkpoint.ts";
 * import { digitsCnn } from "../models/digits_cnn.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const dir = await Deno.makeTempDir();
 * await saveCheckpoint(`${dir}/m.onnx`, digitsCnn(), { epoch: 3, note: "hi" });
 * const back = await OnnxModel.load(`${dir}/m.onnx`);
 * const meta = Object.fromEntries(back.proto.metadataProps.map((e) => [e.key, e.value]));
 * if (meta.epoch !== "3" || meta.note !== "hi") throw new Error(JSON.stringify(meta));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveCheckpoint(
  path: string | URL,
  model: OnnxModel,
  metadata: Record<string, unknown> = {},
  options: { sources?: readonly SourceLike[] } = {},
): Promise<void> {
  const m = model.clone();
  const keep = m.proto.metadataProps.filter((e) => !(e.key in metadata));
  const added = Object.entries(metadata).map(([key, v]) => ({
    key,
    value: typeof v === "string" ? v : JSON.stringify(v),
  }));
  m.proto.metadataProps = [...keep, ...added];
  await writeModelAtomic(path, m.encode(), { sources: [model.origin, ...(options.sources ?? [])] });
}
