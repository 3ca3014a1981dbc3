/**
 * The experiment registry: every survey comparison registers here, and
 * `deno task reproduce` runs them all in registration order.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { ProgressSink } from "../notebook/progress.ts";
import type { Report } from "./report.ts";

/** Options every experiment accepts. */
export interface ExperimentOptions {
  /** Seed of every random choice (default 0). */
  readonly seed?: number;
  /** Smaller sizes for tests (same code paths, fewer samples and epochs). Default false. */
  readonly quick?: boolean;
  /** Where progress goes (default `"auto"`). */
  readonly progress?: ProgressSink;
}

/** A registered experiment. */
export interface Experiment {
  /** Short id, e.g. `"uniform"`. */
  readonly id: string;
  /** Heading. */
  readonly title: string;
  /** The survey section it examines. */
  readonly section: string;
  /** The notebook that walks through it, relative to the repository root. */
  readonly notebook?: string;
  /** Run it. */
  run(options?: ExperimentOptions): Promise<Report>;
  /**
   * The experiment as a pure function of (config, seed) for sweeps: a JSON-serialisable result. Optional:
   * without it, {@link runTrial} runs {@link Experiment.run} with the config as options and keeps the report's
   * numbers and findings ({@link trialOfReport}).
   */
  trial?(config: TrialConfig, seed: number): Promise<Json>;
}

/** A JSON value (what a trial returns and what a config holds). */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/** An experiment's configuration for one trial: JSON values by key (e.g. `{ quick: true }`). */
export type TrialConfig = { readonly [key: string]: Json };

/** A finding as a trial keeps it. */
export interface TrialFinding {
  /** The claim. */
  readonly claim: string;
  /** Whether it held in this trial. */
  readonly holds: boolean;
  /** The claim's margin (e.g. accuracy difference), when the experiment records one. */
  readonly margin?: { readonly value: number; readonly unit: string };
}

/** What {@link trialOfReport} keeps of a report: its key numbers and findings. */
export interface ReportTrial {
  /** Experiment id. */
  readonly id: string;
  /** The report's key numbers. */
  readonly numbers: { readonly [key: string]: number };
  /** The report's findings, without their prose. */
  readonly findings: readonly TrialFinding[];
}

/**
 * The JSON-serialisable part of a report: numbers and findings (claim, verdict, margin). Non-finite numbers
 * are dropped (JSON has none).
 *
 * @example
 * ```ts
 * import { trialOfReport } from "./registry.ts";
 * import { Report } from "./report.ts";
 * const r = new Report("demo", "Demo", "c").record({ a: 1, b: NaN }).finding("x", true, "e", { value: 2, unit: "dB" });
 * const t = trialOfReport(r);
 * if (JSON.stringify(t) !== '{"id":"demo","numbers":{"a":1},"findings":[{"claim":"x","holds":true,"margin":{"value":2,"unit":"dB"}}]}') {
 *   throw new Error(JSON.stringify(t));
 * }
 * ```
 */
export function trialOfReport(report: Report): ReportTrial {
  const numbers: Record<string, number> = {};
  for (const [k, v] of Object.entries(report.numbers)) if (Number.isFinite(v)) numbers[k] = v;
  return {
    id: report.id,
    numbers,
    findings: report.findings.map((f) => ({
      claim: f.claim,
      holds: f.holds,
      ...(f.margin && Number.isFinite(f.margin.value)
        ? { margin: { value: f.margin.value, unit: f.margin.unit } }
        : {}),
    })),
  };
}

/**
 * Run experiment `id` as a pure function of (config, seed): its {@link Experiment.trial} when it has one,
 * otherwise {@link Experiment.run} with `{ ...config, seed, progress: "none" }` reduced by {@link trialOfReport}.
 *
 * @example
 * ```ts
 * import { registerExperiment, runTrial } from "./registry.ts";
 * import { Report } from "./report.ts";
 * registerExperiment({
 *   id: "doc-trial", title: "T", section: "none", run: async () => new Report("doc-trial", "T", "c"),
 *   trial: async (config, seed) => ({ twice: Number(config.x) * 2, seed }),
 * }, { replace: true });
 * const r = await runTrial("doc-trial", { x: 3 }, 7);
 * if (JSON.stringify(r) !== '{"twice":6,"seed":7}') throw new Error(JSON.stringify(r));
 * ```
 */
export async function runTrial(id: string, config: TrialConfig, seed: number): Promise<Json> {
  const e = getExperiment(id);
  if (!Number.isInteger(seed)) {
    throw new QuantlabError("INVALID_ARGUMENT", `trial seed must be an integer, got ${seed}`);
  }
  if (e.trial) return await e.trial(config, seed);
  const report = await e.run({ ...(config as ExperimentOptions), seed, progress: "none" });
  return trialOfReport(report) as unknown as Json;
}

const registry = new Map<string, Experiment>();

/**
 * Register an experiment (ids are unique; `replace` overwrites).
 *
 * @example
 * ```ts
 * import { registerExperiment, getExperiment } from "./registry.ts";
 * import { Report } from "./report.ts";
 * registerExperiment({ id: "doc-demo", title: "Demo", section: "none", run: async () => new Report("doc-demo", "Demo", "c") });
 * if (getExperiment("doc-demo").title !== "Demo") throw new Error("bad");
 * ```
 */
export function registerExperiment(e: Experiment, options: { replace?: boolean } = {}): void {
  if (!e || typeof e.id !== "string" || !/^[a-z0-9][a-z0-9_-]*$/.test(e.id) || typeof e.run !== "function") {
    throw new QuantlabError("INVALID_ARGUMENT", "an experiment needs an id of [a-z0-9_-] and a run() function");
  }
  if (registry.has(e.id) && !options.replace) {
    throw new QuantlabError("INVALID_ARGUMENT", `experiment "${e.id}" is already registered`);
  }
  registry.set(e.id, e);
}

/**
 * All registered experiments, in registration order.
 *
 * @example
 * ```ts
 * import { listExperiments } from "./registry.ts";
 * if (!Array.isArray(listExperiments())) throw new Error("bad");
 * ```
 */
export function listExperiments(): Experiment[] {
  return [...registry.values()];
}

/**
 * The experiment registered under `id`; throws `INVALID_ARGUMENT` naming the known ids.
 *
 * @example
 * ```ts
 * import { getExperiment } from "./registry.ts";
 * try { getExperiment("nope"); throw new Error("no throw"); } catch (e) {
 *   if (!(e as Error).message.includes("nope")) throw e;
 * }
 * ```
 */
export function getExperiment(id: string): Experiment {
  const e = registry.get(id);
  if (!e) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `no experiment "${id}"; registered: ${[...registry.keys()].join(", ") || "none"}`,
    );
  }
  return e;
}
