/**
 * Gradient rules for Conv, Gemm, MatMul and pooling.
 *
 * - Conv: dX = ConvTranspose(dY, W) with explicit pads and `output_padding`, except for ungrouped stride-1 convs:
 *   there dX = Conv(dY, W flipped and transposed, pads `dilation * (k - 1) - pad`), because ONNX Runtime's CPU Conv
 *   (NCHWc kernels) is 1.0-1.6x faster than its ConvTranspose (GEMM + col2im) on the ResNet-8 layers (measured with
 *   onnxruntime-node 1.30, 2 threads: 16x28x28 31 -> 19 ms, 32x14x14 17 -> 13 ms, 64x7x7 equal). The flip is a
 *   MatMul with a constant exchange matrix (differentiable: Hessian-vector products go through it). dW by unfolding X
 *   with a
 *   depthwise one-hot Conv (group = Cin, kernel [Cin*K, 1, k...], same stride/pads/dilation), a batched
 *   MatMul with dY and a ReduceSum over the batch (per group); dB = ReduceSum(dY). 1x1 stride-1 unpadded
 *   convs skip the unfold.
 * - Gemm / MatMul: products with the other operand transposed; broadcast batch axes summed.
 * - MaxPool: its Indices output (the compiler adds it) and ScatterElements(reduction "add") on a flat zero
 *   tensor; AveragePool: depthwise ConvTranspose of dY / count with a ones kernel; GlobalAveragePool: Expand.
 *
 * @module
 */
import { attrFloat, attrInt, attrInts, attrString } from "../onnx/graph.ts";
import { convGeometry, type GradRule, prod, reduceTo, type RuleContext, unsupported } from "./rule.ts";

function spatialAxes(rank: number): number[] {
  return Array.from({ length: rank - 2 }, (_, i) => i + 2);
}

function convGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node;
  const [x, w, b] = n.input;
  const dy = c.dy(0)!;
  const xs = c.shape(x), ws = c.shape(w), ys = c.shape(n.output[0]);
  const kernel = attrInts(n, "kernel_shape", ws.slice(2));
  const geo = convGeometry(n, xs, ys, kernel);
  const group = attrInt(n, "group", 1);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  const sp = geo.kernel.length;
  const flipPads = geo.pads.map((p, i) => geo.dilations[i % sp] * (geo.kernel[i % sp] - 1) - p);
  for (let i = 0; i < sp; i++) flipPads[sp + i] += geo.outputPadding[i];
  if (c.needs(0) && group === 1 && geo.strides.every((s) => s === 1) && flipPads.every((p) => p >= 0)) {
    out[0] = c.e.op("Conv", [dy, flippedKernel(c, w, ws)], {
      pads: flipPads,
      dilations: geo.dilations,
      kernel_shape: geo.kernel,
    });
  } else if (c.needs(0)) {
    out[0] = c.e.op("ConvTranspose", [dy, w], {
      strides: geo.strides,
      pads: geo.pads,
      dilations: geo.dilations,
      group,
      kernel_shape: geo.kernel,
      output_padding: geo.outputPadding,
    });
  }
  if (c.needs(1)) out[1] = convWeightGrad(c, x, dy, xs, ws, geo, group);
  if (b && c.needs(2)) out[2] = c.e.reduceSum(dy, [0, ...spatialAxes(ys.length)], false);
  return out;
}

/** `W [Co, Ci, k...]` -> `W' [Ci, Co, k...]` with every spatial axis reversed: the kernel of the adjoint conv. */
function flippedKernel(c: RuleContext, w: string, ws: readonly number[]): string {
  const [co, ci] = ws, K = prod(ws.slice(2));
  let f = w;
  if (K > 1) {
    // Reversing the row-major flattened kernel index reverses every spatial axis at once.
    const exchange = new Float32Array(K * K);
    for (let i = 0; i < K; i++) exchange[i * K + (K - 1 - i)] = 1;
    f = c.e.reshape(c.e.op("MatMul", [c.e.reshape(w, [co * ci, K]), c.e.constF(exchange, [K, K])]), ws);
  }
  return c.e.transpose(f, [1, 0, ...ws.slice(2).map((_, i) => i + 2)]);
}

function convWeightGrad(
  c: RuleContext,
  x: string,
  dy: string,
  xs: readonly number[],
  ws: readonly number[],
  geo: ReturnType<typeof convGeometry>,
  group: number,
): string {
  const cin = xs[1], cout = ws[0], cinG = cin / group, coutG = cout / group;
  const K = prod(geo.kernel);
  const trivial = K === 1 && geo.strides.every((s) => s === 1) && geo.pads.every((p) => p === 0);
  let u = x;
  if (!trivial) {
    const onehot = new Float32Array(cin * K * K);
    for (let o = 0; o < cin * K; o++) onehot[o * K + (o % K)] = 1;
    const kern = c.e.b.initializer("unfold_kernel", onehot, [cin * K, 1, ...geo.kernel]);
    u = c.e.op("Conv", [x, kern], {
      group: cin,
      kernel_shape: geo.kernel,
      strides: geo.strides,
      pads: geo.pads,
      dilations: geo.dilations,
    });
  }
  if (group === 1) {
    const ur = c.e.reshape(u, [0, cin * K, -1]); // [N, CK, L]
    const dyt = c.e.transpose(c.e.reshape(dy, [0, cout, -1]), [0, 2, 1]); // [N, L, Cout]
    const s = c.e.reduceSum(c.e.op("MatMul", [ur, dyt]), [0], false); // [CK, Cout]
    return c.e.reshape(c.e.transpose(s, [1, 0]), ws);
  }
  const ur = c.e.reshape(u, [0, group, cinG * K, -1]); // [N, G, CgK, L]
  const dyt = c.e.transpose(c.e.reshape(dy, [0, group, coutG, -1]), [0, 1, 3, 2]); // [N, G, L, Coutg]
  const s = c.e.reduceSum(c.e.op("MatMul", [ur, dyt]), [0], false); // [G, CgK, Coutg]
  return c.e.reshape(c.e.transpose(s, [0, 2, 1]), ws);
}

/** ConvTranspose is the adjoint of Conv: dX = Conv(dY, W), dW = Conv's weight gradient with the roles swapped. */
function convTransposeGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node;
  const [x, w, b] = n.input;
  const dy = c.dy(0)!;
  const xs = c.shape(x), ws = c.shape(w), ys = c.shape(n.output[0]);
  if (attrString(n, "auto_pad", "NOTSET") !== "NOTSET") unsupported(n, "ConvTranspose with auto_pad");
  const kernel = attrInts(n, "kernel_shape", ws.slice(2));
  const geo = convGeometry(n, ys, xs, kernel);
  const group = attrInt(n, "group", 1);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    out[0] = c.e.op("Conv", [dy, w], {
      strides: geo.strides,
      pads: geo.pads,
      dilations: geo.dilations,
      group,
      kernel_shape: geo.kernel,
    });
  }
  if (c.needs(1)) out[1] = convWeightGrad(c, dy, x, ys, ws, geo, group);
  if (b && c.needs(2)) out[2] = c.e.reduceSum(dy, [0, ...spatialAxes(ys.length)], false);
  return out;
}

function gemmGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node;
  const [a, b, cc] = n.input;
  const dy = c.dy(0)!;
  const alpha = attrFloat(n, "alpha", 1), beta = attrFloat(n, "beta", 1);
  const ta = attrInt(n, "transA", 0), tb = attrInt(n, "transB", 0);
  const gemm = (p: string, q: string, tp: number, tq: number) =>
    c.e.op("Gemm", [p, q], { alpha: { float: alpha }, transA: tp, transB: tq });
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (c.needs(0)) out[0] = ta === 0 ? gemm(dy, b, 0, tb === 0 ? 1 : 0) : gemm(b, dy, tb, 1);
  if (c.needs(1)) out[1] = tb === 0 ? gemm(a, dy, ta === 0 ? 1 : 0, 0) : gemm(dy, a, 1, ta);
  if (cc && c.needs(2)) {
    const g = beta === 1 ? dy : c.e.mul(dy, c.e.scalar(beta));
    out[2] = reduceTo(c, g, c.shape(n.output[0]), cc);
  }
  return out;
}

function matmulGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node;
  const [a, b] = n.input;
  const as = c.shape(a), bs = c.shape(b);
  if (as.length < 2 || bs.length < 2) unsupported(n, "1-D MatMul operands have no rule (reshape them to 2-D)");
  const dy = c.dy(0)!;
  const ys = c.shape(n.output[0]);
  const tr = (v: string, r: number) => c.e.transpose(v, [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2]);
  const out: (string | undefined)[] = [undefined, undefined];
  if (c.needs(0)) {
    const g = c.e.op("MatMul", [dy, tr(b, bs.length)]);
    out[0] = reduceTo(c, g, [...ys.slice(0, -2), as[as.length - 2], as[as.length - 1]], a);
  }
  if (c.needs(1)) {
    const g = c.e.op("MatMul", [tr(a, as.length), dy]);
    out[1] = reduceTo(c, g, [...ys.slice(0, -2), bs[bs.length - 2], bs[bs.length - 1]], b);
  }
  return out;
}

function maxPoolGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node;
  const idx = n.output[1];
  if (!idx) unsupported(n, "MaxPool needs its Indices output (the compiler adds it)");
  if (attrInt(n, "storage_order", 0) !== 0) unsupported(n, "storage_order 1");
  const x = n.input[0];
  const size = c.e.reshape(c.e.op("Size", [x]), [1]);
  const zeros = c.e.op("ConstantOfShape", [size]);
  const flatI = c.e.reshape(idx, [-1]);
  const flatG = c.e.reshape(c.dy(0)!, [-1]);
  const s = c.e.op("ScatterElements", [zeros, flatI, flatG], { axis: 0, reduction: "add" });
  return [c.e.reshapeLike(s, x)];
}

function avgPoolGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node;
  const x = n.input[0];
  const xs = c.shape(x), ys = c.shape(n.output[0]);
  const kernel = attrInts(n, "kernel_shape", []);
  if (attrInts(n, "dilations", kernel.map(() => 1)).some((d) => d !== 1)) unsupported(n, "dilated AveragePool");
  const geo = convGeometry(n, xs, ys, kernel);
  const sp = kernel.length;
  if (attrInt(n, "ceil_mode", 0) === 1) {
    for (let i = 0; i < sp; i++) {
      const floorOut = Math.floor((xs[2 + i] + geo.pads[i] + geo.pads[sp + i] - kernel[i]) / geo.strides[i]) + 1;
      if (floorOut !== ys[2 + i]) unsupported(n, "ceil_mode windows that run past the input");
    }
  }
  const C = xs[1];
  const K = prod(kernel);
  const includePad = attrInt(n, "count_include_pad", 0) === 1 || geo.pads.every((p) => p === 0);
  let g: string;
  if (includePad) g = c.e.div(c.dy(0)!, c.e.scalar(K));
  else {
    // Per-window count of non-pad positions (static), as a [1, 1, Ho, Wo...] divisor.
    const outSp = ys.slice(2);
    const counts = new Float32Array(prod(outSp));
    for (let o = 0; o < counts.length; o++) {
      let rem = o, cnt = 1;
      for (let i = sp - 1; i >= 0; i--) {
        const oi = rem % outSp[i];
        rem = Math.floor(rem / outSp[i]);
        const lo = oi * geo.strides[i] - geo.pads[i];
        const hi = lo + kernel[i];
        cnt *= Math.min(hi, xs[2 + i]) - Math.max(lo, 0);
      }
      counts[o] = cnt;
    }
    g = c.e.div(c.dy(0)!, c.e.constF(counts, [1, 1, ...outSp]));
  }
  const ones = c.e.b.initializer("pool_ones", new Float32Array(C * K).fill(1), [C, 1, ...kernel]);
  return [c.e.op("ConvTranspose", [g, ones], {
    group: C,
    kernel_shape: kernel,
    strides: geo.strides,
    pads: geo.pads,
    output_padding: geo.outputPadding,
  })];
}

function globalAvgPoolGrad(c: RuleContext): (string | undefined)[] {
  const x = c.node.input[0];
  const xs = c.shape(x);
  const e = c.e.op("Expand", [c.dy(0)!, c.e.shapeOf(x)]);
  return [c.e.div(e, c.e.scalar(prod(xs.slice(2))))];
}

/**
 * Rules by op type.
 *
 * @example
 * ```ts
 * import { LINEAR_RULES } from "./rules_linear.ts";
 * if (typeof LINEAR_RULES.Conv !== "function" || typeof LINEAR_RULES.Gemm !== "function") throw new Error("bad");
 * ```
 */
export const LINEAR_RULES: Record<string, GradRule> = {
  Conv: convGrad,
  ConvTranspose: convTransposeGrad,
  Gemm: gemmGrad,
  MatMul: matmulGrad,
  MaxPool: maxPoolGrad,
  AveragePool: avgPoolGrad,
  GlobalAveragePool: globalAvgPoolGrad,
};
