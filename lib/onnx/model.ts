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

/**
 * Default-domain opsets quantlab's transforms accept (per-channel DequantizeLinear needs 13).
 *
 * @example
 * ```ts
 * import { SUPPORTED_OPSETS } from "./model.ts";
 * if (SUPPORTED_OPSETS.min !== 13 || SUPPORTED_OPSETS.max < SUPPORTED_OPSETS.min) throw new Error("bad");
 * ```
 */
export const SUPPORTED_OPSETS = Object.freeze({ min: 13, max: 22 });

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

  /** Wrap a decoded model (not copied). */
  constructor(readonly proto: ModelProto, readonly source = "model") {}

  /** Decode ONNX bytes and validate the graph; `source` names the file in error messages. */
  static decode(bytes: Uint8Array, source = "model"): OnnxModel {
    const m = new OnnxModel(decodeModel(bytes, source), source);
    m.validate();
    return m;
  }

  /** Wrap a proto (validated). */
  static fromProto(proto: ModelProto, source = "model"): OnnxModel {
    const m = new OnnxModel(proto, source);
    m.validate();
    return m;
  }

  /** Read and decode a file. Throws `IO` if it cannot be read. */
  static async load(path: string | URL): Promise<OnnxModel> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw new QuantlabError("IO", `cannot read ONNX model "${String(path)}": ${(e as Error).message}`, { cause: e });
    }
    return OnnxModel.decode(bytes, String(path));
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
    const m = new OnnxModel(structuredClone(this.proto), this.source);
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
