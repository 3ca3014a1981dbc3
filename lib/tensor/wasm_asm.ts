/**
 * A tiny WebAssembly assembler: the binary encodings, instructions and module layout shared by the
 * hand-written SIMD kernels (`lib/tensor/simd.ts`, `lib/vq/simd_kernel.ts`, `lib/integer/simd_gemm.ts`).
 *
 * Instructions are plain byte arrays (`number[]`), so a kernel body is built by pushing the arrays of
 * its instructions in order; {@link assembleModule} then wraps function bodies, their types, a memory
 * (own or imported) and the exports into a module. Only what the kernels use is here (MVP + SIMD
 * opcodes, one memory, no globals or tables); an opcode only one kernel needs stays in that kernel.
 *
 * @example
 * ```ts
 * import { assembleModule, I32, I32_ADD, localGet } from "./wasm_asm.ts";
 * const bytes = assembleModule({
 *   functions: [{ name: "add", params: [I32, I32], results: [I32], body: [...localGet(0), ...localGet(1), ...I32_ADD] }],
 * });
 * const add = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.add as (a: number, b: number) => number;
 * if (add(2, 40) !== 42) throw new Error("bad add");
 * ```
 *
 * @module
 */

// --- binary encodings --------------------------------------------------------------------------

/**
 * Unsigned LEB128 encoding of a non-negative integer below 2^32 (lengths, counts, indices, offsets).
 *
 * @example
 * ```ts
 * import { uleb } from "./wasm_asm.ts";
 * if (uleb(5).join() !== "5" || uleb(624485).join() !== "229,142,38") throw new Error("bad uleb");
 * ```
 */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/**
 * Signed LEB128 encoding of an int32 (the immediate of `i32.const`).
 *
 * @example
 * ```ts
 * import { sleb } from "./wasm_asm.ts";
 * if (sleb(-1).join() !== "127" || sleb(64).join() !== "192,0" || sleb(-123456).join() !== "192,187,120") {
 *   throw new Error("bad sleb");
 * }
 * ```
 */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/**
 * A name: its UTF-8 byte length (LEB128), then the bytes.
 *
 * @example
 * ```ts
 * import { str } from "./wasm_asm.ts";
 * if (str("mem").join() !== "3,109,101,109") throw new Error("bad str");
 * ```
 */
export function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

/**
 * A section: its id, the body's byte length (LEB128), then the body.
 *
 * @example
 * ```ts
 * import { section } from "./wasm_asm.ts";
 * if (section(3, [1, 0]).join() !== "3,2,1,0") throw new Error("bad section");
 * ```
 */
export function section(id: number, body: readonly number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/**
 * A vector: the item count (LEB128), then the items' bytes in order.
 *
 * @example
 * ```ts
 * import { vec } from "./wasm_asm.ts";
 * if (vec([[0x7f], [0x7f, 1]]).join() !== "2,127,127,1") throw new Error("bad vec");
 * ```
 */
export function vec(items: readonly (readonly number[])[]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

// --- value types -------------------------------------------------------------------------------

/**
 * Value type codes: `I32` (i32), `F32` (f32), `V128` (128-bit SIMD vector), for function params,
 * results and locals.
 *
 * @example
 * ```ts
 * import { F32, I32, V128 } from "./wasm_asm.ts";
 * if (I32 !== 0x7f || F32 !== 0x7d || V128 !== 0x7b) throw new Error("bad type codes");
 * ```
 */
export const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;

// --- instructions ------------------------------------------------------------------------------

/**
 * `local.get i`, `local.set i`: push local `i`; pop into local `i`.
 *
 * @example
 * ```ts
 * import { localGet, localSet } from "./wasm_asm.ts";
 * if (localGet(3).join() !== "32,3" || localSet(200).join() !== "33,200,1") throw new Error("bad local op");
 * ```
 */
export const localGet = (i: number): number[] => [0x20, ...uleb(i)],
  localSet = (i: number): number[] => [0x21, ...uleb(i)];

/**
 * `i32.const v` (`v` an int32).
 *
 * @example
 * ```ts
 * import { i32Const } from "./wasm_asm.ts";
 * if (i32Const(-1).join() !== "65,127") throw new Error("bad i32.const");
 * ```
 */
export function i32Const(v: number): number[] {
  return [0x41, ...sleb(v)];
}

/**
 * `f32.const v` (`v` rounded to float32, stored little-endian).
 *
 * @example
 * ```ts
 * import { f32Const } from "./wasm_asm.ts";
 * if (f32Const(1).join() !== "67,0,0,128,63") throw new Error("bad f32.const");
 * ```
 */
export function f32Const(v: number): number[] {
  return [0x43, ...new Uint8Array(new Float32Array([v]).buffer)];
}

/**
 * Integer instructions used by more than one kernel: `i32.add`, `i32.sub`, `i32.mul`.
 *
 * @example
 * ```ts
 * import { I32_ADD, I32_MUL, I32_SUB } from "./wasm_asm.ts";
 * if (I32_ADD[0] !== 0x6a || I32_SUB[0] !== 0x6b || I32_MUL[0] !== 0x6c) throw new Error("bad opcode");
 * ```
 */
export const I32_ADD: readonly number[] = [0x6a],
  I32_SUB: readonly number[] = [0x6b],
  I32_MUL: readonly number[] = [0x6c];

/**
 * `local += by` for an i32 local: `local.get l; i32.const by; i32.add; local.set l`.
 *
 * @example
 * ```ts
 * import { i32Const, I32_ADD, localGet, localInc, localSet } from "./wasm_asm.ts";
 * const want = [...localGet(2), ...i32Const(64), ...I32_ADD, ...localSet(2)];
 * if (localInc(2, 64).join() !== want.join()) throw new Error("bad localInc");
 * ```
 */
export function localInc(l: number, by: number): number[] {
  return [...localGet(l), ...i32Const(by), ...I32_ADD, ...localSet(l)];
}

/**
 * Structured control: `block` and `loop` (both with an empty block type) and `end` (closes a block,
 * a loop, or a function body; {@link assembleModule} adds the function's own `end`).
 *
 * @example
 * ```ts
 * import { BLOCK, END, LOOP } from "./wasm_asm.ts";
 * if ([...BLOCK, ...LOOP, ...END].join() !== "2,64,3,64,11") throw new Error("bad control bytes");
 * ```
 */
export const BLOCK: readonly number[] = [0x02, 0x40],
  LOOP: readonly number[] = [0x03, 0x40],
  END: readonly number[] = [0x0b];

/**
 * `br depth`, `br_if depth`: branch (unconditionally, or if the popped i32 is non-zero) to the
 * `depth`-th enclosing block (to its end) or loop (to its start).
 *
 * @example
 * ```ts
 * import { br, brIf } from "./wasm_asm.ts";
 * if (br(0).join() !== "12,0" || brIf(1).join() !== "13,1") throw new Error("bad branch");
 * ```
 */
export const br = (depth: number): number[] => [0x0c, ...uleb(depth)],
  brIf = (depth: number): number[] => [0x0d, ...uleb(depth)];

/**
 * A SIMD instruction: the `0xfd` prefix, then the opcode as LEB128.
 *
 * @example
 * ```ts
 * import { simd } from "./wasm_asm.ts";
 * if (simd(0x11).join() !== "253,17" || simd(0xae).join() !== "253,174,1") throw new Error("bad simd");
 * ```
 */
export function simd(op: number): number[] {
  return [0xfd, ...uleb(op)];
}

/**
 * `v128.load` / `v128.store` at `address + offset` (16-byte alignment hint).
 *
 * @example
 * ```ts
 * import { v128Load, v128Store } from "./wasm_asm.ts";
 * if (v128Load(16).join() !== "253,0,4,16" || v128Store(0).join() !== "253,11,4,0") throw new Error("bad v128 mem op");
 * ```
 */
export const v128Load = (offset: number): number[] => [...simd(0x00), 4, ...uleb(offset)],
  v128Store = (offset: number): number[] => [...simd(0x0b), 4, ...uleb(offset)];

/**
 * `v128.const` holding the four int32 lanes `a, b, c, d`.
 *
 * @example
 * ```ts
 * import { v128ConstI32 } from "./wasm_asm.ts";
 * const bytes = v128ConstI32(1, 0, 0, -1);
 * if (bytes.length !== 18 || bytes[2] !== 1 || bytes[17] !== 255) throw new Error("bad v128.const");
 * ```
 */
export function v128ConstI32(a: number, b: number, c: number, d: number): number[] {
  return [...simd(0x0c), ...new Uint8Array(new Int32Array([a, b, c, d]).buffer)];
}

/**
 * SIMD lane-wise instructions used by more than one kernel: `i32x4.splat`, `f32x4.splat`, `i32x4.add`,
 * `f32x4.add`, `f32x4.sub`, `f32x4.mul`.
 *
 * @example
 * ```ts
 * import { F32X4_ADD, F32X4_MUL, F32X4_SPLAT, F32X4_SUB, I32X4_ADD, I32X4_SPLAT } from "./wasm_asm.ts";
 * const all = [I32X4_SPLAT, F32X4_SPLAT, I32X4_ADD, F32X4_ADD, F32X4_SUB, F32X4_MUL].map((op) => op.join(" "));
 * if (all.join() !== "253 17,253 19,253 174 1,253 228 1,253 229 1,253 230 1") throw new Error(all.join());
 * ```
 */
export const I32X4_SPLAT: readonly number[] = simd(0x11),
  F32X4_SPLAT: readonly number[] = simd(0x13),
  I32X4_ADD: readonly number[] = simd(0xae),
  F32X4_ADD: readonly number[] = simd(0xe4),
  F32X4_SUB: readonly number[] = simd(0xe5),
  F32X4_MUL: readonly number[] = simd(0xe6);

// --- modules -----------------------------------------------------------------------------------

/** One function of a module, exported under {@link WasmFunction.name}. */
export interface WasmFunction {
  /** The export name. */
  readonly name: string;
  /** Parameter types ({@link I32}, {@link F32}, {@link V128}); parameters are locals `0..params.length-1`. */
  readonly params: readonly number[];
  /** Result types (default none). */
  readonly results?: readonly number[];
  /** Types of the further locals, numbered after the parameters (default none). */
  readonly locals?: readonly number[];
  /** The instructions, without the function's final `end`. */
  readonly body: readonly number[];
}

/** The module's one linear memory. */
export interface WasmMemory {
  /** Initial size in 64 KiB pages (no maximum; the host may grow it). */
  readonly pages: number;
  /** Import the memory as `module.name` instead of defining it in the module. */
  readonly import?: { readonly module: string; readonly name: string };
  /** Export the memory under this name. */
  readonly export?: string;
}

/** What {@link assembleModule} builds: functions (each exported) and optionally a memory. */
export interface WasmModuleSpec {
  /** The functions, numbered and exported in this order. */
  readonly functions: readonly WasmFunction[];
  /** The memory, if any. */
  readonly memory?: WasmMemory;
}

/** Run-length encoded local declarations: `vec((count, type))`. */
function localDecls(types: readonly number[]): number[] {
  const groups: number[][] = [];
  for (let i = 0; i < types.length;) {
    let j = i;
    while (j < types.length && types[j] === types[i]) j++;
    groups.push([...uleb(j - i), types[i]]);
    i = j;
  }
  return vec(groups);
}

/**
 * Assemble a module: header, then the type (one per function), import (an imported memory), function,
 * memory (an own memory), export (the functions in order, then the memory) and code sections.
 *
 * @example
 * ```ts
 * import { assembleModule, i32Const, I32, I32_ADD, localGet, localSet } from "./wasm_asm.ts";
 * // add(a, b) with a scratch local; plus an own memory exported as "mem"
 * const bytes = assembleModule({
 *   functions: [{
 *     name: "add",
 *     params: [I32, I32],
 *     results: [I32],
 *     locals: [I32],
 *     body: [...localGet(0), ...localGet(1), ...I32_ADD, ...localSet(2), ...localGet(2), ...i32Const(0), ...I32_ADD],
 *   }],
 *   memory: { pages: 1, export: "mem" },
 * });
 * const e = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
 * if ((e.add as (a: number, b: number) => number)(-5, 7) !== 2) throw new Error("bad add");
 * if ((e.mem as WebAssembly.Memory).buffer.byteLength !== 65536) throw new Error("bad memory");
 * ```
 */
export function assembleModule(spec: WasmModuleSpec): Uint8Array<ArrayBuffer> {
  const { functions, memory } = spec;
  const types = section(
    1,
    vec(functions.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec((f.results ?? []).map((t) => [t]))])),
  );
  const imports = memory?.import
    ? section(2, vec([[...str(memory.import.module), ...str(memory.import.name), 0x02, 0x00, ...uleb(memory.pages)]]))
    : [];
  const funcs = section(3, vec(functions.map((_, i) => uleb(i))));
  const mem = memory && !memory.import ? section(5, vec([[0x00, ...uleb(memory.pages)]])) : [];
  const exported = functions.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]);
  if (memory?.export !== undefined) exported.push([...str(memory.export), 0x02, 0]);
  const exports = section(7, vec(exported));
  const code = section(
    10,
    vec(functions.map((f) => {
      const b = [...localDecls(f.locals ?? []), ...f.body, ...END];
      return [...uleb(b.length), ...b];
    })),
  );
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...types,
    ...imports,
    ...funcs,
    ...mem,
    ...exports,
    ...code,
  ]);
}
