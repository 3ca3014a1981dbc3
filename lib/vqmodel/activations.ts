/**
 * Layer inputs for the activation-aware PQ objective: capture the input of a Conv / Gemm / MatMul on a few
 * batches and reduce sampled input patches (im2col rows, cut into the weight's blocks) to the block Gram matrix
 * `G = X^T X / n` that {@link fitPqLayer} uses.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { exposeValues } from "../onnx/capture.ts";
import { attrInt, attrInts, attrString } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import { Prng } from "../tensor/prng.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { BlockOrder } from "../vq/weight_layout.ts";
import type { WeightSite } from "./layer.ts";

/**
 * Run `model` on `inputs` (feeds of its single data input) and return the values named `names` per batch.
 *
 * @example
 * ```ts ignore
 * const [conv1In] = await captureValues(model, ["input"], [x]);
 * ```
 */
export async function captureValues(
  model: OnnxModel,
  names: readonly string[],
  inputs: readonly Tensor<"float32">[],
  session: SessionOptions = {},
): Promise<Tensor<"float32">[][]> {
  const probe = exposeValues(model, names, { replace: true });
  const input = model.graph.input.find((i) => !model.graph.initializer.some((t) => t.name === i.name))!.name;
  const s = await createSession(probe, { ...session, cache: false });
  const out: Tensor<"float32">[][] = names.map(() => []);
  try {
    for (const x of inputs) {
      const r = await s.run({ [input]: x });
      names.forEach((n, i) => out[i].push(r[n] as Tensor<"float32">));
    }
  } finally {
    await s.release();
  }
  return out;
}

/** The node of `site` in `model` (by weight name). */
function siteNode(model: OnnxModel, site: WeightSite) {
  const n = model.graph.node.find((x) => x.opType === site.opType && x.input[1] === site.weight);
  if (!n) throw new QuantlabError("INVALID_ARGUMENT", `${model.source}: no ${site.opType} node reads "${site.weight}"`);
  return n;
}

/**
 * The name of the data input of the node that reads `site.weight`.
 *
 * @example
 * ```ts ignore
 * const name = layerInputName(model, site);
 * ```
 */
export function layerInputName(model: OnnxModel, site: WeightSite): string {
  return siteNode(model, site).input[0];
}

/**
 * Block Gram matrix `G = sum_i x_i x_i^T / n` (`d x d`, float64) over `samples` randomly drawn input patches (all
 * of them when `samples` is `Infinity`) of
 * the layer (each patch cut into its `d`-value blocks exactly as the weight is: `"flat"` runs of the `(c, kh, kw)`
 * patch, or `"channels"` runs of channels at one kernel offset), from captured layer inputs `xs`. Conv: 2-D,
 * explicit pads (`auto_pad` NOTSET), any stride, dilation and group; Gemm (`transA` 0) and MatMul: rows of the
 * input.
 *
 * @example
 * ```ts
 * import { blockGram } from "./activations.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x" });
 * p.graph.initializer.push(makeTensorProto("w", new Float32Array(6), [2, 3]));
 * p.graph.node.push({ input: ["x", "w"], output: ["y"], name: "fc", opType: "MatMul", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y" });
 * const site = { weight: "w", node: "fc", opType: "MatMul", shape: [2, 3], axis: 1 };
 * // rows (1, 2) and (3, 4): G = ((1 + 9) / 2, (2 + 12) / 2; ., (4 + 16) / 2)
 * const g = blockGram(OnnxModel.fromProto(p), site, [Tensor.from([1, 2, 3, 4], [2, 2])], 2, "flat", 1000, 0);
 * if (Math.abs(g[0] - 5) > 0.6 || Math.abs(g[3] - 10) > 1.2) throw new Error(String(g));
 * ```
 */
export function blockGram(
  model: OnnxModel,
  site: WeightSite,
  xs: readonly Tensor<"float32">[],
  blockSize: number,
  order: BlockOrder,
  samples: number,
  seed: number,
): Float64Array {
  const node = siteNode(model, site);
  const d = blockSize;
  const G = new Float64Array(d * d);
  const rng = new Prng(seed);
  let count = 0;
  const add = (v: Float32Array, o: number) => {
    for (let i = 0; i < d; i++) {
      const vi = v[o + i];
      if (vi === 0) continue;
      for (let j = 0; j <= i; j++) G[i * d + j] += vi * v[o + j];
    }
    count++;
  };
  if (xs.length === 0) throw new QuantlabError("EMPTY_TENSOR", `${site.weight}: no captured layer inputs`);
  if (site.opType === "Conv") {
    if (attrString(node, "auto_pad", "NOTSET") !== "NOTSET" || site.shape.length !== 4) {
      throw new QuantlabError("UNSUPPORTED", `${site.node}: activation-aware PQ needs a 2-D Conv with explicit pads`);
    }
    const [, cg, kh, kw] = site.shape;
    const group = attrInt(node, "group", 1);
    const [sh, sw] = attrInts(node, "strides", [1, 1]);
    const [dh, dw] = attrInts(node, "dilations", [1, 1]);
    const [pt, pl, pb, pr] = attrInts(node, "pads", [0, 0, 0, 0]);
    const patch = new Float32Array(cg * kh * kw), blocks = new Float32Array(cg * kh * kw);
    const S = kh * kw;
    const addPatch = (x: Tensor<"float32">, n: number, g: number, oy: number, ox: number) => {
      const [, C, H, W] = x.shape;
      const data = x.data;
      let t = 0;
      for (let c = 0; c < cg; c++) {
        const base = (n * C + g * cg + c) * H * W;
        for (let i = 0; i < kh; i++) {
          const y = oy * sh - pt + i * dh;
          for (let j = 0; j < kw; j++) {
            const xx = ox * sw - pl + j * dw;
            patch[t++] = y >= 0 && y < H && xx >= 0 && xx < W ? data[base + y * W + xx] : 0;
          }
        }
      }
      let src = patch;
      if (order === "channels") {
        // blocks (spatial s, channel block b): channels b*d..b*d+d-1 at offset s
        let w = 0;
        for (let sp = 0; sp < S; sp++) {
          for (let b = 0; b < cg / d; b++) for (let j = 0; j < d; j++) blocks[w++] = patch[(b * d + j) * S + sp];
        }
        src = blocks;
      }
      for (let o = 0; o < src.length; o += d) add(src, o);
    };
    const outSize = (x: Tensor<"float32">) => {
      const [, C, H, W] = x.shape;
      if (x.rank !== 4 || C !== cg * group) {
        throw new QuantlabError(
          "SHAPE_MISMATCH",
          `${site.node}: input [${x.shape}] does not match weight [${site.shape}]`,
        );
      }
      return [
        Math.floor((H + pt + pb - dh * (kh - 1) - 1) / sh) + 1,
        Math.floor((W + pl + pr - dw * (kw - 1) - 1) / sw) + 1,
      ];
    };
    if (samples === Infinity) {
      for (const x of xs) {
        const [Ho, Wo] = outSize(x);
        for (let n = 0; n < x.shape[0]; n++) {
          for (let g = 0; g < group; g++) {
            for (let oy = 0; oy < Ho; oy++) for (let ox = 0; ox < Wo; ox++) addPatch(x, n, g, oy, ox);
          }
        }
      }
    } else {
      for (let s = 0; s < samples; s++) {
        const x = xs[rng.nextInt(xs.length)];
        const [Ho, Wo] = outSize(x);
        addPatch(x, rng.nextInt(x.shape[0]), rng.nextInt(group), rng.nextInt(Ho), rng.nextInt(Wo));
      }
    }
  } else {
    if (site.opType === "Gemm" && attrInt(node, "transA", 0) !== 0) {
      throw new QuantlabError("UNSUPPORTED", `${site.node}: activation-aware PQ needs Gemm transA = 0`);
    }
    const addRow = (x: Tensor<"float32">, r: number) => {
      const F = x.shape[x.shape.length - 1];
      const row = x.data.subarray(r * F, r * F + F);
      for (let o = 0; o + d <= F; o += d) add(row, o);
    };
    if (samples === Infinity) {
      for (const x of xs) for (let r = 0; r < x.size / x.shape[x.shape.length - 1]; r++) addRow(x, r);
    } else {
      for (let s = 0; s < samples; s++) {
        const x = xs[rng.nextInt(xs.length)];
        addRow(x, rng.nextInt(x.size / x.shape[x.shape.length - 1]));
      }
    }
  }
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      const v = G[i * d + j] / Math.max(count, 1);
      G[i * d + j] = v;
      G[j * d + i] = v;
    }
  }
  return G;
}
