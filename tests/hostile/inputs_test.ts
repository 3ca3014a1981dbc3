/**
 * Hand-made hostile models, each ending in a typed error (or a valid result) quickly: huge declared
 * dimensions, cycles, dangling inputs, deep nesting, over-long varints, lengths past the end, and external data
 * that points outside the model's folder (checked by quantlab before ONNX Runtime sees it).
 */
import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { decodeModel, emptyModel, encodeModel, type GraphProto, type ModelProto } from "../../lib/onnx/proto.ts";
import { inlineExternalData } from "../../lib/onnx/external_data.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { QuantlabError, type QuantlabErrorCode } from "../../lib/errors.ts";
import { manyNodeModel } from "./_gen.ts";

const typed = (code: QuantlabErrorCode, re?: RegExp) => (e: unknown) =>
  e instanceof QuantlabError && e.code === code && (!re || re.test(e.message));

function relu(input: string, output: string, name = output) {
  return { input: [input], output: [output], name, opType: "Relu", domain: "", attribute: [] };
}

function model(edit: (p: ModelProto) => void): Uint8Array {
  const p = emptyModel(17);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 2 }] } } });
  edit(p);
  return encodeModel(p);
}

Deno.test("cycles and dangling inputs are MALFORMED_MODEL naming the nodes", () => {
  const cycle = model((p) => {
    p.graph.node.push(relu("b", "a"), relu("a", "b"));
    p.graph.output.push({ name: "b" });
  });
  assert.throws(() => OnnxModel.decode(cycle, "cycle.onnx"), typed("MALFORMED_MODEL", /cycle.onnx.*cycle among/));
  const self = model((p) => {
    p.graph.node.push(relu("a", "a"));
    p.graph.output.push({ name: "a" });
  });
  assert.throws(() => OnnxModel.decode(self), typed("MALFORMED_MODEL"));
  const dangling = model((p) => {
    p.graph.node.push(relu("nowhere", "a"));
    p.graph.output.push({ name: "a" });
  });
  assert.throws(() => OnnxModel.decode(dangling), typed("MALFORMED_MODEL", /"nowhere"/));
});

Deno.test("huge declared dimensions decode but never allocate: typed errors with element counts", () => {
  const bytes = model((p) => {
    p.graph.initializer.push({ name: "w", dataType: 1, dims: [1e12, 1e12], rawData: new Uint8Array(4) });
    p.graph.node.push(relu("x", "y"));
    p.graph.output.push({ name: "y" });
  });
  const m = OnnxModel.decode(bytes);
  assert.throws(() => tensorValues(m.graph.initializer[0]), (e) => e instanceof QuantlabError);
});

Deno.test("subgraphs nested past the limit, over-long varints and lengths past the end are MALFORMED_MODEL", () => {
  let g: GraphProto = { name: "leaf", node: [], initializer: [], input: [], output: [], valueInfo: [] };
  for (let i = 0; i < 40; i++) {
    g = {
      name: `g${i}`,
      node: [{
        input: [],
        output: [`o${i}`],
        name: `if${i}`,
        opType: "If",
        domain: "",
        attribute: [{ name: "then_branch", type: 5, g }],
      }],
      initializer: [],
      input: [],
      output: [],
      valueInfo: [],
    };
  }
  const p = emptyModel(17);
  p.graph = g;
  assert.throws(() => decodeModel(encodeModel(p)), typed("MALFORMED_MODEL", /nested deeper/));
  const longVarint = new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.throws(() => decodeModel(longVarint), typed("MALFORMED_MODEL", /varint longer/));
  assert.throws(() => decodeModel(new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f])), typed("MALFORMED_MODEL"));
});

Deno.test("a wide graph of 100,000 nodes validates quickly (no quadratic step)", () => {
  const bytes = encodeModel(manyNodeModel(100_000, "wide"));
  const t0 = performance.now();
  OnnxModel.decode(bytes);
  assert.ok(performance.now() - t0 < 3000);
});

function externalModel(location: string, extra: Record<string, string> = {}): ModelProto {
  const p = emptyModel(17);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 2 }] } } });
  p.graph.initializer.push({
    name: "w",
    dataType: 1,
    dims: [2],
    dataLocation: 1,
    externalData: [
      { key: "location", value: location },
      ...Object.entries(extra).map(([key, value]) => ({ key, value })),
    ],
  });
  p.graph.node.push({ input: ["x", "w"], output: ["y"], name: "add", opType: "Add", domain: "", attribute: [] });
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1, shape: [{ value: 2 }] } } });
  return p;
}

Deno.test("external data: only regular files inside the model's folder, in range, of the right size", async () => {
  const root = await Deno.makeTempDir();
  const dir = `${root}/model`;
  await Deno.mkdir(dir);
  await Deno.writeFile(`${root}/secret.bin`, new Uint8Array(8));
  await Deno.writeFile(`${dir}/w.bin`, new Uint8Array(new Float32Array([1, 2]).buffer));
  await Deno.symlink(`${root}/secret.bin`, `${dir}/escape.bin`);
  const origin = { kind: "file" as const, path: `${dir}/m.onnx` };
  try {
    const bad: [string, Record<string, string>, RegExp][] = [
      ["/etc/passwd", {}, /outside the model's folder/],
      ["../secret.bin", {}, /outside the model's folder/],
      ["escape.bin", {}, /link to .* outside/],
      ["missing.bin", {}, /does not exist/],
      ["w.bin", { offset: "4" }, /holds 4 bytes/],
      ["w.bin", { offset: "0", length: "800" }, /runs past the end/],
      ["w.bin", { offset: "-1" }, /offset/],
    ];
    for (const [loc, extra, re] of bad) {
      await assert.rejects(
        inlineExternalData(externalModel(loc, extra), origin, "m.onnx"),
        typed("MALFORMED_MODEL", re),
        loc,
      );
    }
    const inlined = await inlineExternalData(externalModel("w.bin"), origin, "m.onnx");
    assert.deepStrictEqual([...(tensorValues(inlined.graph.initializer[0]) as Float32Array)], [1, 2]);
    // Bytes have no folder, so their external references are refused before ONNX Runtime sees them.
    await assert.rejects(
      createSession(encodeModel(externalModel("w.bin"))),
      typed("UNSUPPORTED", /not loaded from a file/),
    );
    // A model loaded from the folder runs with its data inlined by quantlab.
    await Deno.writeFile(`${dir}/m.onnx`, encodeModel(externalModel("w.bin")));
    const m = await OnnxModel.load(`${dir}/m.onnx`);
    const s = await createSession(m, { cache: false });
    try {
      const { Tensor } = await import("../../lib/tensor/tensor.ts");
      const out = await s.run({ x: new Tensor(new Float32Array([10, 20]), [2]) });
      assert.deepStrictEqual([...out.y.data], [11, 22]);
    } finally {
      await s.release();
    }
    await Deno.writeFile(`${dir}/evil.onnx`, encodeModel(externalModel("../secret.bin")));
    await assert.rejects(
      createSession(await OnnxModel.load(`${dir}/evil.onnx`), { cache: false }),
      typed("MALFORMED_MODEL", /"w".*outside/),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
