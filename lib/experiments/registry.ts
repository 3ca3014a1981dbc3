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
