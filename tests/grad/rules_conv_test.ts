// Finite-difference checks of the Conv, Gemm, MatMul and pooling gradient rules (see _gradcheck.ts).
import { type Case, gradCheck } from "./_gradcheck.ts";

const conv = (attrs: Case["nodes"][0]["attrs"], x: number[], w: number[], bias = true): Case => ({
  nodes: [{ op: "Conv", inputs: bias ? ["x", "w", "b"] : ["x", "w"], outputs: ["y"], attrs }],
  inputs: { x: { dims: x } },
  params: bias ? { w: { dims: w }, b: { dims: [w[0]] } } : { w: { dims: w } },
  output: "y",
});

Deno.test("Conv: stride 2, padding, bias, odd sizes", async () =>
  void await gradCheck(conv({ strides: [2, 2], pads: [1, 1, 1, 1] }, [2, 3, 7, 6], [4, 3, 3, 3])));
Deno.test("Conv: dilation 2, asymmetric pads, no bias", async () =>
  void await gradCheck(conv({ dilations: [2, 2], pads: [0, 1, 2, 1] }, [2, 2, 7, 8], [3, 2, 3, 2], false)));
Deno.test("Conv: groups 2, stride 2", async () =>
  void await gradCheck(conv({ group: 2, strides: [2, 2], pads: [1, 0, 1, 0] }, [2, 4, 7, 5], [6, 2, 3, 3])));
Deno.test("Conv: depthwise, stride 2, dilation 2", async () =>
  void await gradCheck(
    conv({ group: 3, strides: [2, 2], dilations: [2, 2], pads: [2, 2, 2, 2] }, [2, 3, 9, 7], [3, 1, 3, 3]),
  ));
Deno.test("Conv: 1x1 (no unfold) and SAME_UPPER stride 2", async () => {
  await gradCheck(conv({}, [2, 3, 5, 4], [2, 3, 1, 1]));
  await gradCheck(conv({ auto_pad: "SAME_UPPER", strides: [2, 2] }, [2, 2, 7, 6], [3, 2, 3, 3]));
});
Deno.test("Conv: 1-D", async () => void await gradCheck(conv({ strides: [2], pads: [1, 2] }, [2, 3, 11], [4, 3, 3])));

Deno.test("Gemm: all transpose combinations, alpha, beta, broadcast C", async () => {
  for (const [ta, tb] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
    await gradCheck({
      nodes: [{
        op: "Gemm",
        inputs: ["x", "w", "c"],
        outputs: ["y"],
        attrs: { transA: ta, transB: tb, alpha: { f: 0.7 }, beta: { f: 1.3 } },
      }],
      inputs: { x: { dims: ta ? [4, 3] : [3, 4] } },
      params: { w: { dims: tb ? [5, 4] : [4, 5] }, c: { dims: [5] } },
      output: "y",
    }, ["node"]);
  }
});

Deno.test("MatMul: batched with broadcasting", async () => {
  await gradCheck({
    nodes: [{ op: "MatMul", inputs: ["x", "w"], outputs: ["y"] }],
    inputs: { x: { dims: [2, 3, 4, 5] } },
    params: { w: { dims: [5, 3] } },
    output: "y",
  });
  await gradCheck({
    nodes: [{ op: "MatMul", inputs: ["x", "w"], outputs: ["y"] }],
    inputs: { x: { dims: [2, 1, 4, 5] } },
    params: { w: { dims: [3, 5, 2] } },
    output: "y",
  }, ["node"]);
});

Deno.test("MaxPool: overlapping 3x3 stride 2 with padding, and dilation", async () => {
  await gradCheck({
    nodes: [{
      op: "MaxPool",
      inputs: ["x"],
      outputs: ["y"],
      attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    }],
    inputs: { x: { dims: [2, 3, 7, 6], init: "spaced" } },
    output: "y",
    h: 1e-3,
  });
  await gradCheck({
    nodes: [{
      op: "MaxPool",
      inputs: ["x"],
      outputs: ["y"],
      attrs: { kernel_shape: [2, 3], strides: [1, 2], dilations: [2, 1], ceil_mode: 1 },
    }],
    inputs: { x: { dims: [2, 2, 7, 8], init: "spaced" } },
    output: "y",
    h: 1e-3,
  }, ["node"]);
});

Deno.test("AveragePool: overlapping, padding with and without count_include_pad; GlobalAveragePool", async () => {
  for (const cip of [0, 1]) {
    await gradCheck({
      nodes: [{
        op: "AveragePool",
        inputs: ["x"],
        outputs: ["y"],
        attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: cip },
      }],
      inputs: { x: { dims: [2, 3, 7, 6] } },
      output: "y",
    });
  }
  await gradCheck({
    nodes: [{ op: "GlobalAveragePool", inputs: ["x"], outputs: ["y"] }],
    inputs: { x: { dims: [2, 3, 5, 4] } },
    output: "y",
  });
});
