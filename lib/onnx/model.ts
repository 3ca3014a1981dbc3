/**
 * {@link OnnxModel}: a decoded ONNX model (the protobuf objects, nothing lost) plus the shapes quantlab knows
 * about its values: declared ones (graph inputs/outputs and `value_info`, as exporters' shape inference wrote
 * them) and captured ones (recorded by running the model once with every intermediate exposed, see
 * `captureShapes` in capture.ts).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { validateGraph } from "./graph.ts";
import { decodeModel, encodeModel, type ModelProto, type ValueInfo } from "./proto.ts";
import { bytesSource, fingerprint, type ModelSource, modelSource, sourceLabel } from "./io.ts";

/**
 * Default-domain opsets quantlab's transforms accept (per-channel DequantizeLinear needs 13).
 *
 * @example
 * ```ts
 * import { SUPPORTED_OPSETS } from "./model.ts";
 * if (SUPPORTED_OPSETS.min !== 13 || SUPPORTED_OPSETS.max < SUPPORTED_OPSETS.min) throw new Error("bad");
 * ```
 */
export const SUPPORTED_OPSETS: { readonly min: 13; readonly max: 22 } = Object.freeze({ min: 13, max: 22 });

/**
 * An ONNX model: the decoded `ModelProto` and known shapes.
 *
 * @example
 * ```ts
 * import { OnnxModel } from "./model.ts";
 * import { emptyModel } from "./proto.ts";
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 4 }] } } });
 * p.graph.output.push({ name: "x" });
 * const m = OnnxModel.decode(OnnxModel.fromProto(p).encode());
 * if (m.opset() !== 17 || m.declaredShape("x")?.join() !== "-1,4") throw new Error("bad");
 * ```
 */
export class OnnxModel {
  /** Shapes recorded by running the model (value name -> dims, batch included). */
  readonly capturedShapes: Map<string, readonly number[]> = new Map();

  /**
   * Where the model came from (kept by clones and every model derived from this one); writers refuse to
   * overwrite it (see `writeModelAtomic`).
   */
  readonly origin: ModelSource;

  /** Wrap a decoded model (not copied); `source` labels messages, `origin` defaults to unnamed bytes. */
  constructor(readonly proto: ModelProto, readonly source = "model", origin?: ModelSource) {
    this.origin = origin ?? { kind: "bytes", name: source };
  }

  /**
   * Decode ONNX bytes and validate the graph. `source` names the bytes in messages (a string; it is not read
   * as a path) or gives their origin; the origin records the bytes' fingerprint either way.
   */
  static decode(bytes: Uint8Array, source: string | ModelSource = "model"): OnnxModel {
    const label = typeof source === "string" ? source : sourceLabel(source);
    const origin = typeof source === "string"
      ? bytesSource(bytes, source)
      : { ...source, fingerprint: source.fingerprint ?? fingerprint(bytes) };
    return OnnxModel.#decode(bytes, label, origin);
  }

  static #decode(bytes: Uint8Array, label: string, origin: ModelSource): OnnxModel {
    const m = new OnnxModel(decodeModel(bytes, label), label, origin);
    m.validate();
    return m;
  }

  /** Wrap a proto (validated). */
  static fromProto(proto: ModelProto, source = "model", origin?: ModelSource): OnnxModel {
    const m = new OnnxModel(proto, source, origin);
    m.validate();
    return m;
  }

  /**
   * Read and decode a model from a path, a `file:` URL or an http(s) URL (fetched); the origin records which.
   * Throws `IO` if it cannot be read.
   */
  static async load(from: string | URL): Promise<OnnxModel> {
    const src = modelSource(from);
    let bytes: Uint8Array;
    if (src.kind === "url") {
      let res: Response;
      try {
        res = await fetch(src.url);
      } catch (e) {
        throw new QuantlabError("IO", `cannot fetch ONNX model "${src.url}": ${(e as Error).message}`, { cause: e });
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new QuantlabError("IO", `cannot fetch ONNX model "${src.url}": HTTP ${res.status} ${res.statusText}`);
      }
      bytes = new Uint8Array(await res.arrayBuffer());
      return OnnxModel.#decode(bytes, src.url, { ...src, fingerprint: fingerprint(bytes) });
    }
    const path = src.kind === "file" ? src.path : String(from);
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw new QuantlabError("IO", `cannot read ONNX model "${String(from)}": ${(e as Error).message}`, { cause: e });
    }
    const real = await Deno.realPath(path).catch(() => path);
    // Messages name the model as the caller did; the origin holds the resolved file.
    return OnnxModel.#decode(bytes, String(from), { kind: "file", path: real, fingerprint: fingerprint(bytes) });
  }

  /** The main graph. */
  get graph(): ModelProto["graph"] {
    return this.proto.graph;
  }

  /** Encode to ONNX bytes. */
  encode(): Uint8Array {
    return encodeModel(this.proto);
  }

  /** A deep copy (captured shapes included). */
  clone(): OnnxModel {
    const m = new OnnxModel(structuredClone(this.proto), this.source, this.origin);
    for (const [k, v] of this.capturedShapes) m.capturedShapes.set(k, v);
    return m;
  }

  /** The opset version imported for `domain` (`""` = default ONNX domain; `"ai.onnx"` is the same), or 0. */
  opset(domain = ""): number {
    const d = domain === "ai.onnx" ? "" : domain;
    for (const o of this.proto.opsetImport) if ((o.domain === "ai.onnx" ? "" : o.domain) === d) return o.version;
    return 0;
  }

  /** Ensure an opset import for `domain` exists (adds `version` if missing); returns the version in use. */
  requireOpset(domain: string, version: number): number {
    const v = this.opset(domain);
    if (v) return v;
    this.proto.opsetImport.push({ domain, version });
    return version;
  }

  /** Validate the graph (see `validateGraph`) and that a default-domain opset is imported. */
  validate(): void {
    if (this.opset("") === 0) {
      throw new QuantlabError("MALFORMED_MODEL", `${this.source}: no default-domain (ai.onnx) opset import`);
    }
    try {
      validateGraph(this.proto.graph);
    } catch (e) {
      if (e instanceof QuantlabError) throw new QuantlabError(e.code, `${this.source}: ${e.message}`, { cause: e });
      throw e;
    }
  }

  /** Throw `UNSUPPORTED` unless the default opset is within {@link SUPPORTED_OPSETS}; `what` names the caller. */
  checkOpset(what: string): number {
    const v = this.opset("");
    if (v < SUPPORTED_OPSETS.min || v > SUPPORTED_OPSETS.max) {
      throw new QuantlabError(
        "UNSUPPORTED",
        `${this.source}: ${what} supports ai.onnx opsets ${SUPPORTED_OPSETS.min}..${SUPPORTED_OPSETS.max}, the model imports ${v}`,
      );
    }
    return v;
  }

  /** The value info declared for `name` (graph input, output or value_info), if any. */
  valueInfo(name: string): ValueInfo | undefined {
    const g = this.proto.graph;
    return g.input.find((v) => v.name === name) ?? g.output.find((v) => v.name === name) ??
      g.valueInfo.find((v) => v.name === name);
  }

  /** Declared shape of a value (symbolic or unknown dims as -1), or undefined. */
  declaredShape(name: string): number[] | undefined {
    const init = this.proto.graph.initializer.find((t) => t.name === name);
    if (init) return [...init.dims];
    const s = this.valueInfo(name)?.type?.tensorType?.shape;
    return s?.map((d) => d.value ?? -1);
  }

  /** Best known shape: captured, else declared. */
  shape(name: string): readonly number[] | undefined {
    return this.capturedShapes.get(name) ?? this.declaredShape(name);
  }

  /** Element type code of a value from initializers or declarations, or undefined. */
  declaredElemType(name: string): number | undefined {
    const init = this.proto.graph.initializer.find((t) => t.name === name);
    if (init) return init.dataType;
    return this.valueInfo(name)?.type?.tensorType?.elemType;
  }

  /** Short description: producer, opsets, node count by op type. */
  toString(): string {
    const counts = new Map<string, number>();
    for (const n of this.proto.graph.node) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
    const ops = [...counts].map(([k, v]) => `${k}x${v}`).join(" ");
    const opsets = this.proto.opsetImport.map((o) => `${o.domain || "ai.onnx"}:${o.version}`).join(",");
    return `OnnxModel(${this.source}, ${
      this.proto.producerName || "?"
    }, opset ${opsets}, ${this.proto.graph.node.length} nodes: ${ops})`;
  }
}
