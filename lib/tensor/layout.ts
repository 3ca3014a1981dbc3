/**
 * Views of a tensor's layout along one axis.
 *
 * A row-major tensor seen along `axis` is `outer x axisLength x inner`:
 * element `(o, c, i)` lives at flat index `(o * axisLength + c) * inner + i`.
 * Per-channel and per-group loops iterate this way without copying.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** The `outer x axisLength x inner` decomposition of a shape along an axis. */
export interface AxisView {
  /** The axis, normalised to `0..rank-1`. */
  readonly axis: number;
  /** Product of the dimensions before `axis`. */
  readonly outer: number;
  /** The dimension at `axis`. */
  readonly axisLength: number;
  /** Product of the dimensions after `axis`. */
  readonly inner: number;
}

/**
 * Normalise a possibly negative axis against a rank; throws `AXIS_OUT_OF_RANGE`.
 *
 * @example
 * ```ts
 * import { normalizeAxis } from "./layout.ts";
 * if (normalizeAxis(-1, 3) !== 2) throw new Error("bad");
 * ```
 */
export function normalizeAxis(axis: number, rank: number, what = "axis"): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new QuantlabError(
      "AXIS_OUT_OF_RANGE",
      `${what} ${axis} is out of range for a tensor of rank ${rank} (expected ${-rank}..${rank - 1})`,
    );
  }
  return axis < 0 ? axis + rank : axis;
}

/**
 * Decompose `shape` along `axis`.
 *
 * @example
 * ```ts
 * import { axisView } from "./layout.ts";
 * const v = axisView([2, 3, 4], 1);
 * if (v.outer !== 2 || v.axisLength !== 3 || v.inner !== 4) throw new Error("bad");
 * ```
 */
export function axisView(shape: readonly number[], axis: number): AxisView {
  const a = normalizeAxis(axis, shape.length);
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < a; i++) outer *= shape[i];
  for (let i = a + 1; i < shape.length; i++) inner *= shape[i];
  return { axis: a, outer, axisLength: shape[a], inner };
}
