/**
 * The backend contract and the sweep loop. A backend runs items somewhere
 * (local worker processes, a BullMQ queue on Redis; a Kubernetes indexed job
 * would be a third) and reports each finished item once; {@link runSweep}
 * skips what the store already holds and stores what comes back.
 *
 * @module
 */
import type { ProgressSink } from "../notebook/progress.ts";
import { progress } from "../notebook/progress.ts";
import type { Json } from "../experiments/registry.ts";
import type { ResultRecord, SweepItem } from "./item.ts";
import type { ResultStore } from "./store.ts";

/** What a backend reports while it runs. */
export interface BackendHooks {
  /** A finished item (called at most once per hash by a correct backend; the store dedups anyway). */
  onResult(record: ResultRecord): Promise<void> | void;
  /** An item that failed after its retries. */
  onFailure?(item: SweepItem, error: string): void;
  /** Stop: the backend returns soon, leaving unfinished items for a later run. */
  readonly signal?: AbortSignal;
}

/** Runs sweep items: `LocalPool` (local.ts, worker processes here) and `BullMqBackend` (bullmq.ts, Redis). */
export interface SweepBackend {
  /** Short name for messages, e.g. `"local x2"`. */
  readonly name: string;
  /** Run `items` (none of them stored yet); resolve when each is reported finished or failed, or on abort. */
  run(items: readonly SweepItem[], hooks: BackendHooks): Promise<void>;
}

/** Counts of one {@link runSweep}. */
export interface SweepSummary {
  /** Items in the grid. */
  readonly total: number;
  /** Already in the store before this run (not rerun). */
  readonly skipped: number;
  /** Finished and stored in this run. */
  readonly ran: number;
  /** Failed after retries (hash -> error). */
  readonly failed: Readonly<Record<string, string>>;
}

/**
 * Run `items` on `backend`, skipping those `store` holds and appending each
 * result as it arrives (so an interrupted sweep resumes where it stopped).
 *
 * @example
 * ```ts
 * import { runSweep, type SweepBackend } from "./backend.ts";
 * import { ResultStore } from "./store.ts";
 * import { expandGrid } from "./grid.ts";
 * const inline: SweepBackend = {
 *   name: "inline",
 *   async run(items, hooks) {
 *     for (const it of items) {
 *       await hooks.onResult({ ...it, result: it.seed * 2, seconds: 0, worker: "inline", finishedAt: "" });
 *     }
 *   },
 * };
 * const dir = await Deno.makeTempDir();
 * const items = await expandGrid({ experiment: "any", seeds: 3 });
 * const store = await ResultStore.open(dir);
 * const a = await runSweep(items, { backend: inline, store, progress: "none" });
 * const b = await runSweep(items, { backend: inline, store, progress: "none" });
 * if (a.ran !== 3 || b.ran !== 0 || b.skipped !== 3) throw new Error(JSON.stringify([a, b]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runSweep(
  items: readonly SweepItem[],
  options: { backend: SweepBackend; store: ResultStore; progress?: ProgressSink; label?: string; signal?: AbortSignal },
): Promise<SweepSummary> {
  const { backend, store } = options;
  const todo = items.filter((i) => !store.has(i.hash));
  const skipped = items.length - todo.length;
  const wanted = new Set(todo.map((i) => i.hash));
  const failed: Record<string, string> = {};
  let ran = 0;
  const bar = progress(items.length, { label: options.label ?? `sweep (${backend.name})`, sink: options.progress });
  if (skipped) await bar.tick(skipped, `${skipped} already stored`);
  if (todo.length) {
    await backend.run(todo, {
      signal: options.signal,
      async onResult(record) {
        if (!wanted.has(record.hash)) return;
        if (await store.append(record)) {
          ran++;
          await bar.tick(
            1,
            `${record.experiment} seed ${record.seed} (${record.seconds.toFixed(1)} s, ${record.worker})`,
          );
        }
      },
      onFailure(item, error) {
        failed[item.hash] = error;
        void bar.tick(1, `FAILED ${item.experiment} seed ${item.seed}: ${error.split("\n")[0]}`);
      },
    });
  }
  await bar.finish(`${ran} ran, ${skipped} stored before, ${Object.keys(failed).length} failed`);
  return { total: items.length, skipped, ran, failed };
}

/**
 * The stored results of `items` (same order; `undefined` where missing).
 *
 * @example
 * ```ts
 * import { resultsOf } from "./backend.ts";
 * import { ResultStore } from "./store.ts";
 * const store = await ResultStore.open(await Deno.makeTempDir());
 * if (resultsOf([], store).length !== 0) throw new Error("bad");
 * ```
 */
export function resultsOf(items: readonly SweepItem[], store: ResultStore): (Json | undefined)[] {
  return items.map((i) => store.get(i.hash)?.result);
}
