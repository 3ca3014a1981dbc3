/**
 * Grids: an experiment's config keys crossed with seeds, as written in a
 * `GRID.json` for `deno task sweep`.
 *
 * ```json
 * { "experiment": "zero-shot", "config": { "quick": true }, "seeds": 5 }
 * { "sweeps": [ { "experiment": "calibration", "config": { "quick": [true, false] }, "seeds": [0, 1, 2] } ],
 *   "modules": ["./my_experiments.ts"] }
 * ```
 *
 * A config value that is an array is an axis (every element is tried); any
 * other value is fixed. An array-valued setting is written as an array of
 * arrays (`{ "bits": [[4, 8]] }` is one value `[4, 8]`). `seeds` is a count
 * `n` (seeds `0..n-1`) or a list. `modules` are imported by every worker
 * before it runs (they register experiments beyond the built-in ones).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { Json, TrialConfig } from "../experiments/registry.ts";
import { type SweepItem, sweepItem } from "./item.ts";

/** One experiment's grid. */
export interface GridSpec {
  /** Registered experiment id. */
  readonly experiment: string;
  /** Config keys: arrays are axes, other values fixed (default `{}`). */
  readonly config?: { readonly [key: string]: Json };
  /** Seed count (`0..n-1`) or explicit seeds (default 1: seed 0). */
  readonly seeds?: number | readonly number[];
}

/** A `GRID.json`: one grid, or several under `sweeps`, plus modules that register experiments. */
export type GridFile = (GridSpec | { readonly sweeps: readonly GridSpec[] }) & {
  /** Modules every worker imports first (paths relative to the grid file, or URLs). */
  readonly modules?: readonly string[];
};

/**
 * The configs of a grid's config (the cartesian product of its axes, in key order).
 *
 * @example
 * ```ts
 * import { expandConfig } from "./grid.ts";
 * const c = expandConfig({ quick: true, bits: [4, 8], mode: ["a", "b"] });
 * if (c.length !== 4 || JSON.stringify(c[1]) !== '{"quick":true,"bits":4,"mode":"b"}') throw new Error(JSON.stringify(c));
 * ```
 */
export function expandConfig(config: { readonly [key: string]: Json } = {}): TrialConfig[] {
  let out: Record<string, Json>[] = [{}];
  for (const [k, v] of Object.entries(config)) {
    const values = Array.isArray(v) ? v as readonly Json[] : [v];
    if (values.length === 0) throw new QuantlabError("INVALID_ARGUMENT", `grid config "${k}" has no values`);
    out = out.flatMap((c) => values.map((x) => ({ ...c, [k]: x })));
  }
  return out;
}

/**
 * The seeds of a grid.
 *
 * @example
 * ```ts
 * import { seedsOf } from "./grid.ts";
 * if (seedsOf(3).join() !== "0,1,2" || seedsOf([5, 7]).join() !== "5,7" || seedsOf(undefined).join() !== "0") {
 *   throw new Error("bad");
 * }
 * ```
 */
export function seedsOf(seeds: number | readonly number[] | undefined): number[] {
  const list = seeds === undefined
    ? [0]
    : typeof seeds === "number"
    ? (Number.isInteger(seeds) && seeds > 0 ? Array.from({ length: seeds }, (_, i) => i) : [NaN])
    : [...seeds];
  if (list.length === 0 || list.some((s) => !Number.isSafeInteger(s) || s < 0)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `grid seeds must be a positive count or non-negative integers, got ${seeds}`,
    );
  }
  return list;
}

/**
 * Every item of a grid file (config x seeds per grid), deduplicated by hash, in order.
 *
 * @example
 * ```ts
 * import { expandGrid } from "./grid.ts";
 * const items = await expandGrid({ experiment: "uniform", config: { quick: true, bits: [4, 8] }, seeds: 2 });
 * if (items.length !== 4 || new Set(items.map((i) => i.hash)).size !== 4) throw new Error("bad");
 * ```
 */
export async function expandGrid(file: GridFile, version?: string): Promise<SweepItem[]> {
  const grids = "sweeps" in file ? file.sweeps : [file as GridSpec];
  if (!Array.isArray(grids) || grids.length === 0) throw new QuantlabError("INVALID_ARGUMENT", "grid: no sweeps");
  const seen = new Set<string>();
  const items: SweepItem[] = [];
  for (const g of grids) {
    if (!g || typeof g.experiment !== "string") {
      throw new QuantlabError("INVALID_ARGUMENT", `grid: every sweep needs an "experiment" id`);
    }
    for (const config of expandConfig(g.config)) {
      for (const seed of seedsOf(g.seeds)) {
        const item = await sweepItem(g.experiment, config, seed, version);
        if (!seen.has(item.hash)) {
          seen.add(item.hash);
          items.push(item);
        }
      }
    }
  }
  return items;
}
