/**
 * The registry of weight-quantizer recipes: `kind` -> a function rebuilding the quantizer from its JSON recipe,
 * for every family quantlab ships (uniform, non-uniform, binary, ternary, k-means, product). Plans saved as JSON
 * come back through {@link planFromJson}; a new family registers with {@link registerWeightRecipe}.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { binaryFromRecipe } from "../extreme/binary.ts";
import { ternaryFromRecipe } from "../extreme/ternary.ts";
import { nonUniformFromRecipe } from "../nonuniform/nonuniform_quantizer.ts";
import { QuantizerBuilder, uniformFromRecipe } from "../quant/quantizer.ts";
import type { WeightQuantizer, WeightQuantizerRecipe } from "../quant/weight_quantizer.ts";
import { kmeansFromRecipe } from "../vq/kmeans.ts";
import { productFromRecipe } from "../vq/product_quantizer.ts";
import { QuantPlan, type QuantPlanJson } from "./plan.ts";

/** Rebuilders by family. */
export const WEIGHT_RECIPES: Record<string, (recipe: WeightQuantizerRecipe) => WeightQuantizer> = {
  uniform: uniformFromRecipe,
  nonuniform: nonUniformFromRecipe,
  binary: binaryFromRecipe,
  ternary: ternaryFromRecipe,
  kmeans: kmeansFromRecipe,
  product: productFromRecipe,
};

/**
 * Register (or replace) the rebuilder of a weight-quantizer family.
 *
 * @example
 * ```ts
 * import { registerWeightRecipe, WEIGHT_RECIPES } from "./recipes.ts";
 * registerWeightRecipe("uniform", WEIGHT_RECIPES.uniform);
 * if (typeof WEIGHT_RECIPES.uniform !== "function") throw new Error("bad");
 * ```
 */
export function registerWeightRecipe(kind: string, build: (recipe: WeightQuantizerRecipe) => WeightQuantizer): void {
  WEIGHT_RECIPES[kind] = build;
}

/**
 * A weight quantizer from its recipe (typed error for an unknown family).
 *
 * @example
 * ```ts
 * import { weightQuantizerFromRecipe } from "./recipes.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const q = quantizer().int(4).symmetric().perChannel();
 * if (weightQuantizerFromRecipe(JSON.parse(JSON.stringify(q.toRecipe()))).toString() !== q.toString()) throw new Error("bad");
 * ```
 */
export function weightQuantizerFromRecipe(recipe: WeightQuantizerRecipe): WeightQuantizer {
  const build = recipe && typeof recipe === "object" ? WEIGHT_RECIPES[recipe.kind] : undefined;
  if (!build) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `unknown weight-quantizer family ${JSON.stringify(recipe?.kind)}; known: ${
        Object.keys(WEIGHT_RECIPES).join(", ")
      }`,
    );
  }
  return build(recipe);
}

/**
 * A plan from its JSON form (`JSON.parse(JSON.stringify(plan))`), quantizers rebuilt through the registry.
 *
 * @example
 * ```ts
 * import { planFromJson } from "./recipes.ts";
 * import { QuantPlan } from "./plan.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const plan = new QuantPlan([{ kind: "activation", tensor: "x", role: "input", producer: undefined, opType: "",
 *   quantizer: quantizer().uint(8).asymmetric(), bits: 8 }]);
 * if (planFromJson(JSON.parse(JSON.stringify(plan))).toString() !== plan.toString()) throw new Error("bad");
 * ```
 */
export function planFromJson(json: QuantPlanJson): QuantPlan {
  return QuantPlan.fromJSON(json, {
    weight: weightQuantizerFromRecipe,
    activation: (r) => {
      const q = weightQuantizerFromRecipe(r);
      if (!(q instanceof QuantizerBuilder)) {
        throw new QuantlabError("INVALID_ARGUMENT", `activation quantizers are uniform, got a ${r.kind} recipe`);
      }
      return q;
    },
  });
}
