/**
 * Gradient rules for data-movement ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose (inverse permutation),
 * Expand (sum over expanded axes), Concat (Split), Split (Concat), Slice (zero-interleave with Pad for steps,
 * then Pad to the input extent), Pad (Slice back), GatherElements (ScatterElements with reduction "add").
 *
 * @module
 */
import { attrInt, attrInts, attrString } from "../onnx/graph.ts";
import { type GradRule, reduceTo, type RuleContext, unsupported } from "./rule.ts";

const reshapeBack: GradRule = (c) => [c.e.reshapeLike(c.dy(0)!, c.node.input[0])];

function constInts(c: RuleContext, name: string | undefined, what: string): number[] | undefined {
  if (!name) return undefined;
  const v = c.constant(name);
  if (!v) unsupported(c.node, `${what} must be a constant`);
  return Array.from(v as ArrayLike<number | bigint>, Number);
}

function normAxis(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

/** Gradient of a 1-axis positive-step slice: place `g` (current dims `cur`) back into an extent of `d`. */
function unslice(
  c: RuleContext,
  g: string,
  cur: number[],
  axis: number,
  start: number,
  step: number,
  d: number,
): string {
  const m = cur[axis];
  const rank = cur.length;
  let out = g;
  let len = m;
  if (step > 1 && m > 0) {
    const u = c.e.unsqueeze(out, [axis + 1]);
    const pads = new Array(2 * (rank + 1)).fill(0);
    pads[rank + 1 + axis + 1] = step - 1;
    const padded = c.e.op("Pad", [u, c.e.constI64(pads)]);
    const dims = cur.map((v, i) => (i < axis ? 0 : i === axis ? m * step : v));
    out = c.e.reshape(padded, dims);
    len = m * step;
  }
  let right = d - start - len;
  if (right < 0) {
    out = c.e.op("Slice", [out, c.e.constI64([0]), c.e.constI64([len + right]), c.e.constI64([axis])]);
    right = 0;
  }
  if (start > 0 || right > 0) {
    const pads = new Array(2 * rank).fill(0);
    pads[axis] = start;
    pads[rank + axis] = right;
    out = c.e.op("Pad", [out, c.e.constI64(pads)]);
  }
  cur[axis] = d;
  return out;
}

/**
 * Rules by op type.
 *
 * @example
 * ```ts
 * import { SHAPE_RULES } from "./rules_shape.ts";
 * if (typeof SHAPE_RULES.Reshape !== "function" || typeof SHAPE_RULES.Flatten !== "function") throw new Error("bad");
 * ```
 */
export const SHAPE_RULES: Record<string, GradRule> = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: (c) => {
    const rank = c.shape(c.node.input[0]).length;
    const perm = attrInts(c.node, "perm", Array.from({ length: rank }, (_, i) => rank - 1 - i));
    const inv = new Array(rank);
    perm.forEach((p, i) => (inv[p] = i));
    return [c.e.transpose(c.dy(0)!, inv)];
  },
  Expand: (c) => [reduceTo(c, c.dy(0)!, c.shape(c.node.output[0]), c.node.input[0]), undefined],
  Concat: (c) => {
    const n = c.node;
    const rank = c.shape(n.output[0]).length;
    const axis = normAxis(attrInt(n, "axis", 0), rank);
    const sizes = n.input.map((x) => c.shape(x)[axis]);
    if (axis === 0 && n.input.some((x) => !c.isStatic(x))) unsupported(n, "concatenation along the batch axis");
    const parts = c.e.opN("Split", [c.dy(0)!, c.e.constI64(sizes)], n.input.length, { axis });
    return parts.map((p, k) => (c.needs(k) ? p : undefined));
  },
  Split: (c) => {
    const n = c.node;
    const rank = c.shape(n.input[0]).length;
    const axis = normAxis(attrInt(n, "axis", 0), rank);
    const gs = n.output.map((o, k) => c.dy(k) ?? c.e.zerosLike(o));
    return [c.e.op("Concat", gs, { axis }), undefined];
  },
  Slice: (c) => {
    const n = c.node;
    const xs = c.shape(n.input[0]);
    const rank = xs.length;
    const starts = constInts(c, n.input[1], "Slice starts")!;
    const axes = (constInts(c, n.input[3], "Slice axes") ?? starts.map((_, i) => i)).map((a) => normAxis(a, rank));
    const steps = constInts(c, n.input[4], "Slice steps") ?? starts.map(() => 1);
    const cur = [...c.shape(n.output[0])];
    let g = c.dy(0)!;
    axes.forEach((axis, i) => {
      const step = steps[i];
      if (step <= 0) unsupported(n, `step ${step} (only positive steps have a rule)`);
      const d = xs[axis];
      if (axis === 0 && !c.isStatic(n.input[0])) unsupported(n, "slicing along the batch axis");
      let s = starts[i];
      if (s < 0) s += d;
      s = Math.min(Math.max(s, 0), d);
      g = unslice(c, g, cur, axis, s, step, d);
    });
    return [g];
  },
  Pad: (c) => {
    const n = c.node;
    if (attrString(n, "mode", "constant") !== "constant") unsupported(n, "only constant-mode Pad has a rule");
    if (n.input[3]) unsupported(n, "Pad with an axes input");
    const xs = c.shape(n.input[0]);
    const rank = xs.length;
    const pads = constInts(c, n.input[1], "Pad pads") ?? attrInts(n, "pads", []);
    if (pads.some((p) => p < 0)) unsupported(n, "negative pads");
    const starts: number[] = [], ends: number[] = [], axes: number[] = [];
    for (let i = 0; i < rank; i++) {
      if (pads[i] === 0 && pads[rank + i] === 0) continue;
      if (i === 0 && !c.isStatic(n.input[0])) unsupported(n, "padding along the batch axis");
      axes.push(i);
      starts.push(pads[i]);
      ends.push(pads[i] + xs[i]);
    }
    if (!axes.length) return [c.dy(0)];
    return [c.e.op("Slice", [c.dy(0)!, c.e.constI64(starts), c.e.constI64(ends), c.e.constI64(axes)])];
  },
  ScatterElements: (c) => {
    const n = c.node;
    const axis = normAxis(attrInt(n, "axis", 0), c.shape(n.input[0]).length);
    const reduction = attrString(n, "reduction", "none");
    if (reduction !== "none" && reduction !== "add") unsupported(n, `reduction "${reduction}"`);
    const dy = c.dy(0)!;
    const dData = !c.needs(0)
      ? undefined
      : reduction === "add"
      ? dy
      : c.e.op("ScatterElements", [dy, n.input[1], c.e.zerosLike(n.input[2])], { axis });
    const dUpd = c.needs(2) ? c.e.op("GatherElements", [dy, n.input[1]], { axis }) : undefined;
    return [dData, undefined, dUpd];
  },
  GatherElements: (c) => {
    const n = c.node;
    const axis = normAxis(attrInt(n, "axis", 0), c.shape(n.input[0]).length);
    const z = c.e.zerosLike(n.input[0]);
    return [c.e.op("ScatterElements", [z, n.input[1], c.dy(0)!], { axis, reduction: "add" }), undefined];
  },
};
