/**
 * Seeded fuzz run of 3,000 mutants of a small model holding every message kind (attributes of each type, a
 * subgraph, tensors in every data field, value infos, metadata, unknown fields): truncations, bit flips, byte
 * insertions and deletions, and spliced duplicates. Each ends in a typed MALFORMED_MODEL (never another
 * exception), or decodes into a model that re-encodes to bytes that decode to the same model. A few seconds.
 */
import assert from "node:assert/strict";
import { decodeModel, emptyModel, encodeModel } from "../../lib/onnx/proto.ts";
import { validateGraph } from "../../lib/onnx/graph.ts";
import { floatAttr, intAttr, intsAttr } from "../../lib/onnx/graph.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { ProtoWriter } from "../../lib/onnx/wire.ts";

function seedModel(): Uint8Array {
  const p = emptyModel(17);
  p.metadataProps.push({ key: "k", value: "v" });
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 4 }] } } });
  p.graph.initializer.push(makeTensorProto("w", new Float32Array([1, -2, 3, 4]), [4]));
  p.graph.initializer.push({ name: "f", dataType: 1, dims: [2], floatData: new Float32Array([1, 2]) });
  p.graph.initializer.push({ name: "i", dataType: 7, dims: [2], int64Data: new BigInt64Array([-1n, 5n]) });
  p.graph.initializer.push({ name: "d", dataType: 11, dims: [1], doubleData: new Float64Array([0.5]) });
  p.graph.node.push({
    input: ["x", "w"],
    output: ["y"],
    name: "add",
    opType: "Add",
    domain: "",
    attribute: [intAttr("a", 3), floatAttr("b", 0.5), intsAttr("c", [1, -1, 2 ** 40])],
  });
  const body = {
    name: "body",
    node: [{ input: ["y"], output: ["z"], name: "neg", opType: "Neg", domain: "", attribute: [] }],
    initializer: [],
    input: [],
    output: [{ name: "z" }],
    valueInfo: [],
  };
  p.graph.node.push({
    input: ["c0"],
    output: ["o"],
    name: "if",
    opType: "If",
    domain: "",
    attribute: [{ name: "then_branch", type: 5, g: body }, { name: "else_branch", type: 5, g: body }],
  });
  p.graph.initializer.push({ name: "c0", dataType: 9, dims: [], int32Data: new Int32Array([1]) });
  p.graph.output.push({ name: "o" });
  p.graph.valueInfo.push({ name: "y", type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 4 }] } } });
  const u = new ProtoWriter();
  u.stringField(25, "unknown");
  p.unknown = [u.finish()];
  return encodeModel(p);
}

Deno.test("fuzz: 3,000 seeded mutants end in a typed error or a model that round-trips", () => {
  const original = seedModel();
  validateGraph(decodeModel(original).graph);
  const rng = new Prng(15);
  let typed = 0, decoded = 0;
  const t0 = performance.now();
  for (let i = 0; i < 3000; i++) {
    let bytes: Uint8Array;
    const kind = i % 5;
    if (kind === 0) bytes = original.subarray(0, rng.nextInt(original.length));
    else if (kind === 1 || kind === 2) {
      bytes = original.slice();
      const flips = 1 + rng.nextInt(kind === 1 ? 3 : 32);
      for (let k = 0; k < flips; k++) bytes[rng.nextInt(bytes.length)] ^= 1 << rng.nextInt(8);
    } else if (kind === 3) {
      const at = rng.nextInt(original.length), n = 1 + rng.nextInt(8);
      bytes = rng.nextFloat() < 0.5
        ? new Uint8Array([
          ...original.subarray(0, at),
          ...Array.from({ length: n }, () => rng.nextInt(256)),
          ...original.subarray(at),
        ])
        : new Uint8Array([...original.subarray(0, at), ...original.subarray(Math.min(original.length, at + n))]);
    } else {
      const a = rng.nextInt(original.length), b = Math.min(original.length, a + 1 + rng.nextInt(64));
      const at = rng.nextInt(original.length);
      bytes = new Uint8Array([...original.subarray(0, at), ...original.subarray(a, b), ...original.subarray(at)]);
    }
    try {
      const m = decodeModel(bytes, `mutant ${i}`);
      decoded++;
      try {
        validateGraph(m.graph);
      } catch (e) {
        assert.ok(e instanceof QuantlabError, `mutant ${i}: validation threw ${e}`);
      }
      const again = encodeModel(m);
      assert.deepStrictEqual(encodeModel(decodeModel(again)), again, `mutant ${i}: re-encoding is not stable`);
    } catch (e) {
      if (!(e instanceof QuantlabError)) throw new Error(`mutant ${i}: ${e}`, { cause: e });
      assert.equal(e.code, "MALFORMED_MODEL", `mutant ${i}: ${e.message}`);
      assert.doesNotMatch(e.message, /internal decoder error/, `mutant ${i}`);
      typed++;
    }
  }
  assert.equal(typed + decoded, 3000);
  assert.ok(typed > 500 && decoded > 100, `typed ${typed}, decoded ${decoded}`);
  assert.ok(performance.now() - t0 < 20_000, `${performance.now() - t0} ms`);
});
