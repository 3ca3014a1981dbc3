/**
 * Running one item where a worker is: import the modules that register
 * experiments, check the item's version and hash, run the trial.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { listExperiments, runTrial } from "../experiments/registry.ts";
import { QUANTLAB_VERSION, type ResultRecord, type SweepItem, sweepItem } from "./item.ts";

/**
 * Import `modules` (paths resolved against the working directory, or URLs) that register experiments. The
 * built-in experiments load on first use of one of them (see {@link executeItem}).
 *
 * @example
 * ```ts
 * import { loadExperimentModules } from "./execute.ts";
 * await loadExperimentModules([]);
 * ```
 */
export async function loadExperimentModules(modules: readonly string[]): Promise<void> {
  for (const m of modules) {
    const url = /^[a-z][a-z0-9+.-]*:/i.test(m) ? m : new URL(m, `file://${Deno.cwd()}/`).href;
    await import(url);
  }
}

/** `host:pid` of this process. */
export function workerName(): string {
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys */ }
  return `${host}:${Deno.pid}`;
}

/**
 * Run one item (importing the built-in experiments first when its experiment is not registered yet):
 * refuses an item from another quantlab version or whose hash
 * does not match its fields (`INVALID_ARGUMENT`), then runs the trial.
 *
 * @example
 * ```ts
 * import { executeItem } from "./execute.ts";
 * import { sweepItem } from "./item.ts";
 * import { registerExperiment } from "../experiments/registry.ts";
 * import { Report } from "../experiments/report.ts";
 * registerExperiment({ id: "doc-exec", title: "d", section: "none", run: async () => new Report("doc-exec", "d", "c"),
 *   trial: async (_c, seed) => seed + 1 }, { replace: true });
 * const r = await executeItem(await sweepItem("doc-exec", {}, 4));
 * if (r.result !== 5) throw new Error("bad");
 * ```
 */
export async function executeItem(item: SweepItem): Promise<ResultRecord> {
  if (item.version !== QUANTLAB_VERSION) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `item ${item.hash.slice(0, 12)} is for quantlab ${item.version}; this worker runs ${QUANTLAB_VERSION}`,
    );
  }
  const check = await sweepItem(item.experiment, item.config, item.seed, item.version);
  if (check.hash !== item.hash) {
    throw new QuantlabError("INVALID_ARGUMENT", `item ${item.hash.slice(0, 12)}: hash does not match its fields`);
  }
  if (!listExperiments().some((e) => e.id === item.experiment)) {
    // A variable specifier: Deno would otherwise load every experiment's module graph at worker startup.
    const catalog = new URL("../experiments/catalog.ts", import.meta.url).href;
    await import(catalog);
  }
  const t0 = performance.now();
  const result = await runTrial(item.experiment, item.config, item.seed);
  const seconds = (performance.now() - t0) / 1000;
  return {
    hash: item.hash,
    experiment: item.experiment,
    config: item.config,
    seed: item.seed,
    version: item.version,
    result: JSON.parse(JSON.stringify(result)),
    seconds,
    worker: workerName(),
    finishedAt: new Date().toISOString(),
  };
}
