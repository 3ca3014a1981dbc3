/**
 * A small, defensive protobuf wire-format reader and writer (proto2/proto3 binary encoding).
 *
 * Written by hand rather than taken from protobufjs: the ONNX messages quantlab needs are few, a hand codec is
 * ~500 lines with no dependency and no runtime `.proto` parsing, and every read is bounds-checked against the
 * enclosing message so that truncated or corrupt bytes end in one typed error (never a `RangeError` or a hang).
 *
 * Costs, held by `tests/hostile/` and measured in `benchmarks/onnx_codec_bench.ts`:
 * - **Reading** is one pass: nested messages are entered and left on one cursor ({@link ProtoReader.enter}), so a
 *   message costs no reader, view or path string (the path in error messages is built only on failure).
 *   {@link ProtoReader.countVarints} sizes packed arrays before they are allocated.
 * - **Writing** sizes once: {@link ProtoWriter.encode} runs the message body twice, first measuring (every
 *   nested message's length is recorded in order), then writing into one buffer of exactly the final size. The
 *   extra memory of an encode is the output plus one number per nested message; nothing is copied twice.
 *   A `new ProtoWriter()` without `encode` grows by doubling (fine for small messages).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/**
 * Wire types of the protobuf encoding.
 *
 * @example
 * ```ts
 * import { WireType } from "./wire.ts";
 * if (WireType.VARINT !== 0 || WireType.LEN !== 2 || WireType.I32 !== 5) throw new Error("bad");
 * ```
 */
export const WireType: {
  readonly VARINT: 0;
  readonly I64: 1;
  readonly LEN: 2;
  readonly SGROUP: 3;
  readonly EGROUP: 4;
  readonly I32: 5;
} = Object.freeze({ VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 });

const TWO32 = 4294967296;
const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/**
 * A bounds-checked cursor over protobuf bytes. Errors are `MALFORMED_MODEL` naming `where` (plus the path of
 * the messages entered) and the byte offset.
 *
 * @example
 * ```ts
 * import { ProtoReader } from "./wire.ts";
 * const r = new ProtoReader(new Uint8Array([0x08, 0x96, 0x01]), "example");
 * const { field, wire } = r.tag();
 * if (field !== 1 || wire !== 0 || r.int64() !== 150) throw new Error("bad");
 * ```
 */
export class ProtoReader {
  /** Current byte offset into `bytes`. */
  pos: number;
  /** One past the last byte of the message being read. */
  end: number;
  #view: DataView;
  #base: string;
  // The stack of entered messages: saved ends, field names and indexes (-1: not repeated).
  #ends: number[] = [];
  #names: string[] = [];
  #indexes: number[] = [];

  /** Read `bytes[start, end)`; `where` names the message for error messages. */
  constructor(readonly bytes: Uint8Array, where: string, start = 0, end = bytes.length, view?: DataView) {
    this.pos = start;
    this.end = end;
    this.#base = where;
    this.#view = view ?? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The message path for error messages, e.g. `m.onnx: ModelProto.graph.node[3]` (built on demand). */
  get where(): string {
    let s = this.#base;
    for (let i = 0; i < this.#names.length; i++) {
      s += `.${this.#names[i]}${this.#indexes[i] >= 0 ? `[${this.#indexes[i]}]` : ""}`;
    }
    return s;
  }

  /** True while bytes remain in the current message. */
  more(): boolean {
    return this.pos < this.end;
  }

  /** Throw a `MALFORMED_MODEL` error at the current position. */
  fail(what: string): never {
    throw new QuantlabError(
      "MALFORMED_MODEL",
      `${this.where}: ${what} at byte ${this.pos}; the model bytes are corrupt or truncated`,
    );
  }

  /**
   * Enter the length-delimited message that follows (named `name`, index `index` when repeated, for errors):
   * reads narrow to it until {@link leave}.
   */
  enter(name: string, index = -1): void {
    const len = this.uint32();
    const left = this.end - this.pos;
    this.#ends.push(this.end);
    this.#names.push(name);
    this.#indexes.push(index);
    if (len > left) this.fail(`length ${len} runs past the end of the enclosing message (${left} bytes left)`);
    this.end = this.pos + len;
  }

  /** Leave the message entered last (its bytes must all have been read). */
  leave(): void {
    if (this.pos !== this.end) this.fail("message not fully read");
    this.end = this.#ends.pop()!;
    this.#names.pop();
    this.#indexes.pop();
  }

  /** Entered-message depth. */
  get depth(): number {
    return this.#ends.length;
  }

  /** A varint as a 32-bit unsigned number (longer varints are read and truncated to their low 32 bits). */
  uint32(): number {
    const b0 = this.pos < this.end ? this.bytes[this.pos] : 0x80;
    if (b0 < 0x80) {
      this.pos++;
      return b0;
    }
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.bytes[this.pos++];
      if (shift < 32) result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result % TWO32;
      shift += 7;
    }
    this.fail("varint longer than 10 bytes");
  }

  /** A varint as a signed 64-bit value in a double (exact up to 2^53; INT64 extremes map to ±2^63). */
  int64(): number {
    const b0 = this.pos < this.end ? this.bytes[this.pos] : 0x80;
    if (b0 < 0x80) {
      this.pos++;
      return b0;
    }
    const { lo, hi } = this.#varint64();
    const h = hi | 0;
    return h * TWO32 + lo;
  }

  /** A varint as an exact signed 64-bit bigint. */
  int64Big(): bigint {
    const { lo, hi } = this.#varint64();
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
  }

  /** A varint as an exact unsigned 64-bit bigint. */
  uint64Big(): bigint {
    const { lo, hi } = this.#varint64();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  #varint64(): { lo: number; hi: number } {
    let lo = 0, hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.bytes[this.pos++];
      const bits = b & 0x7f;
      if (i < 4) lo += bits * 2 ** (7 * i);
      else if (i === 4) {
        lo += (bits & 0x0f) * 2 ** 28;
        hi += bits >>> 4;
      } else hi += bits * 2 ** (7 * i - 32);
      if ((b & 0x80) === 0) return { lo: lo % TWO32, hi: hi % TWO32 };
    }
    this.fail("varint longer than 10 bytes");
  }

  /** A 32-bit signed varint (int32 / enum fields). */
  int32(): number {
    return this.int64() | 0;
  }

  /** A little-endian float32 (wire type I32). */
  float(): number {
    this.#need(4, "float");
    const v = this.#view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A little-endian float64 (wire type I64). */
  double(): number {
    this.#need(8, "double");
    const v = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  #need(n: number, what: string): void {
    if (n > this.end - this.pos) this.fail(`truncated ${what} (needs ${n} bytes, ${this.end - this.pos} left)`);
  }

  /** The next field tag. Field 0 and wire types 6/7 are errors. */
  tag(): { field: number; wire: number } {
    const t = this.uint32();
    const field = Math.floor(t / 8);
    const wire = t & 7;
    if (field === 0) this.fail("field number 0");
    if (wire > 5) this.fail(`invalid wire type ${wire}`);
    return { field, wire };
  }

  /** The `[start, end)` of a length-delimited payload, advancing past it (no copy). */
  span(field?: string): { start: number; end: number } {
    const len = this.uint32();
    if (len > this.end - this.pos) {
      this.fail(
        `${field ? `${field}: ` : ""}length ${len} runs past the end of the message (${
          this.end - this.pos
        } bytes left)`,
      );
    }
    const start = this.pos;
    this.pos += len;
    return { start, end: this.pos };
  }

  /** A length-delimited payload as a view into the input (no copy). */
  bytesView(): Uint8Array {
    const { start, end } = this.span();
    return this.bytes.subarray(start, end);
  }

  /** A length-delimited payload as a copy (so decoded models do not pin the input buffer). */
  bytesCopy(): Uint8Array {
    return this.bytesView().slice();
  }

  /** A length-delimited UTF-8 string (invalid sequences are an error). */
  string(): string {
    const len = this.uint32();
    if (len > this.end - this.pos) this.fail(`string: length ${len} runs past the end of the message`);
    const start = this.pos;
    this.pos += len;
    if (len === 0) return "";
    try {
      return DECODER.decode(this.bytes.subarray(start, start + len));
    } catch {
      this.pos = start;
      this.fail("invalid UTF-8 in a string field");
    }
  }

  /** A separate reader over a length-delimited nested message (sharing this reader's view). */
  sub(where: string): ProtoReader {
    const { start, end } = this.span(where.slice(where.lastIndexOf(" ") + 1));
    return new ProtoReader(this.bytes, where, start, end, this.#view);
  }

  /** Skip one field of the given wire type (no copy). */
  skipField(wire: number): void {
    switch (wire) {
      case WireType.VARINT:
        this.#varint64();
        break;
      case WireType.I64:
        this.#need(8, "fixed64");
        this.pos += 8;
        break;
      case WireType.LEN:
        this.span();
        break;
      case WireType.I32:
        this.#need(4, "fixed32");
        this.pos += 4;
        break;
      default:
        this.fail(`unsupported wire type ${wire} (groups are not used by ONNX)`);
    }
  }

  /** Skip one field of the given wire type; returns the raw bytes of the whole field (tag included) from `tagStart`. */
  skip(wire: number, tagStart: number): Uint8Array {
    this.skipField(wire);
    return this.bytes.slice(tagStart, this.pos);
  }

  /** Varints in `bytes[start, end)` (the element count of a packed varint array, without decoding it). */
  countVarints(start: number, end: number): number {
    let n = 0;
    const b = this.bytes;
    for (let i = start; i < end; i++) if (b[i] < 0x80) n++;
    return n;
  }

  /** Read a repeated scalar, packed or not: calls `one` once per element. */
  repeated(wire: number, elementWire: number, one: (r: ProtoReader) => void): void {
    if (wire === WireType.LEN) {
      this.enter("packed");
      while (this.more()) one(this);
      this.leave();
    } else if (wire === elementWire) {
      one(this);
    } else {
      this.fail(`wire type ${wire} where ${elementWire} or packed was expected`);
    }
  }

  /** Check that a field has the expected wire type. */
  expect(wire: number, expected: number, field: string): void {
    if (wire !== expected) this.fail(`field ${field} has wire type ${wire}, expected ${expected}`);
  }
}

const DECODER = new TextDecoder("utf-8", { fatal: true });
const ENCODER = new TextEncoder();

/** Bytes of the UTF-8 encoding of `s` (lone surrogates count 3, as `TextEncoder` writes U+FFFD). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // 4 bytes for 2 UTF-16 units
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function int64Length(v: number): number {
  if (v >= 0 && v < 2 ** 53) return varintLength(v);
  if (v < 0) return 10;
  return v >= 9223372036854775807 ? 9 : bigLength(BigInt(Math.trunc(v)));
}

function bigLength(v: bigint): number {
  let u = BigInt.asUintN(64, v);
  let n = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    n++;
  }
  return n;
}

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A protobuf writer. {@link ProtoWriter.encode} sizes a message once and writes it into an exact buffer; a
 * plain `new ProtoWriter()` grows by doubling.
 *
 * @example
 * ```ts
 * import { ProtoWriter } from "./wire.ts";
 * const w = new ProtoWriter();
 * w.int64Field(1, 150);
 * if (w.finish().join() !== "8,150,1") throw new Error("bad");
 * const exact = ProtoWriter.encode((s) => s.messageField(2, (m) => m.stringField(1, "hi")));
 * if (exact.join() !== "18,4,10,2,104,105") throw new Error(exact.join());
 * ```
 */
export class ProtoWriter {
  #buf: Uint8Array;
  #view: DataView;
  // 0: growable, 1: measuring, 2: writing into an exact buffer.
  #mode: 0 | 1 | 2 = 0;
  #sizes: number[] = [];
  #sizeAt = 0;
  /** Bytes written (or measured) so far. */
  length = 0;

  /** A growable writer. */
  constructor() {
    this.#buf = new Uint8Array(256);
    this.#view = new DataView(this.#buf.buffer);
  }

  /**
   * Encode the message written by `body` with one exact allocation: `body` runs twice (measure, then write),
   * so it must write the same fields both times.
   */
  static encode(body: (w: ProtoWriter) => void): Uint8Array {
    const m = new ProtoWriter();
    m.#mode = 1;
    m.#buf = new Uint8Array(0);
    body(m);
    const w = new ProtoWriter();
    w.#mode = 2;
    w.#buf = new Uint8Array(m.length);
    w.#view = new DataView(w.#buf.buffer);
    w.#sizes = m.#sizes;
    body(w);
    if (w.length !== m.length || w.#sizeAt !== m.#sizes.length) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `ProtoWriter.encode: the message changed between measuring (${m.length} bytes) and writing (${w.length})`,
      );
    }
    return w.#buf;
  }

  #grow(n: number): void {
    // An exact buffer never grows: a write past its end is caught by the length check of `encode`.
    if (this.length + n <= this.#buf.length || this.#mode === 2) return;
    let cap = this.#buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.#buf.subarray(0, this.length));
    this.#buf = b;
    this.#view = new DataView(b.buffer);
  }

  /** Write an unsigned varint (0 <= v < 2^53). */
  varint(v: number): void {
    if (this.#mode === 1) {
      this.length += varintLength(v);
      return;
    }
    this.#grow(10);
    while (v >= 0x80) {
      this.#buf[this.length++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#buf[this.length++] = v;
  }

  /** Write a signed 64-bit varint from a bigint (two's complement, 10 bytes when negative). */
  varintBig(v: bigint): void {
    if (this.#mode === 1) {
      this.length += bigLength(v);
      return;
    }
    let u = BigInt.asUintN(64, v);
    this.#grow(10);
    while (u >= 0x80n) {
      this.#buf[this.length++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.#buf[this.length++] = Number(u);
  }

  /** Write a signed int64 held in a double; values beyond ±2^63 saturate to INT64_MAX / INT64_MIN. */
  int64(v: number): void {
    if (v >= 0 && v < 2 ** 53) return this.varint(v);
    if (this.#mode === 1) {
      this.length += int64Length(v);
      return;
    }
    let b: bigint;
    if (v >= 9223372036854775807) b = INT64_MAX;
    else if (v <= -9223372036854775808) b = INT64_MIN;
    else b = BigInt(Math.trunc(v));
    this.varintBig(b);
  }

  /** Write a field tag. */
  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** Write raw bytes. */
  raw(bytes: Uint8Array): void {
    if (this.#mode !== 1) {
      this.#grow(bytes.length);
      this.#buf.set(bytes, this.length);
    }
    this.length += bytes.length;
  }

  /** int64 field. */
  int64Field(field: number, v: number): void {
    this.tag(field, WireType.VARINT);
    this.int64(v);
  }

  /** float field (I32). */
  floatField(field: number, v: number): void {
    this.tag(field, WireType.I32);
    if (this.#mode !== 1) {
      this.#grow(4);
      this.#view.setFloat32(this.length, v, true);
    }
    this.length += 4;
  }

  /** bytes field. */
  bytesField(field: number, v: Uint8Array): void {
    this.tag(field, WireType.LEN);
    this.varint(v.length);
    this.raw(v);
  }

  /** string field (UTF-8). */
  stringField(field: number, v: string): void {
    this.tag(field, WireType.LEN);
    if (this.#mode === 0) {
      const b = ENCODER.encode(v);
      this.varint(b.length);
      this.raw(b);
      return;
    }
    const n = utf8Length(v);
    this.varint(n);
    if (this.#mode === 2) ENCODER.encodeInto(v, this.#buf.subarray(this.length, this.length + n));
    this.length += n;
  }

  /** Nested message field written by `body`. */
  messageField(field: number, body: (w: ProtoWriter) => void): void {
    this.tag(field, WireType.LEN);
    if (this.#mode === 0) {
      const inner = new ProtoWriter();
      body(inner);
      this.varint(inner.length);
      this.raw(inner.#buf.subarray(0, inner.length));
    } else if (this.#mode === 1) {
      const at = this.#sizes.length;
      this.#sizes.push(0);
      const before = this.length;
      body(this);
      const size = this.length - before;
      this.#sizes[at] = size;
      this.length += varintLength(size);
    } else {
      const size = this.#sizes[this.#sizeAt++];
      this.varint(size);
      const before = this.length;
      body(this);
      if (this.length - before !== size) {
        throw new QuantlabError("INVALID_ARGUMENT", "ProtoWriter.encode: a nested message changed size between passes");
      }
    }
  }

  /** Packed repeated int64 (as doubles). */
  packedInt64(field: number, values: ArrayLike<number>): void {
    if (values.length === 0) return;
    let n = 0;
    for (let i = 0; i < values.length; i++) n += int64Length(values[i]);
    this.tag(field, WireType.LEN);
    this.varint(n);
    if (this.#mode === 1) this.length += n;
    else for (let i = 0; i < values.length; i++) this.int64(values[i]);
  }

  /** Packed repeated int64 from bigints. */
  packedBig(field: number, values: ArrayLike<bigint>): void {
    if (values.length === 0) return;
    let n = 0;
    for (let i = 0; i < values.length; i++) n += bigLength(values[i]);
    this.tag(field, WireType.LEN);
    this.varint(n);
    if (this.#mode === 1) this.length += n;
    else for (let i = 0; i < values.length; i++) this.varintBig(values[i]);
  }

  #packedFixed(field: number, values: ArrayLike<number>, width: 4 | 8): void {
    if (values.length === 0) return;
    const n = values.length * width;
    this.tag(field, WireType.LEN);
    this.varint(n);
    if (this.#mode !== 1) {
      this.#grow(n);
      const typed = width === 4 ? values instanceof Float32Array : values instanceof Float64Array;
      if (LITTLE && typed) {
        const v = values as Float32Array | Float64Array;
        this.#buf.set(new Uint8Array(v.buffer, v.byteOffset, n), this.length);
      } else {
        for (let i = 0; i < values.length; i++) {
          if (width === 4) this.#view.setFloat32(this.length + 4 * i, values[i], true);
          else this.#view.setFloat64(this.length + 8 * i, values[i], true);
        }
      }
    }
    this.length += n;
  }

  /** Packed repeated float32. */
  packedFloat(field: number, values: ArrayLike<number>): void {
    this.#packedFixed(field, values, 4);
  }

  /** Packed repeated float64. */
  packedDouble(field: number, values: ArrayLike<number>): void {
    this.#packedFixed(field, values, 8);
  }

  /** The bytes written (a copy of exactly `length` bytes). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}
