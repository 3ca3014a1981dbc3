import assert from "node:assert";
import { QuantlabError } from "../../lib/errors.ts";
import { bitAccounting, sparsity } from "../../lib/quant/accounting.ts";

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof QuantlabError && e.code === code);
}

Deno.test("bit accounting: payload plus scales per weight", () => {
  // a 64 x 576 conv weight, ternary 2-bit codes, TTQ: 2 float32 scales per output channel
  const a = bitAccounting(64 * 576, 2, 128);
  assert.strictEqual(a.payloadBits, 73728);
  assert.strictEqual(a.scaleBits, 4096);
  assert.strictEqual(a.totalBits, 77824);
  assert.strictEqual(a.bitsPerWeight, 77824 / 36864);
  assert.strictEqual(a.scaleBitsPerWeight, 4096 / 36864);
  assert.strictEqual(a.compressionRatio, 32 / (77824 / 36864));
  assert.strictEqual(bitAccounting(10, 4, 1, 16).bitsPerWeight, 4 + 1.6);
  throwsCode(() => bitAccounting(0, 1, 1), "EMPTY_TENSOR");
  throwsCode(() => bitAccounting(10, -1, 1), "INVALID_ARGUMENT");
});

Deno.test("sparsity counts exact zeros (including -0)", () => {
  assert.strictEqual(sparsity([0, -0, 1e-45, 2]), 0.5);
  assert.strictEqual(sparsity(new Int8Array([0, 1, -1, 0, 0])), 0.6);
  assert.strictEqual(sparsity([]), 0);
});
