import assert from "node:assert/strict";
import {
  assembleModule,
  BLOCK,
  br,
  brIf,
  END,
  F32,
  f32Const,
  F32X4_ADD,
  F32X4_MUL,
  F32X4_SPLAT,
  F32X4_SUB,
  I32,
  I32_ADD,
  I32_MUL,
  I32_SUB,
  i32Const,
  I32X4_ADD,
  I32X4_SPLAT,
  localGet,
  localInc,
  localSet,
  LOOP,
  section,
  simd,
  sleb,
  str,
  uleb,
  V128,
  v128ConstI32,
  v128Load,
  v128Store,
  vec,
} from "../../lib/tensor/wasm_asm.ts";
import { Prng } from "../../lib/tensor/prng.ts";

/** Reference LEB128 decoders (the WebAssembly spec's definitions, with BigInt to avoid 32-bit tricks). */
function decodeUleb(b: number[]): [number, number] {
  let v = 0n, shift = 0n, i = 0;
  for (;;) {
    const x = b[i++];
    v |= BigInt(x & 0x7f) << shift;
    shift += 7n;
    if ((x & 0x80) === 0) return [Number(v), i];
  }
}

function decodeSleb(b: number[]): [number, number] {
  let v = 0n, shift = 0n, i = 0, x = 0;
  do {
    x = b[i++];
    v |= BigInt(x & 0x7f) << shift;
    shift += 7n;
  } while (x & 0x80);
  if (x & 0x40) v -= 1n << shift;
  return [Number(v), i];
}

type Fn = (...args: number[]) => number;

function instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports = {}): WebAssembly.Exports {
  assert.ok(WebAssembly.validate(bytes), "module does not validate");
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), imports).exports;
}

Deno.test("LEB128: spec vectors, boundaries and random values round-trip with minimal length", () => {
  assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]); // the DWARF / Wikipedia example
  assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
  assert.deepEqual(sleb(63), [0x3f]);
  assert.deepEqual(sleb(64), [0xc0, 0x00]); // sign bit of the first group set: needs a second byte
  assert.deepEqual(sleb(-64), [0x40]);
  assert.deepEqual(sleb(-65), [0xbf, 0x7f]);
  const rng = new Prng(7);
  const us = [0, 1, 127, 128, 16383, 16384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
  const ss = [0, 1, -1, 63, 64, -64, -65, 8191, 8192, -8192, -8193, 2 ** 31 - 1, -(2 ** 31)];
  for (let t = 0; t < 500; t++) {
    const u = rng.nextUint32();
    us.push(u >>> rng.nextInt(32));
    ss.push((u | 0) >> rng.nextInt(32));
  }
  for (const u of us) {
    const b = uleb(u);
    assert.deepEqual(decodeUleb(b), [u, b.length], `uleb(${u})`);
    assert.equal(b.length, Math.max(1, Math.ceil(Math.log2(u + 1) / 7)), `uleb(${u}) not minimal`);
  }
  for (const s of ss) {
    const b = sleb(s);
    assert.deepEqual(decodeSleb(b), [s, b.length], `sleb(${s})`);
    // minimal: dropping the last byte must not still decode to s
    if (b.length > 1) {
      const shorter = [...b.slice(0, -2), b[b.length - 2] & 0x7f];
      assert.notEqual(decodeSleb(shorter)[0], s, `sleb(${s}) not minimal`);
    }
  }
});

Deno.test("names, sections, vectors and constants encode as the binary format says", () => {
  assert.deepEqual(str(""), [0]);
  assert.deepEqual(str("é"), [2, 0xc3, 0xa9]); // UTF-8 byte length, not code units
  assert.deepEqual(section(7, Array(200).fill(1)).slice(0, 3), [7, 0xc8, 0x01]);
  assert.deepEqual(vec([]), [0]);
  assert.deepEqual(vec([[1, 2], [], [3]]), [3, 1, 2, 3]);
  assert.deepEqual(f32Const(-2.5), [0x43, 0x00, 0x00, 0x20, 0xc0]);
  assert.deepEqual(f32Const(0.1).slice(1), [...new Uint8Array(new Float32Array([0.1]).buffer)]);
  assert.deepEqual(i32Const(2 ** 31 - 1), [0x41, 0xff, 0xff, 0xff, 0xff, 0x07]);
  assert.deepEqual(localGet(128), [0x20, 0x80, 0x01]);
  assert.deepEqual(localSet(5), [0x21, 5]);
  assert.deepEqual(simd(0xba), [0xfd, 0xba, 0x01]);
  assert.deepEqual(v128Load(128), [0xfd, 0x00, 4, 0x80, 0x01]);
  assert.deepEqual(v128Store(48), [0xfd, 0x0b, 4, 48]);
  assert.deepEqual(v128ConstI32(0, 1, 2, 3), [0xfd, 0x0c, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
});

Deno.test("assembleModule: two functions, mixed params/results/locals, own exported memory", () => {
  const bytes = assembleModule({
    functions: [
      {
        // sum(n) = 1 + 2 + ... + n with a block/loop/br_if/br countdown; locals i32 acc
        name: "sum",
        params: [I32],
        results: [I32],
        locals: [I32],
        body: [
          ...BLOCK,
          ...LOOP,
          ...localGet(0),
          0x45, // i32.eqz
          ...brIf(1),
          ...localGet(1),
          ...localGet(0),
          ...I32_ADD,
          ...localSet(1),
          ...localInc(0, -1),
          ...br(0),
          ...END,
          ...END,
          ...localGet(1),
        ],
      },
      {
        // axpb(a, x, b) = a * x + b in f32, with i32 and f32 locals interleaved (run-length groups)
        name: "axpb",
        params: [F32, F32, F32],
        results: [F32],
        locals: [F32, F32, I32, F32],
        body: [
          ...localGet(0),
          ...localGet(1),
          0x94, // f32.mul
          ...localSet(3),
          ...localGet(3),
          ...localGet(2),
          0x92, // f32.add
          ...localSet(6),
          ...localGet(6),
        ],
      },
      { name: "noop", params: [], body: [] },
    ],
    memory: { pages: 3, export: "memory" },
  });
  const e = instantiate(bytes);
  assert.deepEqual(Object.keys(e), ["sum", "axpb", "noop", "memory"]);
  assert.equal((e.sum as Fn)(100), 5050);
  assert.equal((e.sum as Fn)(0), 0);
  assert.equal((e.axpb as Fn)(1.5, 4, -0.25), 5.75);
  assert.equal((e.axpb as Fn)(0.1, 3, 0), Math.fround(Math.fround(0.1) * 3)); // f32 arithmetic
  assert.equal((e.noop as Fn)(), undefined);
  assert.equal((e.memory as WebAssembly.Memory).buffer.byteLength, 3 * 65536);
});

Deno.test("assembleModule: imported memory, SIMD f32x4 and i32x4 lanes, i32 arithmetic", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const bytes = assembleModule({
    functions: [
      {
        // fma4(p, s): v = load(p); store(p + 16, (v * splat(s) + v) - splat(1))
        name: "fma4",
        params: [I32, F32],
        locals: [V128],
        body: [
          ...localGet(0),
          ...v128Load(0),
          ...localSet(2),
          ...localGet(0),
          ...localGet(2),
          ...localGet(1),
          ...F32X4_SPLAT,
          ...F32X4_MUL,
          ...localGet(2),
          ...F32X4_ADD,
          ...f32Const(1),
          ...F32X4_SPLAT,
          ...F32X4_SUB,
          ...v128Store(16),
        ],
      },
      {
        // iota(p, k): store(p, splat(k) + (0, 1, 2, 3))
        name: "iota",
        params: [I32, I32],
        body: [
          ...localGet(0),
          ...localGet(1),
          ...I32X4_SPLAT,
          ...v128ConstI32(0, 1, 2, 3),
          ...I32X4_ADD,
          ...v128Store(0),
        ],
      },
      {
        name: "poly",
        params: [I32],
        results: [I32],
        body: [...localGet(0), ...localGet(0), ...I32_MUL, ...i32Const(-7), ...I32_SUB], // x * x + 7
      },
    ],
    memory: { pages: 1, import: { module: "env", name: "mem" } },
  });
  const e = instantiate(bytes, { env: { mem: memory } });
  assert.deepEqual(Object.keys(e), ["fma4", "iota", "poly"]);
  const f = new Float32Array(memory.buffer);
  f.set([1, -2, 0.5, 3], 8);
  (e.fma4 as Fn)(32, 2);
  assert.deepEqual([...f.subarray(12, 16)], [2, -7, 0.5, 8]);
  (e.iota as Fn)(128, 1000);
  assert.deepEqual([...new Int32Array(memory.buffer, 128, 4)], [1000, 1001, 1002, 1003]);
  assert.equal((e.poly as Fn)(12), 151);
  assert.equal((e.poly as Fn)(65536), 7); // wraps modulo 2^32
  // an imported memory needs its import: instantiating without it must fail
  assert.throws(() => new WebAssembly.Instance(new WebAssembly.Module(bytes), {}));
});

Deno.test("assembleModule: a memory that is neither imported nor exported, and value-type codes", () => {
  assert.deepEqual([I32, F32, V128], [0x7f, 0x7d, 0x7b]);
  const bytes = assembleModule({
    functions: [{
      name: "store",
      params: [I32],
      results: [I32],
      body: [...localGet(0), ...i32Const(9), 0x36, 2, 0, ...i32Const(1)],
    }],
    memory: { pages: 1 },
  });
  const e = instantiate(bytes);
  assert.deepEqual(Object.keys(e), ["store"]);
  assert.equal((e.store as Fn)(0), 1);
  assert.throws(() => (e.store as Fn)(65536)); // out of the one page
});
