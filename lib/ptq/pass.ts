/**
 * The pass contract: post-training quantization is an ordered list of passes over one immutable state.
 *
 * A pass is a small module with one entry (`foldBatchNorm()`, `equalize()`, `calibrate()`, `biasCorrection()`,
 * and the methods still to come: AdaRound, OCS, ...). It declares its stage:
 * - `graph`: rewrites the float graph before the plan is made (BN folding, cross-layer equalization);
 * - `calibrate`: fills activation parameters (after the plan is made);
 * - `calibrated`: everything that needs calibrated activations (bias correction, learned rounding).
 * The pipeline runs graph passes, builds the plan from the policy, runs the calibration pass (the default one if
 * none was given), then the rest, in the order given within each stage. A pass returns a new state; it never
 * mutates the one it was given.
 *
 * New passes register in {@link PTQ_PASSES} (name -> factory) the way gradient rules register in
 * `GRADIENT_RULES`, so a pipeline can also be described by names and options (JSON).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { InputReader } from "../data/reader.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import type { QuantParams } from "../quant/params.ts";
import type { FittedWeights } from "../quant/weight_quantizer.ts";
import type { QuantPlan } from "./plan.ts";

/** What one pass did, for reports and logs. */
export interface PassRecord {
  /** Pass name. */
  readonly pass: string;
  /** Wall time, seconds. */
  readonly seconds: number;
  /** One line of what it did. */
  readonly summary: string;
  /** Pass-specific details (JSON-safe). */
  readonly details?: unknown;
}

/** The state passes transform. */
export interface PtqState {
  /** The float model as given by the user (never modified). */
  readonly source: OnnxModel;
  /** The current float model (graph passes and bias correction produce new ones). */
  readonly model: OnnxModel;
  /** The plan (set after the graph stage). */
  readonly plan: QuantPlan | undefined;
  /** Calibrated parameters of each observed activation (and each Add/Mul constant). */
  readonly activationParams: ReadonlyMap<string, QuantParams>;
  /** Weight quantizers fitted by a pass (e.g. learned rounding keeps its own); others are fitted at materialization. */
  readonly weightFits: ReadonlyMap<string, FittedWeights>;
  /** Weight values that replace the float weights before quantization (e.g. AdaRound's rounded weights). */
  readonly weightValues: ReadonlyMap<string, Float32Array>;
  /** What each pass did, in order. */
  readonly records: readonly PassRecord[];
}

/** What a pass may use besides the state. */
export interface PassContext {
  /** Calibration data (unlabelled model inputs). */
  readonly data: InputReader | undefined;
  /** How many examples of `data` calibration uses (undefined: all). */
  readonly count: number | undefined;
  /** ORT options. */
  readonly session: SessionOptions;
  /** Progress: a message and, when known, the fraction done. */
  readonly progress: (message: string, fraction?: number) => void;
}

/** A stage of the pass list. */
export type PassStage = "graph" | "calibrate" | "calibrated";

/** One post-training quantization pass. */
export interface PtqPass {
  /** Name (also its key in {@link PTQ_PASSES}). */
  readonly name: string;
  /** When it runs (see the module doc). */
  readonly stage: PassStage;
  /** Transform the state (return a new one). */
  run(state: PtqState, ctx: PassContext): Promise<PtqState>;
  /** The pass and its options in words. */
  toString(): string;
}

/**
 * A fresh state for a model: no plan, no parameters.
 *
 * @example
 * ```ts
 * import { initialState } from "./pass.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const s = initialState(new OnnxModel(emptyModel(13)));
 * if (s.plan !== undefined || s.records.length !== 0) throw new Error("bad");
 * ```
 */
export function initialState(model: OnnxModel): PtqState {
  return {
    source: model,
    model,
    plan: undefined,
    activationParams: new Map(),
    weightFits: new Map(),
    weightValues: new Map(),
    records: [],
  };
}

/**
 * A copy of a state with some fields replaced and a record appended.
 *
 * @example
 * ```ts
 * import { initialState, nextState } from "./pass.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const s = nextState(initialState(new OnnxModel(emptyModel(13))), {}, { pass: "noop", seconds: 0, summary: "nothing" });
 * if (s.records[0].pass !== "noop") throw new Error("bad");
 * ```
 */
export function nextState(state: PtqState, patch: Partial<Omit<PtqState, "records">>, record?: PassRecord): PtqState {
  return { ...state, ...patch, records: record ? [...state.records, record] : state.records };
}

/** Factories of the registered passes by name (JSON options in, pass out). */
export const PTQ_PASSES: Record<string, (options?: Record<string, unknown>) => PtqPass> = {};

/**
 * Register a pass factory under its name (later registrations replace earlier ones).
 *
 * @example
 * ```ts
 * import { PTQ_PASSES, registerPass } from "./pass.ts";
 * registerPass("noop", () => ({ name: "noop", stage: "calibrated", run: (s) => Promise.resolve(s), toString: () => "noop" }));
 * if (PTQ_PASSES.noop().name !== "noop") throw new Error("bad");
 * ```
 */
export function registerPass(name: string, factory: (options?: Record<string, unknown>) => PtqPass): void {
  if (!/^[A-Za-z][\w-]*$/.test(name)) {
    throw new QuantlabError("INVALID_ARGUMENT", `pass name must be an identifier, got "${name}"`);
  }
  PTQ_PASSES[name] = factory;
}

/**
 * Run a function as a pass step: time it and record its summary.
 *
 * @example
 * ```ts
 * import { initialState, timedPass } from "./pass.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const s = await timedPass("noop", initialState(new OnnxModel(emptyModel(13))), () => Promise.resolve({ patch: {}, summary: "ok" }));
 * if (s.records[0].summary !== "ok") throw new Error("bad");
 * ```
 */
export async function timedPass(
  name: string,
  state: PtqState,
  body: () => Promise<{ patch: Partial<Omit<PtqState, "records">>; summary: string; details?: unknown }>,
): Promise<PtqState> {
  const t0 = performance.now();
  const r = await body();
  return nextState(state, r.patch, {
    pass: name,
    seconds: (performance.now() - t0) / 1000,
    summary: r.summary,
    details: r.details,
  });
}
