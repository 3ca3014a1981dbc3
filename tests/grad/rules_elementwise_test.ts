// Finite-difference checks of the elementwise, softmax, reduction and shape gradient rules (see _gradcheck.ts).
import assert from "node:assert/strict";
import { type Case, gradCheck } from "./_gradcheck.ts";

const unary = (op: string, init: "normal" | "positive" | "away", attrs?: Case["nodes"][0]["attrs"]): Case => ({
  nodes: [{ op, inputs: ["x"], outputs: ["y"], attrs }],
  inputs: { x: { dims: [3, 5], init } },
  output: "y",
});

Deno.test("unary activations and math", async (t) => {
  for (
    const [op, init, attrs] of [
      ["Relu", "away"],
      ["LeakyRelu", "away", { alpha: { f: 0.2 } }],
      ["Sigmoid", "normal"],
      ["Tanh", "normal"],
      ["Exp", "normal"],
      ["Log", "positive"],
      ["Sqrt", "positive"],
      ["Reciprocal", "positive"],
      ["Abs", "away"],
      ["Neg", "normal"],
      ["Identity", "normal"],
      ["Softmax", "normal", { axis: 1 }],
      ["Softmax", "normal", { axis: 0 }],
      ["LogSoftmax", "normal", { axis: -1 }],
    ] as const
  ) {
    await t.step(
      `${op} ${JSON.stringify(attrs ?? {})}`,
      async () => void await gradCheck(unary(op, init, attrs as Case["nodes"][0]["attrs"]), ["node"]),
    );
  }
});

Deno.test("broadcasting Add/Sub/Mul/Div/Sum/Pow/Where", async (t) => {
  for (const op of ["Add", "Sub", "Mul", "Div"]) {
    await t.step(op, async () => {
      await gradCheck({
        nodes: [{ op, inputs: ["x", "b"], outputs: ["y"] }],
        inputs: { x: { dims: [2, 3, 4, 5], init: "positive" } },
        params: { b: { dims: [3, 1, 5], init: "positive" } },
        output: "y",
      });
      await gradCheck({
        nodes: [{ op, inputs: ["b", "x"], outputs: ["y"] }],
        inputs: { x: { dims: [2, 3, 1], init: "positive" } },
        params: { b: { dims: [1, 4], init: "positive" } },
        output: "y",
      }, ["node"]);
    });
  }
  await t.step("Mul of a value with itself; Sum of three", () =>
    gradCheck({
      nodes: [
        { op: "Mul", inputs: ["x", "x"], outputs: ["s"] },
        { op: "Sum", inputs: ["s", "x", "b"], outputs: ["y"] },
      ],
      inputs: { x: { dims: [2, 3] } },
      params: { b: { dims: [3] } },
      output: "y",
    }, ["node"]).then(() => {}));
  await t.step("Pow with constant exponent", () =>
    gradCheck({
      nodes: [{ op: "Pow", inputs: ["x", "p"], outputs: ["y"] }],
      inputs: { x: { dims: [2, 3], init: "positive" } },
      fixed: { p: { dims: [], init: new Float32Array([2.5]) } },
      output: "y",
    }, ["node"]).then(() => {}));
  await t.step("Where with broadcasting", () =>
    gradCheck({
      nodes: [
        { op: "Greater", inputs: ["x", "z"], outputs: ["c"] },
        { op: "Where", inputs: ["c", "x", "b"], outputs: ["y"] },
      ],
      inputs: { x: { dims: [2, 3, 4], init: "away" } },
      params: { b: { dims: [4] } },
      fixed: { z: { dims: [], init: new Float32Array([0]) } },
      output: "y",
    }, ["node"]).then(() => {}));
});

Deno.test("Clip: input mask and gradients of the bounds (PACT's clip)", async () => {
  const g = await gradCheck({
    nodes: [{ op: "Clip", inputs: ["x", "lo", "hi"], outputs: ["y"] }],
    inputs: { x: { dims: [4, 5], init: new Float32Array(Array.from({ length: 20 }, (_, i) => -1.33 + i * 0.141)) } },
    params: { lo: { dims: [], init: new Float32Array([-0.5]) }, hi: { dims: [], init: new Float32Array([0.8]) } },
    output: "y",
  });
  assert.notEqual(g.get("hi")![0], 0);
  assert.notEqual(g.get("lo")![0], 0);
});

Deno.test("reductions: ReduceSum / ReduceMean with and without keepdims, over the batch", async (t) => {
  for (const keepdims of [0, 1]) {
    await t.step(`keepdims ${keepdims}`, async () => {
      await gradCheck({
        nodes: [{ op: "ReduceSum", inputs: ["x", "ax"], outputs: ["y"], attrs: { keepdims } }],
        inputs: { x: { dims: [2, 3, 4] } },
        ints: { ax: { values: [-1, 0], dims: [2] } },
        output: "y",
      }, ["node"]);
      await gradCheck({
        nodes: [{ op: "ReduceMean", inputs: ["x"], outputs: ["y"], attrs: { keepdims, axes: [0, 2] } }],
        inputs: { x: { dims: [2, 3, 4] } },
        output: "y",
      }, ["node"]);
      await gradCheck({
        nodes: [{ op: "ReduceMean", inputs: ["x"], outputs: ["y"], attrs: { keepdims } }],
        inputs: { x: { dims: [2, 3, 4] } },
        output: "y",
      }, ["node"]);
    });
  }
});

Deno.test("shape ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand, Concat, Split", async (t) => {
  await t.step("Reshape + Transpose + Flatten", () =>
    gradCheck({
      nodes: [
        { op: "Reshape", inputs: ["x", "shp"], outputs: ["r"] },
        { op: "Transpose", inputs: ["r"], outputs: ["tr"], attrs: { perm: [0, 2, 3, 1] } },
        { op: "Mul", inputs: ["tr", "w"], outputs: ["m"] },
        { op: "Flatten", inputs: ["m"], outputs: ["y"], attrs: { axis: 2 } },
      ],
      inputs: { x: { dims: [2, 12] } },
      params: { w: { dims: [3, 2, 2] } },
      ints: { shp: { values: [0, 2, 3, 2], dims: [4] } },
      output: "y",
    }).then(() => {}));
  await t.step("Unsqueeze + Expand + Squeeze", () =>
    gradCheck({
      nodes: [
        { op: "Unsqueeze", inputs: ["w", "a0"], outputs: ["u"] },
        { op: "Expand", inputs: ["u", "es"], outputs: ["e"] },
        { op: "Mul", inputs: ["e", "x"], outputs: ["m"] },
        { op: "Squeeze", inputs: ["m", "a1"], outputs: ["y"] },
      ],
      inputs: { x: { dims: [2, 1, 3] } },
      params: { w: { dims: [3] } },
      ints: { a0: { values: [0], dims: [1] }, a1: { values: [1], dims: [1] }, es: { values: [2, 1, 3], dims: [3] } },
      output: "y",
    }, ["node"]).then(() => {}));
  await t.step("Concat + Split", () =>
    gradCheck({
      nodes: [
        { op: "Concat", inputs: ["x", "w", "x"], outputs: ["c"], attrs: { axis: 1 } },
        { op: "Split", inputs: ["c", "sp"], outputs: ["s0", "s1"], attrs: { axis: 1 } },
        { op: "Mul", inputs: ["s1", "s1"], outputs: ["y"] },
      ],
      inputs: { x: { dims: [2, 3] } },
      params: { w: { dims: [2, 2] } },
      ints: { sp: { values: [4, 4], dims: [2] } },
      output: "y",
    }).then(() => {}));
});

Deno.test("Slice: steps 2 and 3, negative starts, several axes; Pad", async (t) => {
  await t.step("Slice", () =>
    gradCheck({
      nodes: [{ op: "Slice", inputs: ["x", "st", "en", "ax", "sp"], outputs: ["y"] }],
      inputs: { x: { dims: [2, 5, 7, 8] } },
      ints: {
        st: { values: [1, -6, 0], dims: [3] },
        en: { values: [5, 7, 100], dims: [3] },
        ax: { values: [1, 2, -1], dims: [3] },
        sp: { values: [2, 1, 3], dims: [3] },
      },
      output: "y",
    }).then(() => {}));
  await t.step("Pad", () =>
    gradCheck({
      nodes: [{ op: "Pad", inputs: ["x", "pads"], outputs: ["y"] }],
      inputs: { x: { dims: [2, 3, 4] } },
      ints: { pads: { values: [0, 1, 0, 0, 2, 3], dims: [6] } },
      output: "y",
    }, ["node"]).then(() => {}));
});

Deno.test("GatherElements (cross-entropy's pick)", () =>
  gradCheck({
    nodes: [{ op: "GatherElements", inputs: ["x", "idx"], outputs: ["y"], attrs: { axis: 1 } }],
    inputs: { x: { dims: [3, 4] } },
    ints: { idx: { values: [1, 1, 3, 0, 2, 2], dims: [3, 2] } },
    output: "y",
  }).then(() => {}));
