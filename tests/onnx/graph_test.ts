import assert from "node:assert/strict";
import { GraphBuilder, indexGraph, matchChains, topologicalOrder, validateGraph } from "../../lib/onnx/graph.ts";
import { exposeValues, inferElemTypes, intermediateNames } from "../../lib/onnx/capture.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import type { GraphProto, NodeProto } from "../../lib/onnx/proto.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { modelPath } from "./_fixtures.ts";

const node = (op: string, input: string[], output: string[], name = output[0]): NodeProto => ({
  input,
  output,
  name,
  opType: op,
  domain: "",
  attribute: [],
});
const graph = (nodes: NodeProto[], outputs = ["y"]): GraphProto => ({
  name: "g",
  node: nodes,
  initializer: [],
  input: [{ name: "x" }],
  output: outputs.map((name) => ({ name })),
  valueInfo: [],
});
const malformed = (re: RegExp) => (e: unknown) =>
  e instanceof QuantlabError && e.code === "MALFORMED_MODEL" && re.test(e.message);

Deno.test("validation: dangling input, duplicate output, undefined graph output, cycle", () => {
  assert.throws(() => validateGraph(graph([node("Relu", ["q"], ["y"])])), malformed(/Relu "y" reads "q".*dangling/));
  assert.throws(
    () => validateGraph(graph([node("Relu", ["x"], ["y"], "a"), node("Neg", ["x"], ["y"], "b")])),
    malformed(/"y" is defined twice/),
  );
  assert.throws(() => validateGraph(graph([node("Relu", ["x"], ["z"])])), malformed(/graph output "y"/));
  assert.throws(
    () => validateGraph(graph([node("Add", ["x", "b"], ["a"]), node("Relu", ["a"], ["b"]), node("Neg", ["b"], ["y"])])),
    malformed(/cycle among nodes Add "a", Relu "b"/),
  );
  validateGraph(graph([node("Neg", ["r"], ["y"]), node("Relu", ["x"], ["r"])]));
});

Deno.test("topological order is stable and fixes out-of-order nodes", () => {
  const g = graph([node("Neg", ["r"], ["y"]), node("Relu", ["x"], ["r"]), node("Abs", ["x"], ["u"])]);
  assert.deepStrictEqual(topologicalOrder(g).map((n) => n.name), ["r", "y", "u"]);
});

Deno.test("fixture graph: index, Conv-BN-Relu pattern matching, builder names, element types", async () => {
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  const g = m.graph;
  // 9 Conv->BN pairs; 6 of them continue into a Relu (the stem, and conv1 of each block... plus none after conv2).
  assert.equal(matchChains(g, ["Conv", "BatchNormalization"]).length, 9);
  assert.equal(matchChains(g, ["Conv", "BatchNormalization", "Relu"]).length, 4);
  const ix = indexGraph(g);
  assert.equal(ix.inputs.size, 1);
  assert.equal(ix.consumers.get("/layer1/Relu_1_output_0")?.length, 2); // block 2 conv1 and its shortcut
  const b = new GraphBuilder(g);
  assert.notEqual(b.fresh("input"), "input");
  const types = inferElemTypes(m);
  assert.ok(intermediateNames(m).every((n) => types.get(n) === 1));
});

Deno.test("exposeValues adds typed outputs and rejects unknown names", async () => {
  const m = await OnnxModel.load(modelPath("poolnet_op17"));
  const e = exposeValues(m, ["/MaxPool_output_0", "/Relu_2_output_0"]);
  assert.deepStrictEqual(e.graph.output.map((o) => o.name), ["logits", "/MaxPool_output_0", "/Relu_2_output_0"]);
  assert.equal(m.graph.output.length, 1, "input model unchanged");
  assert.throws(
    () => exposeValues(m, ["nope"]),
    (err: unknown) => err instanceof QuantlabError && /"nope"/.test(err.message),
  );
});
