/**
 * The quantization plan: an explicit, inspectable value that says, for every tensor of a float ONNX graph that
 * is to be quantized, its role, its quantizer, its axis, the tensor whose parameters it shares and its bits.
 * A policy builds it (policy.ts); passes and materialization read it; a user can print it, edit it (mixed
 * precision is nothing but a plan whose bits differ per node), save it as JSON and load it back.
 *
 * Roles:
 * - `input`: a graph input (the network input);
 * - `activation`: an intermediate value (static, per-tensor, calibrated);
 * - `output`: a graph output (e.g. the logits);
 * - `constant`: a float initializer used as an operand of Add/Mul (quantized from its own values);
 * - `weight`: the weight of a Conv/Gemm/MatMul (any {@link WeightQuantizer});
 * - `bias`: the bias of a Conv/Gemm, stored as int32 with scale `input scale * weight scale` when both the
 *   input and the weight are uniform affine (integer kernels need exactly that), float otherwise.
 *
 * An activation entry with `sharesWith` reuses that tensor's parameters (data-movement ops such as MaxPool and
 * Flatten commute exactly with quantization); it has no observer of its own.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { QuantizerBuilder } from "../quant/quantizer.ts";
import type { WeightQuantizer, WeightQuantizerRecipe } from "../quant/weight_quantizer.ts";

/** What a planned tensor is. */
export type PlanRole = "input" | "activation" | "output" | "constant" | "weight" | "bias";

/** A planned activation-like tensor (graph input, intermediate value, graph output, Add/Mul constant). */
export interface ActivationEntry {
  /** Discriminant. */
  readonly kind: "activation";
  /** The tensor's name in the float graph. */
  readonly tensor: string;
  /** Role (never `weight` or `bias`). */
  readonly role: "input" | "activation" | "output" | "constant";
  /** The node that produces it (its name, or `Op#index` when unnamed); `undefined` for inputs and constants. */
  readonly producer: string | undefined;
  /** The producing op type (`""` for inputs and constants). */
  readonly opType: string;
  /** Static per-tensor uniform quantizer whose calibrator observes this tensor. */
  readonly quantizer: QuantizerBuilder;
  /** Bits of the grid. */
  readonly bits: number;
  /** The tensor whose parameters this one reuses (no observer of its own), if any. */
  readonly sharesWith?: string;
}

/** A planned weight tensor. */
export interface WeightEntry {
  /** Discriminant. */
  readonly kind: "weight";
  /** The initializer's name in the float graph. */
  readonly tensor: string;
  /** Always `weight`. */
  readonly role: "weight";
  /** The node that consumes it as its weight. */
  readonly node: string;
  /** That node's op type. */
  readonly opType: string;
  /** The output-channel axis of the weight. */
  readonly axis: number;
  /** Any weight quantizer (uniform, non-uniform, binary, ternary, k-means, product). */
  readonly quantizer: WeightQuantizer;
  /** Nominal bits per weight. */
  readonly bits: number;
}

/** A planned bias tensor. */
export interface BiasEntry {
  /** Discriminant. */
  readonly kind: "bias";
  /** The initializer's name in the float graph. */
  readonly tensor: string;
  /** Always `bias`. */
  readonly role: "bias";
  /** The node that consumes it. */
  readonly node: string;
  /** The weight tensor of the same node. */
  readonly weight: string;
  /** The activation tensor feeding the node (whose scale times the weight scale is the bias scale). */
  readonly input: string;
  /** Always 32: biases are int32. */
  readonly bits: 32;
}

/** One planned tensor. */
export type PlanEntry = ActivationEntry | WeightEntry | BiasEntry;

/** JSON form of a plan entry: quantizers as recipes. */
export type PlanEntryJson =
  | (Omit<ActivationEntry, "quantizer"> & { readonly quantizer: WeightQuantizerRecipe })
  | (Omit<WeightEntry, "quantizer"> & { readonly quantizer: WeightQuantizerRecipe })
  | BiasEntry;

/** JSON form of a plan. */
export interface QuantPlanJson {
  /** Format tag. */
  readonly format: "quantlab.plan";
  /** Format version. */
  readonly version: 1;
  /** Source model named in messages. */
  readonly model: string;
  /** The policy that made it, in words. */
  readonly policy: string;
  /** The entries in graph order. */
  readonly entries: readonly PlanEntryJson[];
}

/** Rebuilds quantizers from recipes (lib/ptq/recipes.ts provides the registry). */
export interface RecipeResolver {
  /** A weight quantizer (any family) from its recipe. */
  weight(recipe: WeightQuantizerRecipe): WeightQuantizer;
  /** A uniform activation quantizer from its recipe. */
  activation(recipe: WeightQuantizerRecipe): QuantizerBuilder;
}

function describeQuantizer(q: { toString(): string }): string {
  return q.toString().replace(/^quantizer\(/, "").replace(/\)$/, "");
}

/**
 * An immutable quantization plan (see the module doc).
 *
 * @example
 * ```ts
 * import { QuantPlan } from "./plan.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const plan = new QuantPlan([
 *   { kind: "activation", tensor: "x", role: "input", producer: undefined, opType: "", quantizer: quantizer().uint(8).asymmetric(), bits: 8 },
 * ], { model: "toy", policy: "by hand" });
 * if (plan.get("x")?.bits !== 8 || !plan.toString().includes("x")) throw new Error(plan.toString());
 * ```
 */
export class QuantPlan {
  /** Entries in graph order. */
  readonly entries: readonly PlanEntry[];
  /** Source model named in messages. */
  readonly model: string;
  /** The policy that made it, in words. */
  readonly policy: string;
  #byTensor: Map<string, PlanEntry>;

  /** Make a plan from entries (validated: unique tensors, shared tensors exist, bits in range). */
  constructor(entries: readonly PlanEntry[], meta: { model?: string; policy?: string } = {}) {
    this.model = meta.model ?? "model";
    this.policy = meta.policy ?? "custom";
    this.#byTensor = new Map();
    for (const e of entries) {
      if (this.#byTensor.has(e.tensor)) {
        throw new QuantlabError("INVALID_ARGUMENT", `plan for ${this.model}: tensor "${e.tensor}" is planned twice`);
      }
      if (!(Number.isFinite(e.bits) && e.bits > 0 && e.bits <= 32)) {
        throw new QuantlabError("BITS_OUT_OF_RANGE", `plan for ${this.model}: tensor "${e.tensor}" has ${e.bits} bits`);
      }
      this.#byTensor.set(e.tensor, e);
    }
    for (const e of entries) {
      if (e.kind === "activation" && e.sharesWith !== undefined) {
        const src = this.#byTensor.get(e.sharesWith);
        if (!src || src.kind !== "activation" || src.sharesWith !== undefined) {
          throw new QuantlabError(
            "INVALID_ARGUMENT",
            `plan for ${this.model}: "${e.tensor}" shares parameters with "${e.sharesWith}", which is not an observed activation`,
          );
        }
      }
      if (e.kind === "bias") {
        if (this.#byTensor.get(e.weight)?.kind !== "weight" || this.#byTensor.get(e.input)?.kind !== "activation") {
          throw new QuantlabError(
            "INVALID_ARGUMENT",
            `plan for ${this.model}: int32 bias "${e.tensor}" needs its weight "${e.weight}" and input "${e.input}" planned`,
          );
        }
      }
    }
    this.entries = Object.freeze([...entries]);
  }

  /** The entry of a tensor, if planned. */
  get(tensor: string): PlanEntry | undefined {
    return this.#byTensor.get(tensor);
  }

  /** Whether a tensor is planned. */
  has(tensor: string): boolean {
    return this.#byTensor.has(tensor);
  }

  /** Weight entries in graph order. */
  get weights(): WeightEntry[] {
    return this.entries.filter((e): e is WeightEntry => e.kind === "weight");
  }

  /** Activation entries (inputs, activations, outputs, constants) in graph order. */
  get activations(): ActivationEntry[] {
    return this.entries.filter((e): e is ActivationEntry => e.kind === "activation");
  }

  /** Bias entries in graph order. */
  get biases(): BiasEntry[] {
    return this.entries.filter((e): e is BiasEntry => e.kind === "bias");
  }

  /** Activation tensors that get an observer of their own (not constants, not shared), in graph order. */
  get observed(): string[] {
    return this.activations.filter((e) => e.role !== "constant" && e.sharesWith === undefined).map((e) => e.tensor);
  }

  /**
   * A new plan with some entries replaced or removed (`null` removes; a removed weight's int32 bias entry goes
   * too, as do activations sharing a removed one).
   */
  with(changes: Readonly<Record<string, PlanEntry | null>>): QuantPlan {
    const removed = new Set(Object.entries(changes).filter(([, v]) => v === null).map(([k]) => k));
    for (const t of Object.keys(changes)) {
      if (!this.#byTensor.has(t) && changes[t] === null) {
        throw new QuantlabError("INVALID_ARGUMENT", `plan for ${this.model}: no entry for tensor "${t}" to remove`);
      }
    }
    const out: PlanEntry[] = [];
    for (const e of this.entries) {
      if (removed.has(e.tensor)) continue;
      if (e.kind === "bias" && (removed.has(e.weight) || removed.has(e.input))) continue;
      if (e.kind === "activation" && e.sharesWith && removed.has(e.sharesWith)) continue;
      const c = changes[e.tensor];
      out.push(c ?? e);
    }
    for (const [t, e] of Object.entries(changes)) if (e && !this.#byTensor.has(t)) out.push(e);
    return new QuantPlan(out, { model: this.model, policy: `${this.policy} + edits` });
  }

  /** Nominal bits of every planned weight by node (what mixed-precision searches change). */
  weightBits(): Record<string, number> {
    const r: Record<string, number> = {};
    for (const w of this.weights) r[w.node] = w.bits;
    return r;
  }

  /** The JSON form (quantizers as recipes). */
  toJSON(): QuantPlanJson {
    return {
      format: "quantlab.plan",
      version: 1,
      model: this.model,
      policy: this.policy,
      entries: this.entries.map((e) => e.kind === "bias" ? { ...e } : { ...e, quantizer: e.quantizer.toRecipe() }),
    };
  }

  /** Rebuild a plan from its JSON form (use `planFromJson` in recipes.ts for the registry of quantlab's quantizers). */
  static fromJSON(json: QuantPlanJson, resolve: RecipeResolver): QuantPlan {
    if (!json || json.format !== "quantlab.plan" || json.version !== 1 || !Array.isArray(json.entries)) {
      throw new QuantlabError("INVALID_ARGUMENT", "not a quantlab plan (format quantlab.plan, version 1)");
    }
    const entries = json.entries.map((e): PlanEntry => {
      if (e.kind === "bias") return { ...e, bits: 32 };
      if (e.kind === "weight") return { ...e, quantizer: resolve.weight(e.quantizer) };
      if (e.kind === "activation") return { ...e, quantizer: resolve.activation(e.quantizer) };
      throw new QuantlabError("INVALID_ARGUMENT", `plan entry of unknown kind: ${JSON.stringify(e).slice(0, 80)}`);
    });
    return new QuantPlan(entries, { model: json.model, policy: json.policy });
  }

  /** Rows for tables: tensor, role, node, bits, quantizer, axis, shares. */
  rows(): { tensor: string; role: PlanRole; node: string; bits: number; quantizer: string; axis: string }[] {
    return this.entries.map((e) => ({
      tensor: e.tensor,
      role: e.role,
      node: e.kind === "activation" ? (e.producer ?? "") : e.node,
      bits: e.bits,
      quantizer: e.kind === "bias"
        ? `int32, scale = s(${e.input}) * s(${e.weight})`
        : e.kind === "activation" && e.sharesWith
        ? `shares ${e.sharesWith}`
        : describeQuantizer(e.quantizer),
      axis: e.kind === "weight" ? String(e.axis) : "",
    }));
  }

  /** A readable table. */
  toString(): string {
    const rows = this.rows();
    const head = ["tensor", "role", "node", "bits", "axis", "quantizer"] as const;
    const cells = rows.map((r) => [r.tensor, r.role, r.node, String(r.bits), r.axis, r.quantizer]);
    const width = head.map((h, k) => Math.min(48, Math.max(h.length, ...cells.map((c) => c[k].length))));
    const fmt = (c: readonly string[]) =>
      c.map((
        v,
        k,
      ) => (k === c.length - 1 ? v : v.length > width[k] ? v.slice(0, width[k] - 1) + "…" : v.padEnd(width[k])))
        .join("  ");
    const counts = { weight: 0, activation: 0, bias: 0 };
    for (const e of this.entries) counts[e.kind]++;
    return [
      `QuantPlan(${this.model}; ${this.policy}): ${counts.weight} weights, ${counts.activation} activations, ${counts.bias} int32 biases`,
      fmt(head),
      ...cells.map(fmt),
    ].join("\n");
  }

  /** Jupyter display: an HTML table plus the text form. */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const head = ["tensor", "role", "node", "bits", "axis", "quantizer"];
    const body = this.rows().map((r) =>
      `<tr>${
        [r.tensor, r.role, r.node, String(r.bits), r.axis, r.quantizer].map((c) => `<td>${esc(c)}</td>`).join("")
      }</tr>`
    ).join("");
    return {
      "text/html": `<p><b>QuantPlan</b> (${esc(this.model)}; ${esc(this.policy)})</p><table><thead><tr>${
        head.map((h) => `<th>${h}</th>`).join("")
      }</tr></thead><tbody>${body}</tbody></table>`,
      "text/plain": this.toString(),
    };
  }
}
