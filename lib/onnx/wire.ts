/**
 * A small, defensive protobuf wire-format reader and writer (proto2/proto3 binary encoding).
 *
 * Written by hand rather than taken from protobufjs: the ONNX messages quantlab needs are few, a hand codec is
 * ~400 lines with no dependency and no runtime `.proto` parsing, and every read is bounds-checked against the
 * enclosing message so that truncated or corrupt bytes end in one typed error (never a `RangeError`, a hang, or
 * an allocation larger than the input).
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
export const WireType = Object.freeze({ VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 });

const TWO32 = 4294967296;
const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/**
 * A bounds-checked cursor over protobuf bytes. Errors are `MALFORMED_MODEL` naming `where` and the byte offset.
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
  /** One past the last byte this reader may read. */
  readonly end: number;
  #view: DataView;

  /** Read `bytes[start, end)`; `where` names the message for error messages. */
  constructor(readonly bytes: Uint8Array, public where: string, start = 0, end = bytes.length) {
    this.pos = start;
    this.end = end;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** True while bytes remain. */
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

  /** A varint as a 32-bit unsigned number (longer varints are read and truncated to their low 32 bits). */
  uint32(): number {
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
    const v = this.bytesView();
    try {
      return DECODER.decode(v);
    } catch {
      this.fail("invalid UTF-8 in a string field");
    }
  }

  /** A sub-reader over a length-delimited nested message. */
  sub(where: string): ProtoReader {
    const { start, end } = this.span(where.slice(where.lastIndexOf(" ") + 1));
    return new ProtoReader(this.bytes, where, start, end);
  }

  /** Skip one field of the given wire type; returns the raw bytes of the whole field (tag included) from `tagStart`. */
  skip(wire: number, tagStart: number): Uint8Array {
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
    return this.bytes.slice(tagStart, this.pos);
  }

  /** Read a repeated scalar, packed or not: calls `one` once per element. */
  repeated(wire: number, elementWire: number, one: (r: ProtoReader) => void): void {
    if (wire === WireType.LEN) {
      const sub = this.sub(this.where);
      while (sub.more()) one(sub);
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

/**
 * A growable protobuf writer.
 *
 * @example
 * ```ts
 * import { ProtoWriter } from "./wire.ts";
 * const w = new ProtoWriter();
 * w.int64Field(1, 150);
 * if (w.finish().join() !== "8,150,1") throw new Error("bad");
 * ```
 */
export class ProtoWriter {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  /** Bytes written so far. */
  length = 0;

  #grow(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.#buf.subarray(0, this.length));
    this.#buf = b;
    this.#view = new DataView(b.buffer);
  }

  /** Write an unsigned varint (0 <= v < 2^53). */
  varint(v: number): void {
    this.#grow(10);
    while (v >= 0x80) {
      this.#buf[this.length++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#buf[this.length++] = v;
  }

  /** Write a signed 64-bit varint from a bigint (two's complement, 10 bytes when negative). */
  varintBig(v: bigint): void {
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
    this.#grow(bytes.length);
    this.#buf.set(bytes, this.length);
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
    this.#grow(4);
    this.#view.setFloat32(this.length, v, true);
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
    this.bytesField(field, ENCODER.encode(v));
  }

  /** Nested message field written by `body`. */
  messageField(field: number, body: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    body(inner);
    this.bytesField(field, inner.finish());
  }

  /** Packed repeated int64 (as doubles). */
  packedInt64(field: number, values: ArrayLike<number>): void {
    if (values.length === 0) return;
    const inner = new ProtoWriter();
    for (let i = 0; i < values.length; i++) inner.int64(values[i]);
    this.bytesField(field, inner.finish());
  }

  /** Packed repeated int64 from bigints. */
  packedBig(field: number, values: ArrayLike<bigint>): void {
    if (values.length === 0) return;
    const inner = new ProtoWriter();
    for (let i = 0; i < values.length; i++) inner.varintBig(values[i]);
    this.bytesField(field, inner.finish());
  }

  /** Packed repeated float32. */
  packedFloat(field: number, values: ArrayLike<number>): void {
    if (values.length === 0) return;
    const f = Float32Array.from(values);
    this.bytesField(field, new Uint8Array(littleEndian(f.buffer, 4)));
  }

  /** Packed repeated float64. */
  packedDouble(field: number, values: ArrayLike<number>): void {
    if (values.length === 0) return;
    const f = Float64Array.from(values);
    this.bytesField(field, new Uint8Array(littleEndian(f.buffer, 8)));
  }

  /** The bytes written (a copy of exactly `length` bytes). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndian(buf: ArrayBuffer, width: number): ArrayBuffer {
  if (LITTLE) return buf;
  const b = new Uint8Array(buf.slice(0));
  for (let i = 0; i < b.length; i += width) b.subarray(i, i + width).reverse();
  return b.buffer;
}
