import assert from "node:assert/strict";
import { gemmConfig, gemmPacked, packPanels } from "../../lib/integer/gemm_kernel.ts";
import { simdGemmAvailable } from "../../lib/integer/simd_gemm.ts";
import { qgemmInt32 } from "../../lib/integer/gemm.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { randInt, randomQ } from "./helpers.ts";

function naive(a: Tensor, za: number, b: Tensor, zb: number, m: number, k: number, n: number): Int32Array {
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (a.data[i * k + p] - za) * (b.data[p * n + j] - zb);
      c[i * n + j] = s; // Int32Array store wraps modulo 2^32
    }
  }
  return c;
}

Deno.test("Wasm SIMD is available in Deno (the fast path is what the other tests exercise)", () => {
  assert.equal(simdGemmAvailable(), true);
});

for (const simd of [true, false]) {
  Deno.test(`gemmPacked (${simd ? "Wasm SIMD" : "TypeScript fallback"}) equals a naive loop, edges included`, () => {
    const saved = gemmConfig.simd;
    gemmConfig.simd = simd;
    try {
      const rng = new Prng(simd ? 51 : 52);
      for (let t = 0; t < 80; t++) {
        const m = randInt(rng, 1, 13), k = randInt(rng, 1, 45), n = randInt(rng, 1, 14);
        const a = randomQ(rng, t % 2 ? "int8" : "uint8", [m, k]);
        const b = randomQ(rng, t % 3 ? "int8" : "uint8", [k, n]);
        const za = a.dtype === "int8" ? randInt(rng, -128, 127) : randInt(rng, 0, 255);
        const zb = b.dtype === "int8" ? randInt(rng, -128, 127) : randInt(rng, 0, 255);
        const got = qgemmInt32({ a, aZeroPoint: za, b, bZeroPoint: zb });
        assert.deepEqual(Array.from(got.data), Array.from(naive(a, za, b, zb, m, k, n)), `case ${t}`);
      }
    } finally {
      gemmConfig.simd = saved;
    }
  });

  Deno.test(`gemmPacked (${simd ? "Wasm SIMD" : "TypeScript fallback"}) wraps modulo 2^32 like int32 accumulation`, () => {
    const saved = gemmConfig.simd;
    gemmConfig.simd = simd;
    try {
      const k = 40000; // 40000 * 255 * 255 > 2^31
      const a = new Tensor(new Uint8Array(2 * k).fill(255), [2, k]);
      const b = new Tensor(new Uint8Array(k * 1).fill(0), [k, 1]);
      const got = qgemmInt32({ a, b, bZeroPoint: 255 }); // each product 255 * -255
      const exact = -k * 255 * 255;
      assert.equal(got.data[0], exact | 0);
      assert.notEqual(got.data[0], exact);
      // strided output into a bigger array with an offset
      const pa = packPanels(new Int8Array([1, 2, 3, 4, 5, 6]), 0, 2, 3, 3, 1, new Int32Array(2));
      const pb = packPanels(new Int8Array([1, 1, 1]), 0, 1, 3, 1, 1, new Int32Array(1));
      const out = new Int32Array(10).fill(-1);
      gemmPacked(pa, pb, 2, 1, 3, out, 3, 4);
      assert.deepEqual(Array.from(out), [-1, -1, -1, 6, -1, -1, -1, 15, -1, -1]);
    } finally {
      gemmConfig.simd = saved;
    }
  });
}
