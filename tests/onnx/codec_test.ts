import assert from "node:assert/strict";
import { decodeModel, emptyModel, encodeModel } from "../../lib/onnx/proto.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { DataType, makeTensorProto, tensorValues, toTensor } from "../../lib/onnx/tensor_data.ts";
import { ProtoWriter } from "../../lib/onnx/wire.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { b64f32, modelPath, reference } from "./_fixtures.ts";

const FIXTURES = ["resnet8_op13", "resnet8_op17", "poolnet_op17"];

Deno.test("codec round trip: decode -> encode -> decode keeps every field of the fixture models", async () => {
  for (const name of FIXTURES) {
    const bytes = await Deno.readFile(modelPath(name));
    const a = decodeModel(bytes, name);
    const again = encodeModel(a);
    const b = decodeModel(again, name);
    assert.deepStrictEqual(b, a, name);
    assert.deepStrictEqual(encodeModel(b), again, `${name}: encoding is deterministic`);
    assert.ok(a.graph.node.length > 10 && a.graph.initializer.length > 5);
    assert.equal(a.producerName, "pytorch");
  }
});

Deno.test("codec round trip: ORT outputs of the re-encoded model are bit-identical (node and web)", async () => {
  const x = new Tensor(b64f32(reference.inputs), [8, 1, 28, 28]);
  for (const name of FIXTURES) {
    const bytes = await Deno.readFile(modelPath(name));
    const again = OnnxModel.decode(bytes, name).encode();
    for (const backend of ["node", "web"] as const) {
      const a = await (await createSession(bytes, { backend })).run({ input: x });
      const b = await (await createSession(again, { backend })).run({ input: x });
      assert.deepStrictEqual(b.logits.data, a.logits.data, `${name} on ${backend}`);
    }
  }
});

Deno.test("codec keeps unknown fields and int64 sentinels", () => {
  const m = emptyModel(17);
  const w = new ProtoWriter();
  w.stringField(25, "a function we do not model");
  m.unknown = [w.finish()];
  m.graph.node.push({
    input: [],
    output: ["c"],
    name: "n",
    opType: "Constant",
    domain: "",
    attribute: [{ name: "big", type: 7, ints: [9223372036854775807, -9223372036854775808, -1, 2 ** 40] }],
  });
  m.graph.output.push({ name: "c" });
  const bytes = encodeModel(m);
  const back = decodeModel(bytes);
  assert.deepStrictEqual(back.unknown, m.unknown);
  assert.deepStrictEqual(back.graph.node[0].attribute[0].ints, [2 ** 63, -(2 ** 63), -1, 2 ** 40]);
  // INT64_MAX is written back as INT64_MAX (9 bytes 0xff.. 0x7f), not wrapped.
  assert.deepStrictEqual(encodeModel(back), bytes);
});

Deno.test("tensor data: raw and typed fields, float16, int64, bool; length checks", () => {
  const f16 = { name: "h", dataType: DataType.FLOAT16, dims: [3], int32Data: new Int32Array([0x3c00, 0xc000, 0x3555]) };
  assert.deepStrictEqual(Array.from(tensorValues(f16) as Float32Array), [1, -2, Math.fround(0.333251953125)]);
  const i64 = makeTensorProto("i", new BigInt64Array([1n, -5n]), [2]);
  assert.deepStrictEqual(Array.from(toTensor(i64).data), [1, -5]);
  const bool = makeTensorProto("b", new Uint8Array([1, 0]), [2], DataType.BOOL);
  assert.equal(bool.dataType, DataType.BOOL);
  assert.deepStrictEqual(
    Array.from(tensorValues({ ...bool, rawData: undefined, int32Data: new Int32Array([0, 1]) }) as Uint8Array),
    [0, 1],
  );
  const bad = { name: "w", dataType: DataType.FLOAT, dims: [4], rawData: new Uint8Array(12) };
  assert.throws(
    () => tensorValues(bad),
    (e: unknown) => e instanceof QuantlabError && e.code === "MALFORMED_MODEL" && /"w"/.test(e.message),
  );
  const roundTrip = decodeModel(
    encodeModel({ ...emptyModel(13), graph: { ...emptyModel(13).graph, initializer: [f16, i64] } }),
  );
  assert.deepStrictEqual(roundTrip.graph.initializer[0].int32Data, f16.int32Data);
  assert.deepStrictEqual(roundTrip.graph.initializer[1].rawData, i64.rawData);
});

Deno.test("malformed bytes: typed MALFORMED_MODEL errors naming what failed", async () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(0), /empty/],
    [new TextEncoder().encode("this is not an onnx model at all"), /ModelProto/],
    [new Uint8Array([0x08, 0x07]), /no graph/],
    [new Uint8Array([0x3a, 0x80]), /truncated varint/],
  ];
  const bytes = await Deno.readFile(modelPath("resnet8_op13"));
  cases.push([bytes.subarray(0, 5000), /ModelProto\.graph/]);
  for (const [b, re] of cases) {
    assert.throws(() => decodeModel(b, "m.onnx"), (e: unknown) => {
      assert.ok(e instanceof QuantlabError, String(e));
      assert.equal(e.code, "MALFORMED_MODEL");
      assert.match(e.message, re);
      assert.match(e.message, /^m\.onnx/);
      return true;
    });
  }
});

Deno.test("unsupported opset is a typed error for transforms", () => {
  const m = new OnnxModel(emptyModel(9), "old.onnx");
  assert.throws(
    () => m.checkOpset("QDQ insertion"),
    (e: unknown) => e instanceof QuantlabError && e.code === "UNSUPPORTED" && /old\.onnx.*9/.test(e.message),
  );
});
