/**
 * The contract of a gradient rule: given one forward node and the gradients of its outputs, emit nodes that
 * compute the gradients of its inputs (vector-Jacobian products), plus shared helpers rules use (static
 * shapes, constant inputs, broadcast reduction, conv attribute normalisation).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { attrInts, attrString, nodeLabel } from "../onnx/graph.ts";
import type { NodeProto } from "../onnx/proto.ts";
import type { TensorValues } from "../onnx/tensor_data.ts";
import type { Emitter } from "./emitter.ts";

/** What a rule sees. */
export interface RuleContext {
  /** The forward node. */
  readonly node: NodeProto;
  /** Emits backward nodes into the gradient graph. */
  readonly e: Emitter;
  /** Gradient flowing into output `k` (undefined when none does). */
  dy(k: number): string | undefined;
  /** Whether input `k` needs a gradient (it depends on a differentiated value). */
  needs(k: number): boolean;
  /** Static shape of a value as captured from the sample batch (throws if unknown). */
  shape(name: string): readonly number[];
  /** Whether a value's shape is fixed (initializer, parameter, constant) rather than batch-dependent. */
  isStatic(name: string): boolean;
  /** Values of a constant input (initializer that is not a parameter, or a Constant node), else undefined. */
  constant(name: string): TensorValues | undefined;
  /** Round/Floor/Ceil gradient: straight-through identity (`"ste"`) or zero. */
  readonly roundGradient: "ste" | "zero";
  /** The forward node that produced a value, if any. */
  producer(name: string): NodeProto | undefined;
  /** Element type code of a value (`DataType`), if known. */
  elemType(name: string): number | undefined;
  /** Whether any value (not only this node's inputs) needs a gradient. */
  needsValue(name: string): boolean;
  /** Add a gradient contribution to a value that is not one of this node's inputs (e.g. through Q->DQ). */
  addGrad(name: string, grad: string): void;
}

/** A rule returns one gradient name (or undefined) per forward input. */
export type GradRule = (c: RuleContext) => (string | undefined)[];

/**
 * Throw `UNSUPPORTED_OP` naming the node.
 *
 * @example
 * ```ts
 * import { unsupported } from "./rule.ts";
 * const node = { input: [], output: [], name: "c", opType: "Conv", domain: "", attribute: [] };
 * try {
 *   unsupported(node, "grouped");
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes('Conv "c"')) throw e;
 * }
 * ```
 */
export function unsupported(node: NodeProto, why: string): never {
  throw new QuantlabError("UNSUPPORTED_OP", `gradient of ${nodeLabel(node)}: ${why}`);
}

/**
 * Sum `g` (shaped `from`) over the axes that numpy broadcasting expanded, so the result has the shape of `to`.
 * Static shapes decide the axes; the result is reshaped to `to`'s static dims when `to` is static, else to
 * `Shape(to)` at run time.
 *
 * @example
 * ```ts
 * import { reduceTo, type RuleContext } from "./rule.ts";
 * // Nothing was broadcast (same shapes), so the gradient comes back unchanged and no node is emitted.
 * const c = { shape: () => [2, 3] } as unknown as RuleContext;
 * if (reduceTo(c, "g", [2, 3], "b") !== "g") throw new Error("bad");
 * ```
 */
export function reduceTo(c: RuleContext, g: string, from: readonly number[], to: string): string {
  const ts = c.shape(to);
  if (ts.length === from.length && ts.every((d, i) => d === from[i])) return g;
  const off = from.length - ts.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) if (i < off || (ts[i - off] === 1 && from[i] !== 1)) axes.push(i);
  const r = axes.length ? c.e.reduceSum(g, axes, true) : g;
  return c.isStatic(to) ? c.e.reshape(r, ts) : c.e.reshapeLike(r, to);
}

/** Normalised convolution / pooling geometry. */
export interface ConvGeometry {
  /** Spatial kernel dims. */
  kernel: number[];
  /** Strides per spatial dim. */
  strides: number[];
  /** Dilations per spatial dim. */
  dilations: number[];
  /** Explicit pads `[b1, b2, ..., e1, e2, ...]`. */
  pads: number[];
  /** Per spatial dim: input size - (what a transposed conv with the same pads yields), i.e. `output_padding`. */
  outputPadding: number[];
}

/**
 * Resolve kernel/strides/dilations/pads (auto_pad included) of a Conv or pooling node from static shapes, and
 * the `output_padding` a ConvTranspose needs to map the output back onto the input size.
 *
 * @example
 * ```ts
 * import { convGeometry } from "./rule.ts";
 * import { intsAttr } from "../onnx/graph.ts";
 * const node = { input: [], output: [], name: "", opType: "Conv", domain: "", attribute: [intsAttr("pads", [1, 1, 1, 1])] };
 * const g = convGeometry(node, [1, 1, 5, 5], [1, 1, 5, 5], [3, 3]);
 * if (g.pads.join() !== "1,1,1,1" || g.strides.join() !== "1,1" || g.outputPadding.join() !== "0,0") {
 *   throw new Error("bad");
 * }
 * ```
 */
export function convGeometry(
  node: NodeProto,
  xShape: readonly number[],
  yShape: readonly number[],
  kernel: readonly number[],
): ConvGeometry {
  const sp = xShape.length - 2;
  const ones = new Array(sp).fill(1);
  const strides = attrInts(node, "strides", ones);
  const dilations = attrInts(node, "dilations", ones);
  let pads = attrInts(node, "pads", new Array(2 * sp).fill(0));
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  if (autoPad === "VALID") pads = new Array(2 * sp).fill(0);
  else if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    pads = new Array(2 * sp).fill(0);
    for (let i = 0; i < sp; i++) {
      const dk = (kernel[i] - 1) * dilations[i] + 1;
      const total = Math.max(0, (yShape[2 + i] - 1) * strides[i] + dk - xShape[2 + i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === "SAME_UPPER" ? small : total - small;
      pads[sp + i] = total - pads[i];
    }
  } else if (autoPad !== "NOTSET") unsupported(node, `auto_pad "${autoPad}"`);
  const outputPadding: number[] = [];
  for (let i = 0; i < sp; i++) {
    const dk = (kernel[i] - 1) * dilations[i] + 1;
    const back = strides[i] * (yShape[2 + i] - 1) + dk - pads[i] - pads[sp + i];
    outputPadding.push(xShape[2 + i] - back);
  }
  if (outputPadding.some((p, i) => p < 0 || p >= Math.max(strides[i], dilations[i]))) {
    unsupported(node, `cannot map output [${yShape}] back onto input [${xShape}] (output_padding ${outputPadding})`);
  }
  return { kernel: [...kernel], strides: [...strides], dilations: [...dilations], pads: [...pads], outputPadding };
}

/**
 * Product of numbers.
 *
 * @example
 * ```ts
 * import { prod } from "./rule.ts";
 * if (prod([2, 3, 4]) !== 24 || prod([]) !== 1) throw new Error("bad");
 * ```
 */
export function prod(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}
