/**
 * External tensor data (`data_location: EXTERNAL`), checked by quantlab before any session is created: ONNX
 * Runtime is given model bytes, so a reference it resolved itself could read any file the process can
 * (absolute paths, `..`, links out of the folder). Here every reference must name a regular file inside the
 * model's own folder (after resolving links), with an offset and length inside that file and the byte size its
 * dims and type need; the data is then read and inlined into a copy of the model. Models that did not come
 * from a file have no folder, so their external references are refused.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { ModelSource } from "./io.ts";
import type { GraphProto, ModelProto, TensorProto } from "./proto.ts";

const WIDTH: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  16: 2,
};

function externalTensors(g: GraphProto, out: TensorProto[], depth = 0): void {
  if (depth > 64) return;
  for (const t of g.initializer) if (t.dataLocation === 1 || t.externalData?.length) out.push(t);
  for (const n of g.node) {
    for (const a of n.attribute) {
      for (const t of [...(a.t ? [a.t] : []), ...(a.tensors ?? [])]) {
        if (t.dataLocation === 1 || t.externalData?.length) out.push(t);
      }
      for (const sg of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) externalTensors(sg, out, depth + 1);
    }
  }
}

/**
 * Whether any tensor of the model (subgraphs included) keeps its data in an external file.
 *
 * @example
 * ```ts
 * import { hasExternalData } from "./external_data.ts";
 * import { emptyModel } from "./proto.ts";
 * if (hasExternalData(emptyModel(17))) throw new Error("bad");
 * ```
 */
export function hasExternalData(proto: ModelProto): boolean {
  const found: TensorProto[] = [];
  externalTensors(proto.graph, found);
  return found.length > 0;
}

function bad(label: string, t: TensorProto, what: string): never {
  throw new QuantlabError("MALFORMED_MODEL", `${label}: external data of tensor "${t.name}" ${what}`);
}

function integerEntry(label: string, t: TensorProto, key: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    bad(label, t, `has ${key} "${v}"; expected an integer >= 0`);
  }
  return Number(v);
}

/**
 * The model with every external tensor's data read and inlined (a structured copy), or `proto` itself when it
 * has none. Throws `MALFORMED_MODEL` naming the tensor and the file for a location that is absolute, climbs
 * out of the model's folder (by `..` or a link), is missing or not a regular file, or an offset/length outside
 * the file or not matching the tensor's size; `UNSUPPORTED` when the model has no folder (not loaded from a
 * file).
 *
 * @example
 * ```ts
 * import { inlineExternalData } from "./external_data.ts";
 * import { emptyModel } from "./proto.ts";
 * const p = emptyModel(17);
 * p.graph.initializer.push({ name: "w", dataType: 1, dims: [1], dataLocation: 1,
 *   externalData: [{ key: "location", value: "/etc/passwd" }] });
 * try {
 *   await inlineExternalData(p, { kind: "file", path: "/tmp/m.onnx" }, "m.onnx");
 *   throw new Error("should refuse");
 * } catch (e) {
 *   if ((e as { code?: string }).code !== "MALFORMED_MODEL") throw e;
 * }
 * ```
 */
export async function inlineExternalData(proto: ModelProto, origin: ModelSource, label: string): Promise<ModelProto> {
  if (!hasExternalData(proto)) return proto;
  if (origin.kind !== "file") {
    throw new QuantlabError(
      "UNSUPPORTED",
      `${label}: tensors keep their data in external files, but the model was not loaded from a file ` +
        `(${origin.kind}), so there is no folder to read them from; load it with OnnxModel.load(path)`,
    );
  }
  const copy = structuredClone(proto);
  const tensors: TensorProto[] = [];
  externalTensors(copy.graph, tensors);
  const slash = origin.path.lastIndexOf("/");
  const folder = await Deno.realPath(origin.path.slice(0, slash) || "/").catch(() => origin.path.slice(0, slash));
  for (const t of tensors) {
    const entries = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    const location = entries.get("location");
    if (!location) bad(label, t, "has no location");
    if (
      location.startsWith("/") || location.startsWith("\\") || /^[A-Za-z]:/.test(location) ||
      location.includes("\0") || location.split(/[\\/]/).includes("..")
    ) {
      bad(label, t, `points outside the model's folder ("${location}"); locations must be relative, without ".."`);
    }
    const file = `${folder}/${location}`;
    let real: string;
    try {
      real = await Deno.realPath(file);
    } catch {
      bad(label, t, `names "${location}", which does not exist next to the model (${folder})`);
    }
    if (!real.startsWith(`${folder}/`)) {
      bad(label, t, `names "${location}", a link to "${real}" outside the model's folder ${folder}`);
    }
    const st = await Deno.stat(real);
    if (!st.isFile) bad(label, t, `names "${location}", which is not a regular file`);
    const offset = integerEntry(label, t, "offset", entries.get("offset")) ?? 0;
    const length = integerEntry(label, t, "length", entries.get("length")) ?? st.size - offset;
    if (offset > st.size || length > st.size - offset) {
      bad(label, t, `range [${offset}, ${offset + length}) runs past the end of "${location}" (${st.size} bytes)`);
    }
    const width = WIDTH[t.dataType];
    if (width !== undefined) {
      let n = 1;
      for (const d of t.dims) {
        if (!Number.isSafeInteger(d) || d < 0) bad(label, t, `belongs to a tensor with dimension ${d}`);
        n *= d;
      }
      if (n * width !== length) {
        bad(label, t, `holds ${length} bytes, but dims [${t.dims}] of type ${t.dataType} need ${n * width}`);
      }
    }
    const data = new Uint8Array(length);
    const f = await Deno.open(real, { read: true });
    try {
      await f.seek(offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < length) {
        const k = await f.read(data.subarray(got));
        if (k === null) bad(label, t, `"${location}" ended early (${got} of ${length} bytes)`);
        got += k;
      }
    } finally {
      f.close();
    }
    t.rawData = data;
    delete t.externalData;
    delete t.dataLocation;
  }
  return copy;
}
