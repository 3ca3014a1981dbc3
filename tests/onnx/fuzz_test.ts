import assert from "node:assert/strict";
import { decodeModel, encodeModel } from "../../lib/onnx/proto.ts";
import { validateGraph } from "../../lib/onnx/graph.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { modelPath } from "./_fixtures.ts";

Deno.test("fuzz: 1,000 seeded truncations and byte flips end in a typed error or a valid model", async () => {
  // poolnet is the smallest fixture with every message kind (Constant tensor attribute, Pad, pools).
  const original = await Deno.readFile(modelPath("poolnet_op17"));
  const rng = new Prng(20240605);
  let typed = 0, decoded = 0;
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) {
    let bytes: Uint8Array;
    const kind = i % 3;
    if (kind === 0) {
      bytes = original.subarray(0, rng.nextInt(original.length));
    } else {
      bytes = original.slice();
      const flips = 1 + rng.nextInt(kind === 1 ? 4 : 64);
      // Bias half the flips to the first 4 KB, where the structure (not float payload) is.
      for (let k = 0; k < flips; k++) {
        const at = rng.nextFloat() < 0.5 ? rng.nextInt(Math.min(4096, bytes.length)) : rng.nextInt(bytes.length);
        bytes[at] ^= 1 << rng.nextInt(8);
      }
    }
    try {
      const m = decodeModel(bytes, `case ${i}`);
      decoded++;
      try {
        validateGraph(m.graph);
      } catch (e) {
        assert.ok(e instanceof QuantlabError, `case ${i}: validation threw ${e}`);
      }
      encodeModel(m);
    } catch (e) {
      if (!(e instanceof QuantlabError)) throw new Error(`case ${i}: ${e}`, { cause: e });
      assert.ok(e.code === "MALFORMED_MODEL", `case ${i}: code ${e.code}`);
      assert.doesNotMatch(e.message, /internal decoder error/, `case ${i}`);
      typed++;
    }
  }
  assert.equal(typed + decoded, 1000);
  assert.ok(typed > 300, `only ${typed} inputs were rejected`);
  assert.ok(performance.now() - t0 < 60_000);
});
