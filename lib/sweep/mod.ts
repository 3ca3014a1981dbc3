/**
 * Sweeps: experiments as pure functions of (config, seed) expanded over grids and seeds, run on a local pool of
 * worker processes or on BullMQ/Redis workers across machines, results in a resumable JSON-lines store keyed by
 * a content hash.
 *
 * @module
 */
export * from "./backend.ts";
export * from "./bullmq.ts";
export * from "./grid.ts";
export * from "./item.ts";
export * from "./local.ts";
export * from "./store.ts";
export { executeItem, loadExperimentModules } from "./execute.ts";
export type { Json, TrialConfig } from "../experiments/registry.ts";
export type { ProgressSink } from "../notebook/progress.ts";
