/**
 * Reading and writing the values of ONNX `TensorProto`s as typed arrays.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { TensorProto } from "./proto.ts";

/**
 * `TensorProto.DataType` codes.
 *
 * @example
 * ```ts
 * import { DataType } from "./tensor_data.ts";
 * if (DataType.FLOAT !== 1 || DataType.UINT8 !== 2 || DataType.INT8 !== 3) throw new Error("bad");
 * ```
 */
export const DataType: {
  readonly UNDEFINED: 0;
  readonly FLOAT: 1;
  readonly UINT8: 2;
  readonly INT8: 3;
  readonly UINT16: 4;
  readonly INT16: 5;
  readonly INT32: 6;
  readonly INT64: 7;
  readonly STRING: 8;
  readonly BOOL: 9;
  readonly FLOAT16: 10;
  readonly DOUBLE: 11;
  readonly UINT32: 12;
  readonly UINT64: 13;
} = Object.freeze({
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
});

const NAMES: Record<number, string> = {
  0: "undefined",
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  14: "complex64",
  15: "complex128",
  16: "bfloat16",
};

/**
 * A readable name for a data type code (`"float32"`, `"int8"`, ...), as onnxruntime's JS API spells them.
 *
 * @example
 * ```ts
 * import { dataTypeName } from "./tensor_data.ts";
 * if (dataTypeName(1) !== "float32" || dataTypeName(3) !== "int8") throw new Error("bad");
 * ```
 */
export function dataTypeName(code: number): string {
  return NAMES[code] ?? `type#${code}`;
}

/** Typed arrays a tensor's values decode to (float16 decodes to float32). */
export type TensorValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

const WIDTH: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8 };

/**
 * Number of elements of a tensor proto's dims.
 *
 * @example
 * ```ts
 * import { elementCount } from "./tensor_data.ts";
 * if (elementCount({ name: "w", dims: [2, 3] }) !== 6 || elementCount({ name: "s", dims: [] }) !== 1) {
 *   throw new Error("bad");
 * }
 * ```
 */
export function elementCount(t: Pick<TensorProto, "dims" | "name">): number {
  let n = 1;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new QuantlabError("MALFORMED_MODEL", `tensor "${t.name}": dimension ${d} is not a non-negative integer`);
    }
    n *= d;
  }
  return n;
}

/**
 * Convert an IEEE half-precision bit pattern to a number.
 *
 * @example
 * ```ts
 * import { halfToFloat } from "./tensor_data.ts";
 * if (halfToFloat(0x3c00) !== 1 || halfToFloat(0xc000) !== -2 || halfToFloat(0x7c00) !== Infinity) {
 *   throw new Error("bad");
 * }
 * ```
 */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * Decode a tensor proto's values (from `raw_data` or the typed fields) into a fresh typed array.
 * float16 becomes float32, bool becomes uint8 (0/1). Throws `MALFORMED_MODEL` when the data length disagrees
 * with the dims and `UNSUPPORTED` for external data, strings and complex types.
 *
 * @example
 * ```ts
 * import { tensorValues, makeTensorProto } from "./tensor_data.ts";
 * const t = makeTensorProto("w", new Float32Array([1, 2, 3]), [3]);
 * if ((tensorValues(t) as Float32Array)[2] !== 3) throw new Error("bad");
 * ```
 */
export function tensorValues(t: TensorProto): TensorValues {
  const what = `tensor "${t.name}" (${dataTypeName(t.dataType)}, dims [${t.dims}])`;
  if (t.dataLocation === 1) {
    throw new QuantlabError("UNSUPPORTED", `${what}: external data is not supported; save the model with data inline`);
  }
  const n = elementCount(t);
  const width = WIDTH[t.dataType];
  if (width === undefined) throw new QuantlabError("UNSUPPORTED", `${what}: data type is not supported`);
  if (t.rawData) {
    if (t.rawData.length !== n * width) {
      throw new QuantlabError(
        "MALFORMED_MODEL",
        `${what}: raw_data has ${t.rawData.length} bytes, expected ${n * width}`,
      );
    }
    const buf = t.rawData.slice().buffer; // aligned copy
    const dv = new DataView(buf);
    switch (t.dataType) {
      case DataType.FLOAT: {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
        return out;
      }
      case DataType.UINT8:
      case DataType.BOOL:
        return new Uint8Array(buf);
      case DataType.INT8:
        return new Int8Array(buf);
      case DataType.UINT16: {
        const out = new Uint16Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
        return out;
      }
      case DataType.INT16: {
        const out = new Int16Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
        return out;
      }
      case DataType.INT32: {
        const out = new Int32Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
        return out;
      }
      case DataType.UINT32: {
        const out = new Uint32Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true);
        return out;
      }
      case DataType.INT64: {
        const out = new BigInt64Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getBigInt64(8 * i, true);
        return out;
      }
      case DataType.UINT64: {
        const out = new BigUint64Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getBigUint64(8 * i, true);
        return out;
      }
      case DataType.DOUBLE: {
        const out = new Float64Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
        return out;
      }
      case DataType.FLOAT16: {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
        return out;
      }
    }
  }
  const check = (len: number, field: string) => {
    if (len !== n) throw new QuantlabError("MALFORMED_MODEL", `${what}: ${field} holds ${len} values, expected ${n}`);
  };
  switch (t.dataType) {
    case DataType.FLOAT:
      check(t.floatData?.length ?? 0, "float_data");
      return (t.floatData ?? new Float32Array(0)).slice();
    case DataType.DOUBLE:
      check(t.doubleData?.length ?? 0, "double_data");
      return (t.doubleData ?? new Float64Array(0)).slice();
    case DataType.INT64:
      check(t.int64Data?.length ?? 0, "int64_data");
      return (t.int64Data ?? new BigInt64Array(0)).slice();
    case DataType.UINT32:
    case DataType.UINT64: {
      const src = t.uint64Data ?? new BigUint64Array(0);
      check(src.length, "uint64_data");
      return t.dataType === DataType.UINT64 ? src.slice() : Uint32Array.from(src, (v) => Number(v));
    }
  }
  const src = t.int32Data ?? new Int32Array(0);
  check(src.length, "int32_data");
  switch (t.dataType) {
    case DataType.INT32:
      return src.slice();
    case DataType.INT8:
      return Int8Array.from(src);
    case DataType.UINT8:
    case DataType.BOOL:
      return Uint8Array.from(src);
    case DataType.INT16:
      return Int16Array.from(src);
    case DataType.UINT16:
      return Uint16Array.from(src);
    case DataType.FLOAT16:
      return Float32Array.from(src, (v) => halfToFloat(v & 0xffff));
  }
  throw new QuantlabError("UNSUPPORTED", `${what}: data type is not supported`);
}

function codeFor(values: TensorValues): number {
  if (values instanceof Float32Array) return DataType.FLOAT;
  if (values instanceof Float64Array) return DataType.DOUBLE;
  if (values instanceof Int8Array) return DataType.INT8;
  if (values instanceof Uint8Array) return DataType.UINT8;
  if (values instanceof Int16Array) return DataType.INT16;
  if (values instanceof Uint16Array) return DataType.UINT16;
  if (values instanceof Int32Array) return DataType.INT32;
  if (values instanceof Uint32Array) return DataType.UINT32;
  if (values instanceof BigInt64Array) return DataType.INT64;
  return DataType.UINT64;
}

/**
 * Make a tensor proto holding `values` in little-endian `raw_data` (the type follows the array; pass
 * `dataType` to store a `Uint8Array` as BOOL).
 *
 * @example
 * ```ts
 * import { makeTensorProto, DataType } from "./tensor_data.ts";
 * const t = makeTensorProto("zp", new Int8Array([0, 1]), [2]);
 * if (t.dataType !== DataType.INT8 || t.rawData?.length !== 2) throw new Error("bad");
 * ```
 */
export function makeTensorProto(
  name: string,
  values: TensorValues,
  dims: readonly number[],
  dataType?: number,
): TensorProto {
  let n = 1;
  for (const d of dims) n *= d;
  if (n !== values.length) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `tensor "${name}": dims [${dims}] hold ${n} elements but ${values.length} values were given`,
    );
  }
  const code = dataType ?? codeFor(values);
  const width = values.BYTES_PER_ELEMENT;
  const raw = new Uint8Array(values.length * width);
  const dv = new DataView(raw.buffer);
  if (values instanceof Float32Array) values.forEach((v, i) => dv.setFloat32(4 * i, v, true));
  else if (values instanceof Float64Array) values.forEach((v, i) => dv.setFloat64(8 * i, v, true));
  else if (values instanceof Int32Array) values.forEach((v, i) => dv.setInt32(4 * i, v, true));
  else if (values instanceof Uint32Array) values.forEach((v, i) => dv.setUint32(4 * i, v, true));
  else if (values instanceof Int16Array) values.forEach((v, i) => dv.setInt16(2 * i, v, true));
  else if (values instanceof Uint16Array) values.forEach((v, i) => dv.setUint16(2 * i, v, true));
  else if (values instanceof BigInt64Array) values.forEach((v, i) => dv.setBigInt64(8 * i, v, true));
  else if (values instanceof BigUint64Array) values.forEach((v, i) => dv.setBigUint64(8 * i, v, true));
  else raw.set(new Uint8Array(values.buffer, values.byteOffset, values.length));
  return { name, dataType: code, dims: [...dims], rawData: raw };
}

/**
 * A tensor proto's values as a quantlab {@link Tensor} (float32, int8, uint8 or int32; float16/float64 become
 * float32, int64 becomes int32 when every value fits). Throws `UNSUPPORTED` otherwise.
 *
 * @example
 * ```ts
 * import { toTensor, makeTensorProto } from "./tensor_data.ts";
 * const t = toTensor(makeTensorProto("w", new Float32Array([1, 2, 3, 4]), [2, 2]));
 * if (t.shape.join() !== "2,2" || t.dtype !== "float32") throw new Error("bad");
 * ```
 */
export function toTensor(t: TensorProto): Tensor {
  const v = tensorValues(t);
  const shape = t.dims;
  if (v instanceof Float32Array || v instanceof Int8Array || v instanceof Uint8Array || v instanceof Int32Array) {
    return new Tensor(v, shape, t.name);
  }
  if (v instanceof Float64Array) return new Tensor(Float32Array.from(v), shape, t.name);
  if (v instanceof BigInt64Array) {
    const out = new Int32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = Number(v[i]);
      if (x !== (x | 0)) {
        throw new QuantlabError("UNSUPPORTED", `tensor "${t.name}": int64 value ${v[i]} does not fit int32`);
      }
      out[i] = x;
    }
    return new Tensor(out, shape, t.name);
  }
  throw new QuantlabError(
    "UNSUPPORTED",
    `tensor "${t.name}": ${dataTypeName(t.dataType)} has no quantlab Tensor dtype`,
  );
}
