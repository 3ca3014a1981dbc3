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
export const AttributeType: {
  readonly UNDEFINED: 0;
  readonly FLOAT: 1;
  readonly INT: 2;
  readonly STRING: 3;
  readonly TENSOR: 4;
  readonly GRAPH: 5;
  readonly FLOATS: 6;
  readonly INTS: 7;
  readonly STRINGS: 8;
  readonly TENSORS: 9;
  readonly GRAPHS: 10;
  readonly SPARSE_TENSOR: 11;
  readonly SPARSE_TENSORS: 12;
  readonly TYPE_PROTO: 13;
  readonly TYPE_PROTOS: 14;
} = Object.freeze({
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

/** Enter the nested message of field `name` (wire type LEN), for errors indexed by `index` when repeated. */
function enter(r: R, wire: number, name: string, index = -1): R {
  r.expect(wire, WireType.LEN, name);
  r.enter(name, index);
  return r;
}

/**
 * Unknown fields of one message, as byte ranges `[start, end)` of the input (contiguous fields coalesce), copied
 * once into a single chunk when the message ends: no object per field.
 */
class Unknown {
  ranges: number[] | undefined;
  add(start: number, end: number): void {
    const r = this.ranges;
    if (r && r[r.length - 1] === start) r[r.length - 1] = end;
    else (this.ranges ??= []).push(start, end);
  }
  keep(r: R, wire: number, tagStart: number): void {
    r.skipField(wire);
    this.add(tagStart, r.pos);
  }
  into(r: R, m: { unknown?: Uint8Array[] }): void {
    const rs = this.ranges;
    if (!rs) return;
    if (rs.length === 2) {
      m.unknown = [r.bytes.slice(rs[0], rs[1])];
      return;
    }
    let n = 0;
    for (let i = 0; i < rs.length; i += 2) n += rs[i + 1] - rs[i];
    const out = new Uint8Array(n);
    for (let i = 0, at = 0; i < rs.length; i += 2) {
      out.set(r.bytes.subarray(rs[i], rs[i + 1]), at);
      at += rs[i + 1] - rs[i];
    }
    m.unknown = [out];
  }
}

type Typed = Float32Array | Float64Array | Int32Array | BigInt64Array | BigUint64Array;
type Part = Typed | number | bigint;

/**
 * One occurrence of a repeated numeric field: a packed run decodes straight into a typed array of its exact
 * element count; an unpacked element is one value. Parts are joined once by {@link joinParts}.
 */
function readNumbers(
  r: R,
  wire: number,
  elementWire: number,
  name: string,
  parts: Part[],
  alloc: (n: number) => Typed,
  one: (r: R) => number | bigint,
): void {
  if (wire === WireType.LEN) {
    r.enter(name);
    const len = r.end - r.pos;
    let n: number;
    if (elementWire === WireType.I32) n = len / 4;
    else if (elementWire === WireType.I64) n = len / 8;
    else n = r.countVarints(r.pos, r.end);
    if (!Number.isInteger(n)) r.fail(`packed ${name} of ${len} bytes is not a whole number of elements`);
    const out = alloc(n);
    for (let i = 0; i < n; i++) out[i] = one(r) as never;
    r.leave();
    parts.push(out);
  } else if (wire === elementWire) {
    parts.push(one(r));
  } else {
    r.fail(`field ${name} has wire type ${wire}, expected ${elementWire} or packed`);
  }
}

function joinParts<T extends Typed>(parts: Part[], alloc: (n: number) => T): T | undefined {
  if (parts.length === 0) return undefined;
  if (parts.length === 1 && typeof parts[0] === "object") return parts[0] as T;
  let n = 0;
  for (const p of parts) n += typeof p === "object" ? p.length : 1;
  const out = alloc(n);
  let at = 0;
  for (const p of parts) {
    if (typeof p === "object") {
      (out as unknown as { set(a: ArrayLike<number | bigint>, o: number): void }).set(p, at);
      at += p.length;
    } else out[at++] = p as never;
  }
  return out;
}

const f32 = (n: number) => new Float32Array(n);
const f64 = (n: number) => new Float64Array(n);
const i32 = (n: number) => new Int32Array(n);
const i64 = (n: number) => new BigInt64Array(n);
const u64 = (n: number) => new BigUint64Array(n);
const readFloat = (s: R) => s.float();
const readDouble = (s: R) => s.double();
const readInt32 = (s: R) => s.int32();
const readBig = (s: R) => s.int64Big();
const readUBig = (s: R) => s.uint64Big();

/** A repeated int64 field held as plain numbers (dims, attribute ints): appended to `into`. */
function readInts(r: R, wire: number, name: string, into: number[]): void {
  if (wire === WireType.LEN) {
    r.enter(name);
    while (r.more()) into.push(r.int64());
    r.leave();
  } else if (wire === WireType.VARINT) into.push(r.int64());
  else r.fail(`field ${name} has wire type ${wire}, expected 0 or packed`);
}

function decodeEntry(r: R): StringEntry {
  const e: StringEntry = { key: "", value: "" };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1) e.key = read(r, wire, 2, "key").string();
    else if (field === 2) e.value = read(r, wire, 2, "value").string();
    else r.skipField(wire);
  }
  return e;
}

function decodeOpset(r: R): OpsetImport {
  const o: OpsetImport = { domain: "", version: 0 };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1) o.domain = read(r, wire, 2, "domain").string();
    else if (field === 2) o.version = read(r, wire, 0, "version").int64();
    else r.skipField(wire);
  }
  return o;
}

function decodeTensor(r: R): TensorProto {
  const t: TensorProto = { name: "", dataType: 0, dims: [] };
  let floats: Part[] | undefined, ints: Part[] | undefined, doubles: Part[] | undefined;
  let big: Part[] | undefined, ubig: Part[] | undefined;
  const unknown = new Unknown();
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        readInts(r, wire, "dims", t.dims);
        break;
      case 2:
        t.dataType = read(r, wire, 0, "data_type").int32();
        break;
      case 4:
        readNumbers(r, wire, WireType.I32, "float_data", floats ??= [], f32, readFloat);
        break;
      case 5:
        readNumbers(r, wire, WireType.VARINT, "int32_data", ints ??= [], i32, readInt32);
        break;
      case 6:
        (t.stringData ??= []).push(read(r, wire, 2, "string_data").bytesCopy());
        break;
      case 7:
        readNumbers(r, wire, WireType.VARINT, "int64_data", big ??= [], i64, readBig);
        break;
      case 8:
        t.name = read(r, wire, 2, "name").string();
        break;
      case 9:
        t.rawData = read(r, wire, 2, "raw_data").bytesCopy();
        break;
      case 10:
        readNumbers(r, wire, WireType.I64, "double_data", doubles ??= [], f64, readDouble);
        break;
      case 11:
        readNumbers(r, wire, WireType.VARINT, "uint64_data", ubig ??= [], u64, readUBig);
        break;
      case 12:
        t.docString = read(r, wire, 2, "doc_string").string();
        break;
      case 13:
        (t.externalData ??= []).push(decodeEntry(enter(r, wire, "external_data", t.externalData?.length ?? 0)));
        r.leave();
        break;
      case 14:
        t.dataLocation = read(r, wire, 0, "data_location").int32();
        break;
      default:
        unknown.keep(r, wire, tagStart);
    }
  }
  if (floats) t.floatData = joinParts(floats, f32);
  if (ints) t.int32Data = joinParts(ints, i32);
  if (doubles) t.doubleData = joinParts(doubles, f64);
  if (big) t.int64Data = joinParts(big, i64);
  if (ubig) t.uint64Data = joinParts(ubig, u64);
  unknown.into(r, t);
  return t;
}

function decodeDim(r: R): Dim {
  const d: Dim = {};
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1) d.value = read(r, wire, 0, "dim_value").int64();
    else if (field === 2) d.param = read(r, wire, 2, "dim_param").string();
    else if (field === 3) d.denotation = read(r, wire, 2, "denotation").string();
    else r.skipField(wire);
  }
  return d;
}

function decodeType(r: R): TypeProto {
  const tp: TypeProto = {};
  const unknown = new Unknown();
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    if (field === 1 && wire === 2) {
      r.enter("tensor_type");
      const tt: { elemType: number; shape?: Dim[] } = { elemType: 0 };
      while (r.more()) {
        const f = r.tag();
        if (f.field === 1) tt.elemType = read(r, f.wire, 0, "elem_type").int32();
        else if (f.field === 2) {
          enter(r, f.wire, "shape");
          tt.shape = [];
          while (r.more()) {
            const g = r.tag();
            if (g.field === 1) {
              tt.shape.push(decodeDim(enter(r, g.wire, "dim", tt.shape.length)));
              r.leave();
            } else r.skipField(g.wire);
          }
          r.leave();
        } else r.skipField(f.wire);
      }
      r.leave();
      tp.tensorType = tt;
    } else if (field === 6 && wire === 2) tp.denotation = r.string();
    else unknown.keep(r, wire, tagStart);
  }
  unknown.into(r, tp);
  return tp;
}

function decodeValueInfo(r: R): ValueInfo {
  const v: ValueInfo = { name: "" };
  const unknown = new Unknown();
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    if (field === 1) v.name = read(r, wire, 2, "name").string();
    else if (field === 2) {
      v.type = decodeType(enter(r, wire, "type"));
      r.leave();
    } else if (field === 3) v.docString = read(r, wire, 2, "doc_string").string();
    else unknown.keep(r, wire, tagStart);
  }
  unknown.into(r, v);
  return v;
}

function decodeAttribute(r: R, depth: number): AttributeProto {
  const a: AttributeProto = { name: "", type: 0 };
  const unknown = new Unknown();
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
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
        a.t = decodeTensor(enter(r, wire, "t"));
        r.leave();
        break;
      case 6:
        a.g = decodeGraph(enter(r, wire, "g"), depth + 1);
        r.leave();
        break;
      case 7:
        if (wire === WireType.LEN) {
          r.enter("floats");
          const n = (r.end - r.pos) / 4;
          if (!Number.isInteger(n)) r.fail("packed floats is not a whole number of float32 values");
          const fl = (a.floats ??= []);
          for (let i = 0; i < n; i++) fl.push(r.float());
          r.leave();
        } else (a.floats ??= []).push(read(r, wire, 5, "floats").float());
        break;
      case 8:
        readInts(r, wire, "ints", a.ints ??= []);
        break;
      case 9:
        (a.strings ??= []).push(read(r, wire, 2, "strings").bytesCopy());
        break;
      case 10:
        (a.tensors ??= []).push(decodeTensor(enter(r, wire, "tensors", a.tensors?.length ?? 0)));
        r.leave();
        break;
      case 11:
        (a.graphs ??= []).push(decodeGraph(enter(r, wire, "graphs", a.graphs?.length ?? 0), depth + 1));
        r.leave();
        break;
      case 13:
        a.docString = read(r, wire, 2, "doc_string").string();
        break;
      case 21:
        a.refAttrName = read(r, wire, 2, "ref_attr_name").string();
        break;
      default:
        unknown.keep(r, wire, tagStart);
    }
  }
  unknown.into(r, a);
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
  const unknown = new Unknown();
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
        n.attribute.push(decodeAttribute(enter(r, wire, "attribute", n.attribute.length), depth));
        r.leave();
        break;
      case 6:
        n.docString = read(r, wire, 2, "doc_string").string();
        break;
      default:
        unknown.keep(r, wire, tagStart);
    }
  }
  // Checked here, not only in validation: a flood of empty nodes must stop at the first (bounded memory).
  if (!n.opType) r.fail("node has no op_type");
  unknown.into(r, n);
  return n;
}

function decodeGraph(r: R, depth: number): GraphProto {
  if (depth > MAX_GRAPH_DEPTH) r.fail(`subgraphs nested deeper than ${MAX_GRAPH_DEPTH} levels`);
  const g: GraphProto = { name: "", node: [], initializer: [], input: [], output: [], valueInfo: [] };
  const unknown = new Unknown();
  while (r.more()) {
    const tagStart = r.pos;
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        g.node.push(decodeNode(enter(r, wire, "node", g.node.length), depth));
        r.leave();
        break;
      case 2:
        g.name = read(r, wire, 2, "name").string();
        break;
      case 5:
        g.initializer.push(decodeTensor(enter(r, wire, "initializer", g.initializer.length)));
        r.leave();
        break;
      case 10:
        g.docString = read(r, wire, 2, "doc_string").string();
        break;
      case 11:
        g.input.push(decodeValueInfo(enter(r, wire, "input", g.input.length)));
        r.leave();
        break;
      case 12:
        g.output.push(decodeValueInfo(enter(r, wire, "output", g.output.length)));
        r.leave();
        break;
      case 13:
        g.valueInfo.push(decodeValueInfo(enter(r, wire, "value_info", g.valueInfo.length)));
        r.leave();
        break;
      default:
        unknown.keep(r, wire, tagStart);
    }
  }
  unknown.into(r, g);
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
    const unknown = new Unknown();
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
          m.graph = decodeGraph(enter(r, wire, "graph"), 0);
          r.leave();
          sawGraph = true;
          break;
        case 8:
          m.opsetImport.push(decodeOpset(enter(r, wire, "opset_import", m.opsetImport.length)));
          r.leave();
          break;
        case 14:
          m.metadataProps.push(decodeEntry(enter(r, wire, "metadata_props", m.metadataProps.length)));
          r.leave();
          break;
        default:
          unknown.keep(r, wire, tagStart);
      }
    }
    unknown.into(r, m);
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
  return ProtoWriter.encode((w) => encodeModelBody(w, m));
}

function encodeModelBody(w: ProtoWriter, m: ModelProto): void {
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
