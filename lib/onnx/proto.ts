/**
 * ONNX protobuf messages as plain TypeScript objects, with a decoder and an encoder.
 *
 * Covers `ModelProto`, `GraphProto`, `NodeProto`, `AttributeProto`, `TensorProto`, `ValueInfoProto`,
 * `TypeProto` (tensor types with shapes), `OperatorSetIdProto` and `StringStringEntryProto`. Fields quantlab does
 * not model (training info, functions, sparse initializers, quantization annotations, sequence/map types,
 * sparse-tensor attributes, tensor segments, ...) are **preserved**: each message keeps the raw bytes of its
 * unknown fields in `unknown` and the encoder writes them back, so a decode/encode round trip keeps them.
 *
 * int64 scalars (`dims`, attribute `i`/`ints`, versions) are held in doubles: exact up to 2^53, and the two
 * sentinels exporters use (INT64_MAX, INT64_MIN, e.g. Slice ends) round-trip exactly; `int64_data` and
 * `uint64_data` are exact (`BigInt64Array`, `BigUint64Array`). Tensor payloads in `raw_data` are copied
 * verbatim, so initializers round-trip bit for bit.
 *
 * Decoding is defensive: every length is checked against its enclosing message, nested graphs are limited to
 * {@link MAX_GRAPH_DEPTH} levels, allocations never exceed the input size, and any failure is a
 * `QuantlabError` with code `MALFORMED_MODEL` whose message names the message path (e.g.
 * `ModelProto.graph.node[3].attribute[0]`) and the byte offset.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { ProtoReader, ProtoWriter, WireType } from "./wire.ts";

/** A key/value string pair (`StringStringEntryProto`). */
export interface StringEntry {
  /** Key. */
  key: string;
  /** Value. */
  value: string;
}

/** An operator set import (`OperatorSetIdProto`); domain `""` is the default ONNX domain. */
export interface OpsetImport {
  /** Domain, `""` or `"ai.onnx"` for standard ONNX, `"com.microsoft"` for ORT contrib ops. */
  domain: string;
  /** Opset version. */
  version: number;
}

/** A serialized tensor (`TensorProto`). Exactly one data field is normally set. */
export interface TensorProto {
  /** Value name (for initializers, the graph value it defines). */
  name: string;
  /** `TensorProto.DataType` code; see `DataType` in tensor_data.ts. */
  dataType: number;
  /** Dimensions. */
  dims: number[];
  /** Little-endian packed values. */
  rawData?: Uint8Array;
  /** FLOAT values. */
  floatData?: Float32Array;
  /** INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16 (bits) values. */
  int32Data?: Int32Array;
  /** INT64 values. */
  int64Data?: BigInt64Array;
  /** DOUBLE values. */
  doubleData?: Float64Array;
  /** UINT32, UINT64 values. */
  uint64Data?: BigUint64Array;
  /** STRING values. */
  stringData?: Uint8Array[];
  /** Documentation. */
  docString?: string;
  /** External data references (location, offset, length). */
  externalData?: StringEntry[];
  /** 0 = data in this message, 1 = external. */
  dataLocation?: number;
  /** Raw bytes of fields quantlab does not model (re-emitted on encode). */
  unknown?: Uint8Array[];
}

/** One dimension of a tensor type: a number, a symbolic name, or unknown. */
export interface Dim {
  /** Fixed size. */
  value?: number;
  /** Symbolic name such as `"N"`. */
  param?: string;
  /** Denotation. */
  denotation?: string;
}

/** A value's type (`TypeProto`); only tensor types are modelled, others stay in `unknown`. */
export interface TypeProto {
  /** Tensor type: element type and (optional) shape; `shape: []` is a scalar, no `shape` is unknown rank. */
  tensorType?: { elemType: number; shape?: Dim[] };
  /** Denotation. */
  denotation?: string;
  /** Raw bytes of other type kinds (sequence, map, optional, sparse). */
  unknown?: Uint8Array[];
}

/** A named, typed value (`ValueInfoProto`). */
export interface ValueInfo {
  /** Value name. */
  name: string;
  /** Type. */
  type?: TypeProto;
  /** Documentation. */
  docString?: string;
  /** Unknown fields. */
  unknown?: Uint8Array[];
}

/**
 * `AttributeProto.AttributeType` codes.
 *
 * @example
 * ```ts
 * import { AttributeType } from "./proto.ts";
 * if (AttributeType.FLOAT !== 1 || AttributeType.INT !== 2 || AttributeType.INTS !== 7) throw new Error("bad");
 * ```
 */
export const AttributeType = Object.freeze({
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
});

/** A node attribute (`AttributeProto`). `type` says which value field is meaningful. */
export interface AttributeProto {
  /** Name. */
  name: string;
  /** `AttributeType` code. */
  type: number;
  /** FLOAT. */
  f?: number;
  /** INT. */
  i?: number;
  /** STRING (bytes). */
  s?: Uint8Array;
  /** TENSOR. */
  t?: TensorProto;
  /** GRAPH. */
  g?: GraphProto;
  /** FLOATS. */
  floats?: number[];
  /** INTS. */
  ints?: number[];
  /** STRINGS. */
  strings?: Uint8Array[];
  /** TENSORS. */
  tensors?: TensorProto[];
  /** GRAPHS. */
  graphs?: GraphProto[];
  /** Reference to a function attribute. */
  refAttrName?: string;
  /** Documentation. */
  docString?: string;
  /** Unknown fields (sparse tensors, type protos). */
  unknown?: Uint8Array[];
}

/** A computation node (`NodeProto`). Empty input names mark omitted optional inputs. */
export interface NodeProto {
  /** Input value names. */
  input: string[];
  /** Output value names. */
  output: string[];
  /** Node name (may be empty). */
  name: string;
  /** Operator type, e.g. `"Conv"`. */
  opType: string;
  /** Operator domain (`""` for standard ONNX). */
  domain: string;
  /** Attributes. */
  attribute: AttributeProto[];
  /** Documentation. */
  docString?: string;
  /** Unknown fields. */
  unknown?: Uint8Array[];
}

/** A graph (`GraphProto`). */
export interface GraphProto {
  /** Graph name. */
  name: string;
  /** Nodes (ONNX requires topological order; see graph.ts). */
  node: NodeProto[];
  /** Constant tensors (weights). */
  initializer: TensorProto[];
  /** Graph inputs (may include initializers in IR < 4). */
  input: ValueInfo[];
  /** Graph outputs. */
  output: ValueInfo[];
  /** Types of intermediate values. */
  valueInfo: ValueInfo[];
  /** Documentation. */
  docString?: string;
  /** Unknown fields (sparse initializers, quantization annotations, ...). */
  unknown?: Uint8Array[];
}

/** A model (`ModelProto`). */
export interface ModelProto {
  /** ONNX IR version. */
  irVersion: number;
  /** Operator sets used. */
  opsetImport: OpsetImport[];
  /** Producer name. */
  producerName: string;
  /** Producer version. */
  producerVersion: string;
  /** Model domain. */
  domain: string;
  /** Model version. */
  modelVersion: number;
  /** Documentation. */
  docString: string;
  /** The main graph. */
  graph: GraphProto;
  /** Metadata key/value pairs. */
  metadataProps: StringEntry[];
  /** Unknown fields (training info, functions, ...). */
  unknown?: Uint8Array[];
}

/**
 * Nested graphs (If/Loop/Scan bodies) deeper than this are rejected as malformed.
 *
 * @example
 * ```ts
 * import { MAX_GRAPH_DEPTH } from "./proto.ts";
 * if (MAX_GRAPH_DEPTH !== 32) throw new Error("bad");
 * ```
 */
export const MAX_GRAPH_DEPTH = 32;

type R = ProtoReader;

/** Check that field `name` has wire type `expected` (else `MALFORMED_MODEL`), then return `r` to read its value. */
function read(r: R, wire: number, expected: number, name: string): R {
  r.expect(wire, expected, name);
  return r;
}

function keepUnknown(r: R, wire: number, tagStart: number, into: { unknown?: Uint8Array[] }): void {
  (into.unknown ??= []).push(r.skip(wire, tagStart));
}

function decodeEntry(r: R): StringEntry {
  const e: StringEntry = { key: "", value: "" };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1) e.key = read(r, wire, 2, "key").string();
    else if (field === 2) e.value = read(r, wire, 2, "value").string();
    else r.skip(wire, r.pos);
  }
  return e;
}

function decodeOpset(r: R): OpsetImport {
  const o: OpsetImport = { domain: "", version: 0 };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1) o.domain = read(r, wire, 2, "domain").string();
    else if (field === 2) o.version = read(r, wire, 0, "version").int64();
    else r.skip(wire, r.pos);
  }
  return o;
}

function decodeTensor(r: R): TensorProto {
  const t: TensorProto = { name: "", dataType: 0, dims: [] };
  const floats: number[] = [], ints: number[] = [], doubles: number[] = [];
  const i64: bigint[] = [], u64: bigint[] = [];
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        r.repeated(wire, WireType.VARINT, (s) => t.dims.push(s.int64()));
        break;
      case 2:
        t.dataType = read(r, wire, 0, "data_type").int32();
        break;
      case 4:
        r.repeated(wire, WireType.I32, (s) => floats.push(s.float()));
        break;
      case 5:
        r.repeated(wire, WireType.VARINT, (s) => ints.push(s.int32()));
        break;
      case 6:
        (t.stringData ??= []).push(read(r, wire, 2, "string_data").bytesCopy());
        break;
      case 7:
        r.repeated(wire, WireType.VARINT, (s) => i64.push(s.int64Big()));
        break;
      case 8:
        t.name = read(r, wire, 2, "name").string();
        break;
      case 9:
        t.rawData = read(r, wire, 2, "raw_data").bytesCopy();
        break;
      case 10:
        r.repeated(wire, WireType.I64, (s) => doubles.push(s.double()));
        break;
      case 11:
        r.repeated(wire, WireType.VARINT, (s) => u64.push(s.uint64Big()));
        break;
      case 12:
        t.docString = read(r, wire, 2, "doc_string").string();
        break;
      case 13:
        (t.externalData ??= []).push(decodeEntry(read(r, wire, 2, "external_data").sub(`${r.where}.external_data`)));
        break;
      case 14:
        t.dataLocation = read(r, wire, 0, "data_location").int32();
        break;
      default:
        keepUnknown(r, wire, tagStart, t);
    }
  }
  if (floats.length) t.floatData = Float32Array.from(floats);
  if (ints.length) t.int32Data = Int32Array.from(ints);
  if (doubles.length) t.doubleData = Float64Array.from(doubles);
  if (i64.length) t.int64Data = BigInt64Array.from(i64);
  if (u64.length) t.uint64Data = BigUint64Array.from(u64);
  return t;
}

function decodeDim(r: R): Dim {
  const d: Dim = {};
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1) d.value = read(r, wire, 0, "dim_value").int64();
    else if (field === 2) d.param = read(r, wire, 2, "dim_param").string();
    else if (field === 3) d.denotation = read(r, wire, 2, "denotation").string();
    else r.skip(wire, r.pos);
  }
  return d;
}

function decodeType(r: R): TypeProto {
  const tp: TypeProto = {};
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    if (field === 1 && wire === 2) {
      const s = r.sub(`${r.where}.tensor_type`);
      const tt: { elemType: number; shape?: Dim[] } = { elemType: 0 };
      while (s.more()) {
        const f = s.tag();
        if (f.field === 1) tt.elemType = read(s, f.wire, 0, "elem_type").int32();
        else if (f.field === 2) {
          const sh = read(s, f.wire, 2, "shape").sub(`${s.where}.shape`);
          tt.shape = [];
          while (sh.more()) {
            const g = sh.tag();
            if (g.field === 1) tt.shape.push(decodeDim(read(sh, g.wire, 2, "dim").sub(`${sh.where}.dim`)));
            else sh.skip(g.wire, sh.pos);
          }
        } else s.skip(f.wire, s.pos);
      }
      tp.tensorType = tt;
    } else if (field === 6 && wire === 2) tp.denotation = r.string();
    else keepUnknown(r, wire, tagStart, tp);
  }
  return tp;
}

function decodeValueInfo(r: R): ValueInfo {
  const v: ValueInfo = { name: "" };
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    if (field === 1) v.name = read(r, wire, 2, "name").string();
    else if (field === 2) v.type = decodeType(read(r, wire, 2, "type").sub(`${r.where}.type`));
    else if (field === 3) v.docString = read(r, wire, 2, "doc_string").string();
    else keepUnknown(r, wire, tagStart, v);
  }
  return v;
}

function decodeAttribute(r: R, depth: number): AttributeProto {
  const a: AttributeProto = { name: "", type: 0 };
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    const w = r.where;
    switch (field) {
      case 1:
        a.name = read(r, wire, 2, "name").string();
        break;
      case 20:
        a.type = read(r, wire, 0, "type").int32();
        break;
      case 2:
        a.f = read(r, wire, 5, "f").float();
        break;
      case 3:
        a.i = read(r, wire, 0, "i").int64();
        break;
      case 4:
        a.s = read(r, wire, 2, "s").bytesCopy();
        break;
      case 5:
        a.t = decodeTensor(read(r, wire, 2, "t").sub(`${w}.t`));
        break;
      case 6:
        a.g = decodeGraph(read(r, wire, 2, "g").sub(`${w}.g`), depth + 1);
        break;
      case 7:
        r.repeated(wire, WireType.I32, (s) => (a.floats ??= []).push(s.float()));
        break;
      case 8:
        r.repeated(wire, WireType.VARINT, (s) => (a.ints ??= []).push(s.int64()));
        break;
      case 9:
        (a.strings ??= []).push(read(r, wire, 2, "strings").bytesCopy());
        break;
      case 10:
        (a.tensors ??= []).push(
          decodeTensor(read(r, wire, 2, "tensors").sub(`${w}.tensors[${a.tensors?.length ?? 0}]`)),
        );
        break;
      case 11:
        (a.graphs ??= []).push(
          decodeGraph(read(r, wire, 2, "graphs").sub(`${w}.graphs[${a.graphs?.length ?? 0}]`), depth + 1),
        );
        break;
      case 13:
        a.docString = read(r, wire, 2, "doc_string").string();
        break;
      case 21:
        a.refAttrName = read(r, wire, 2, "ref_attr_name").string();
        break;
      default:
        keepUnknown(r, wire, tagStart, a);
    }
  }
  if (a.type === 0) a.type = inferAttributeType(a);
  return a;
}

/** IR version 1 models may omit `type`; infer it from the value present. */
function inferAttributeType(a: AttributeProto): number {
  if (a.f !== undefined) return AttributeType.FLOAT;
  if (a.i !== undefined) return AttributeType.INT;
  if (a.s !== undefined) return AttributeType.STRING;
  if (a.t) return AttributeType.TENSOR;
  if (a.g) return AttributeType.GRAPH;
  if (a.floats) return AttributeType.FLOATS;
  if (a.ints) return AttributeType.INTS;
  if (a.strings) return AttributeType.STRINGS;
  if (a.tensors) return AttributeType.TENSORS;
  if (a.graphs) return AttributeType.GRAPHS;
  return AttributeType.UNDEFINED;
}

function decodeNode(r: R, depth: number): NodeProto {
  const n: NodeProto = { input: [], output: [], name: "", opType: "", domain: "", attribute: [] };
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        n.input.push(read(r, wire, 2, "input").string());
        break;
      case 2:
        n.output.push(read(r, wire, 2, "output").string());
        break;
      case 3:
        n.name = read(r, wire, 2, "name").string();
        break;
      case 4:
        n.opType = read(r, wire, 2, "op_type").string();
        break;
      case 7:
        n.domain = read(r, wire, 2, "domain").string();
        break;
      case 5:
        n.attribute.push(
          decodeAttribute(read(r, wire, 2, "attribute").sub(`${r.where}.attribute[${n.attribute.length}]`), depth),
        );
        break;
      case 6:
        n.docString = read(r, wire, 2, "doc_string").string();
        break;
      default:
        keepUnknown(r, wire, tagStart, n);
    }
  }
  return n;
}

function decodeGraph(r: R, depth: number): GraphProto {
  if (depth > MAX_GRAPH_DEPTH) r.fail(`subgraphs nested deeper than ${MAX_GRAPH_DEPTH} levels`);
  const g: GraphProto = { name: "", node: [], initializer: [], input: [], output: [], valueInfo: [] };
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    const w = r.where;
    switch (field) {
      case 1:
        g.node.push(decodeNode(read(r, wire, 2, "node").sub(`${w}.node[${g.node.length}]`), depth));
        break;
      case 2:
        g.name = read(r, wire, 2, "name").string();
        break;
      case 5:
        g.initializer.push(
          decodeTensor(read(r, wire, 2, "initializer").sub(`${w}.initializer[${g.initializer.length}]`)),
        );
        break;
      case 10:
        g.docString = read(r, wire, 2, "doc_string").string();
        break;
      case 11:
        g.input.push(decodeValueInfo(read(r, wire, 2, "input").sub(`${w}.input[${g.input.length}]`)));
        break;
      case 12:
        g.output.push(decodeValueInfo(read(r, wire, 2, "output").sub(`${w}.output[${g.output.length}]`)));
        break;
      case 13:
        g.valueInfo.push(decodeValueInfo(read(r, wire, 2, "value_info").sub(`${w}.value_info[${g.valueInfo.length}]`)));
        break;
      default:
        keepUnknown(r, wire, tagStart, g);
    }
  }
  return g;
}

/**
 * Decode ONNX `ModelProto` bytes. Throws `MALFORMED_MODEL` (naming the message path and byte offset) on
 * truncated, corrupt or non-ONNX input; never another kind of exception.
 *
 * @example
 * ```ts
 * import { decodeModel, encodeModel, emptyModel } from "./proto.ts";
 * const m = emptyModel(17);
 * m.graph.name = "g";
 * const back = decodeModel(encodeModel(m));
 * if (back.graph.name !== "g" || back.opsetImport[0].version !== 17) throw new Error("bad");
 * try {
 *   decodeModel(new Uint8Array([0x0a, 0x05, 0x01]));
 *   throw new Error("should fail");
 * } catch (e) {
 *   if ((e as { code?: string }).code !== "MALFORMED_MODEL") throw e;
 * }
 * ```
 */
export function decodeModel(bytes: Uint8Array, source = "model"): ModelProto {
  if (!(bytes instanceof Uint8Array)) {
    throw new QuantlabError("INVALID_ARGUMENT", `${source}: expected ONNX bytes as a Uint8Array`);
  }
  if (bytes.length === 0) {
    throw new QuantlabError("MALFORMED_MODEL", `${source}: empty input; expected ONNX ModelProto bytes`);
  }
  try {
    const r = new ProtoReader(bytes, `${source}: ModelProto`);
    const m: ModelProto = {
      irVersion: 0,
      opsetImport: [],
      producerName: "",
      producerVersion: "",
      domain: "",
      modelVersion: 0,
      docString: "",
      graph: { name: "", node: [], initializer: [], input: [], output: [], valueInfo: [] },
      metadataProps: [],
    };
    let sawGraph = false;
    while (r.more()) {
      const tagStart = r.pos;
      const { field, wire } = r.tag();
      switch (field) {
        case 1:
          m.irVersion = read(r, wire, 0, "ir_version").int64();
          break;
        case 2:
          m.producerName = read(r, wire, 2, "producer_name").string();
          break;
        case 3:
          m.producerVersion = read(r, wire, 2, "producer_version").string();
          break;
        case 4:
          m.domain = read(r, wire, 2, "domain").string();
          break;
        case 5:
          m.modelVersion = read(r, wire, 0, "model_version").int64();
          break;
        case 6:
          m.docString = read(r, wire, 2, "doc_string").string();
          break;
        case 7:
          m.graph = decodeGraph(read(r, wire, 2, "graph").sub(`${source}: ModelProto.graph`), 0);
          sawGraph = true;
          break;
        case 8:
          m.opsetImport.push(decodeOpset(read(r, wire, 2, "opset_import").sub(`${source}: ModelProto.opset_import`)));
          break;
        case 14:
          m.metadataProps.push(
            decodeEntry(read(r, wire, 2, "metadata_props").sub(`${source}: ModelProto.metadata_props`)),
          );
          break;
        default:
          keepUnknown(r, wire, tagStart, m);
      }
    }
    if (!sawGraph) {
      throw new QuantlabError("MALFORMED_MODEL", `${source}: ModelProto has no graph; the bytes are not an ONNX model`);
    }
    if (m.irVersion <= 0) {
      throw new QuantlabError(
        "MALFORMED_MODEL",
        `${source}: ModelProto.ir_version is ${m.irVersion}; expected a positive version`,
      );
    }
    return m;
  } catch (e) {
    if (e instanceof QuantlabError) throw e;
    // Safety net: the reader checks every bound, so this means a decoder bug; still honour the contract.
    throw new QuantlabError("MALFORMED_MODEL", `${source}: internal decoder error (${String(e)})`, { cause: e });
  }
}

function encodeEntry(w: ProtoWriter, field: number, e: StringEntry): void {
  w.messageField(field, (s) => {
    s.stringField(1, e.key);
    s.stringField(2, e.value);
  });
}

function unknownOut(w: ProtoWriter, m: { unknown?: Uint8Array[] }): void {
  for (const u of m.unknown ?? []) w.raw(u);
}

function encodeTensor(w: ProtoWriter, t: TensorProto): void {
  w.packedInt64(1, t.dims);
  w.int64Field(2, t.dataType);
  if (t.floatData) w.packedFloat(4, t.floatData);
  if (t.int32Data) w.packedInt64(5, t.int32Data);
  for (const s of t.stringData ?? []) w.bytesField(6, s);
  if (t.int64Data) w.packedBig(7, t.int64Data);
  if (t.name) w.stringField(8, t.name);
  if (t.rawData) w.bytesField(9, t.rawData);
  if (t.doubleData) w.packedDouble(10, t.doubleData);
  if (t.uint64Data) w.packedBig(11, t.uint64Data);
  if (t.docString) w.stringField(12, t.docString);
  for (const e of t.externalData ?? []) encodeEntry(w, 13, e);
  if (t.dataLocation !== undefined) w.int64Field(14, t.dataLocation);
  unknownOut(w, t);
}

function encodeType(w: ProtoWriter, tp: TypeProto): void {
  if (tp.tensorType) {
    const tt = tp.tensorType;
    w.messageField(1, (s) => {
      s.int64Field(1, tt.elemType);
      if (tt.shape) {
        s.messageField(2, (sh) => {
          for (const d of tt.shape!) {
            sh.messageField(1, (dd) => {
              if (d.value !== undefined) dd.int64Field(1, d.value);
              if (d.param !== undefined) dd.stringField(2, d.param);
              if (d.denotation) dd.stringField(3, d.denotation);
            });
          }
        });
      }
    });
  }
  if (tp.denotation) w.stringField(6, tp.denotation);
  unknownOut(w, tp);
}

function encodeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.stringField(1, v.name);
  if (v.type) w.messageField(2, (s) => encodeType(s, v.type!));
  if (v.docString) w.stringField(3, v.docString);
  unknownOut(w, v);
}

function encodeAttribute(w: ProtoWriter, a: AttributeProto): void {
  w.stringField(1, a.name);
  if (a.f !== undefined) w.floatField(2, a.f);
  if (a.i !== undefined) w.int64Field(3, a.i);
  if (a.s !== undefined) w.bytesField(4, a.s);
  if (a.t) w.messageField(5, (s) => encodeTensor(s, a.t!));
  if (a.g) w.messageField(6, (s) => encodeGraph(s, a.g!));
  if (a.floats) w.packedFloat(7, a.floats);
  if (a.ints) w.packedInt64(8, a.ints);
  for (const s of a.strings ?? []) w.bytesField(9, s);
  for (const t of a.tensors ?? []) w.messageField(10, (s) => encodeTensor(s, t));
  for (const g of a.graphs ?? []) w.messageField(11, (s) => encodeGraph(s, g));
  if (a.docString) w.stringField(13, a.docString);
  w.int64Field(20, a.type);
  if (a.refAttrName) w.stringField(21, a.refAttrName);
  unknownOut(w, a);
}

function encodeNode(w: ProtoWriter, n: NodeProto): void {
  for (const i of n.input) w.stringField(1, i);
  for (const o of n.output) w.stringField(2, o);
  if (n.name) w.stringField(3, n.name);
  w.stringField(4, n.opType);
  for (const a of n.attribute) w.messageField(5, (s) => encodeAttribute(s, a));
  if (n.docString) w.stringField(6, n.docString);
  if (n.domain) w.stringField(7, n.domain);
  unknownOut(w, n);
}

function encodeGraph(w: ProtoWriter, g: GraphProto): void {
  for (const n of g.node) w.messageField(1, (s) => encodeNode(s, n));
  if (g.name) w.stringField(2, g.name);
  for (const t of g.initializer) w.messageField(5, (s) => encodeTensor(s, t));
  if (g.docString) w.stringField(10, g.docString);
  for (const v of g.input) w.messageField(11, (s) => encodeValueInfo(s, v));
  for (const v of g.output) w.messageField(12, (s) => encodeValueInfo(s, v));
  for (const v of g.valueInfo) w.messageField(13, (s) => encodeValueInfo(s, v));
  unknownOut(w, g);
}

/**
 * Encode a {@link ModelProto} to ONNX bytes (fields in field-number order, repeated scalars packed).
 *
 * @example
 * ```ts
 * import { encodeModel, emptyModel } from "./proto.ts";
 * const bytes = encodeModel(emptyModel(13));
 * if (bytes[0] !== 0x08) throw new Error("ir_version should come first");
 * ```
 */
export function encodeModel(m: ModelProto): Uint8Array {
  const w = new ProtoWriter();
  w.int64Field(1, m.irVersion);
  if (m.producerName) w.stringField(2, m.producerName);
  if (m.producerVersion) w.stringField(3, m.producerVersion);
  if (m.domain) w.stringField(4, m.domain);
  if (m.modelVersion) w.int64Field(5, m.modelVersion);
  if (m.docString) w.stringField(6, m.docString);
  w.messageField(7, (s) => encodeGraph(s, m.graph));
  for (const o of m.opsetImport) {
    w.messageField(8, (s) => {
      if (o.domain) s.stringField(1, o.domain);
      s.int64Field(2, o.version);
    });
  }
  for (const e of m.metadataProps) encodeEntry(w, 14, e);
  unknownOut(w, m);
  return w.finish();
}

/**
 * A model with an empty graph, IR version 8 and the default-domain opset `opset`.
 *
 * @example
 * ```ts
 * import { emptyModel } from "./proto.ts";
 * if (emptyModel(17).opsetImport[0].version !== 17) throw new Error("bad");
 * ```
 */
export function emptyModel(opset = 17): ModelProto {
  return {
    irVersion: 8,
    opsetImport: [{ domain: "", version: opset }],
    producerName: "quantlab",
    producerVersion: "0.1.0",
    domain: "",
    modelVersion: 0,
    docString: "",
    graph: { name: "graph", node: [], initializer: [], input: [], output: [], valueInfo: [] },
    metadataProps: [],
  };
}
