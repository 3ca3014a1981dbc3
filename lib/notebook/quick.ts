/**
 * Whether a notebook should run its quick preset: the notebooks test sets `QUANTLAB_NOTEBOOK_QUICK=1` so that
 * notebooks whose full runs train for minutes stay inside CI's budget, while `deno task notebooks` (which writes
 * the committed outputs) runs them in full.
 *
 * @module
 */

/**
 * True when the environment asks notebooks for their quick preset (`QUANTLAB_NOTEBOOK_QUICK=1`); false when the
 * variable is unset or environment access is not granted.
 *
 * @example
 * ```ts
 * import { notebookQuick } from "./quick.ts";
 * const quick: boolean = notebookQuick();
 * if (typeof quick !== "boolean") throw new Error("bad");
 * ```
 */
export function notebookQuick(): boolean {
  try {
    return Deno.env.get("QUANTLAB_NOTEBOOK_QUICK") === "1";
  } catch {
    return false;
  }
}
