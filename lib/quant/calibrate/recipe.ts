/**
 * Calibrators from their JSON recipes: `calibratorFromRecipe(c.toRecipe())` rebuilds an equal calibrator (same
 * name, settings and `toString()`), so quantizer recipes that hold a calibrator round-trip through JSON.
 *
 * @module
 */
import { QuantlabError } from "../../errors.ts";
import { aciq, type AciqOptions } from "./aciq.ts";
import { entropy, type EntropyOptions } from "./entropy.ts";
import { minMax } from "./min_max.ts";
import { movingAverage, type MovingAverageOptions } from "./moving_average.ts";
import { mse, type MseOptions } from "./mse.ts";
import type { Calibrator, CalibratorRecipe } from "./observer.ts";
import { percentile, type PercentileOptions } from "./percentile.ts";

/** The calibrator factories by recipe name (the names the calibrators report). */
const FACTORIES: Readonly<Record<string, (options: Record<string, unknown>) => Calibrator>> = Object.freeze({
  minmax: () => minMax(),
  movingaverage: (o) => movingAverage(o as MovingAverageOptions),
  percentile: (o) => percentile(o as PercentileOptions),
  entropy: (o) => entropy(o as EntropyOptions),
  mse: (o) => mse(o as MseOptions),
  aciq: (o) => aciq(o as AciqOptions),
});

/**
 * Rebuild a calibrator from its recipe (`{ name, options }`, as `toRecipe()` writes it). Throws
 * `INVALID_ARGUMENT` for an unknown name or a malformed recipe, and whatever the factory throws for bad options.
 *
 * @example
 * ```ts
 * import { calibratorFromRecipe } from "./recipe.ts";
 * import { percentile } from "./percentile.ts";
 * const p = percentile({ percentile: 99.9 });
 * const back = calibratorFromRecipe(JSON.parse(JSON.stringify(p.toRecipe!())));
 * if (back.toString() !== p.toString()) throw new Error(back.toString());
 * ```
 */
export function calibratorFromRecipe(recipe: CalibratorRecipe): Calibrator {
  const r = recipe as Partial<CalibratorRecipe> | null;
  if (typeof r !== "object" || r === null || typeof r.name !== "string") {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `a calibrator recipe is { name, options }, got ${JSON.stringify(recipe)?.slice(0, 120)}`,
    );
  }
  const make = Object.hasOwn(FACTORIES, r.name) ? FACTORIES[r.name] : undefined;
  if (!make) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `unknown calibrator "${r.name}" in a recipe; known: ${Object.keys(FACTORIES).join(", ")}`,
    );
  }
  const options = r.options ?? {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new QuantlabError("INVALID_ARGUMENT", `calibrator "${r.name}": recipe options must be an object`);
  }
  return make({ ...options });
}

/**
 * A calibrator's recipe, or an `UNSUPPORTED` error naming it when it has none (a hand-made calibrator).
 *
 * @example
 * ```ts
 * import { calibratorRecipe } from "./recipe.ts";
 * import { mse } from "./mse.ts";
 * if (calibratorRecipe(mse()).options.grid !== 100) throw new Error("bad");
 * ```
 */
export function calibratorRecipe(c: Calibrator): CalibratorRecipe {
  if (typeof c.toRecipe !== "function") {
    throw new QuantlabError(
      "UNSUPPORTED",
      `calibrator ${c.toString()} has no toRecipe(): give it one ({ name, options }) to write it into a recipe`,
    );
  }
  return c.toRecipe();
}
