/**
 * `deno task sweep`: run a grid of (experiment, config, seed) trials on a local
 * pool of worker processes or on BullMQ workers through Redis, storing each
 * result once in a JSON-lines store (reruns skip what is stored).
 *
 * Usage:
 *   deno task sweep GRID.json [--store DIR] [--workers N] [--retries N]
 *   deno task sweep GRID.json --redis redis://HOST:6379 [--queue NAME] [--attempts N] [--store DIR]
 *   deno task sweep --worker --redis redis://HOST:6379 [--queue NAME] [--concurrency N] [--lock-ms MS]
 *                   [--module SPEC]...
 *
 * The store defaults to `sweeps/<grid file name without .json>/`. The last
 * lines printed summarise every (experiment, config) across its seeds: each
 * claim's verdict count and margin as mean ± 95 % t-interval.
 *
 * @module
 */
import { QuantlabError } from "../lib/errors.ts";
import type { ReportTrial } from "../lib/experiments/registry.ts";
import { seedVerdicts } from "../lib/experiments/seed_stats.ts";
import { seedVerdictText } from "../lib/experiments/report.ts";
import { runSweep, type SweepBackend } from "../lib/sweep/backend.ts";
import { BullMqBackend, startBullMqWorker } from "../lib/sweep/bullmq.ts";
import { loadExperimentModules } from "../lib/sweep/execute.ts";
import { expandGrid, type GridFile } from "../lib/sweep/grid.ts";
import { canonicalJson } from "../lib/sweep/item.ts";
import { LocalPool } from "../lib/sweep/local.ts";
import { ResultStore } from "../lib/sweep/store.ts";

const args = [...Deno.args];
function take(name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}
function takeAll(name: string): string[] {
  const out: string[] = [];
  for (let v = take(name); v !== undefined; v = take(name)) out.push(v);
  return out;
}
function takeFlag(name: string): boolean {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
}
function int(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new QuantlabError("INVALID_ARGUMENT", `${what} must be a positive integer`);
  return n;
}

const worker = takeFlag("--worker");
const redis = take("--redis");
const queue = take("--queue");
const modules = takeAll("--module");

if (worker) {
  if (!redis) throw new QuantlabError("INVALID_ARGUMENT", "--worker needs --redis redis://HOST:PORT");
  await loadExperimentModules(modules);
  const w = await startBullMqWorker({
    url: redis,
    queue,
    concurrency: int(take("--concurrency"), "--concurrency"),
    lockMs: int(take("--lock-ms"), "--lock-ms"),
    onStart: (item) => console.log(`start ${item.hash} ${item.experiment} seed ${item.seed}`),
    onDone: (item, error) => console.log(`${error ? "failed" : "done"} ${item.hash}${error ? ` ${error}` : ""}`),
  });
  console.log(`worker ${Deno.pid} ready on ${redis} queue ${queue ?? "quantlab-sweep"}`);
  const stop = async () => {
    await w.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await new Promise(() => {});
}

const gridPath = args.find((a) => !a.startsWith("--"));
if (!gridPath) {
  console.error("usage: deno task sweep GRID.json [--store DIR] [--workers N] [--redis URL] | --worker --redis URL");
  Deno.exit(2);
}
const storeDir = take("--store") ?? `sweeps/${gridPath.replace(/^.*\//, "").replace(/\.json$/, "")}`;
const grid = JSON.parse(await Deno.readTextFile(gridPath)) as GridFile;
const gridUrl = new URL(gridPath, `file://${Deno.cwd()}/`);
const gridModules = [...(grid.modules ?? []).map((m) => new URL(m, gridUrl).href), ...modules];
const items = await expandGrid(grid);
const store = await ResultStore.open(storeDir);
const backend: SweepBackend = redis
  ? new BullMqBackend({ url: redis, queue, attempts: int(take("--attempts"), "--attempts") })
  : new LocalPool({
    workers: int(take("--workers"), "--workers"),
    retries: take("--retries") === undefined ? undefined : Number(take("--retries")),
    modules: gridModules,
  });
console.log(`${items.length} items, ${items.filter((i) => store.has(i.hash)).length} stored in ${storeDir}`);
const ac = new AbortController();
Deno.addSignalListener("SIGINT", () => {
  console.log("\ninterrupted: finished items are stored; rerun to resume");
  ac.abort();
});
const summary = await runSweep(items, { backend, store, signal: ac.signal });
console.log(
  `${summary.ran} ran, ${summary.skipped} were stored, ${
    Object.keys(summary.failed).length
  } failed; store ${store.path}`,
);
for (const [hash, error] of Object.entries(summary.failed)) console.log(`failed ${hash.slice(0, 12)}: ${error}`);

// Across seeds, per (experiment, config): claims of report-shaped results.
const groups = new Map<string, ReportTrial[]>();
for (const item of items) {
  const r = store.get(item.hash)?.result as ReportTrial | undefined;
  if (!r || !Array.isArray(r.findings)) continue;
  const key = `${item.experiment} ${canonicalJson(item.config)}`;
  groups.set(key, [...(groups.get(key) ?? []), r]);
}
for (const [key, trials] of groups) {
  console.log(`\n${key}: ${trials.length} seed(s)`);
  for (const v of seedVerdicts(trials)) console.log(`  ${v.claim}: ${seedVerdictText(v)}`);
}
Deno.exit(Object.keys(summary.failed).length > 0 ? 1 : 0);
