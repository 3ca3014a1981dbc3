/**
 * The distributed backend: BullMQ on Redis. The coordinator enqueues every
 * item with job id = the item's content hash (BullMQ ignores an add whose id
 * exists, so enqueueing is idempotent: rerunning a sweep, or two coordinators,
 * never duplicate a job), then polls the jobs and stores each result as it
 * completes. Workers on any number of machines point at the same Redis
 * ({@link startBullMqWorker}); a worker that dies mid-job loses its lock and
 * the job is moved back to the queue (stalled-job recovery); a job that throws
 * is retried with a fixed backoff, up to `attempts` in all.
 *
 * BullMQ does not list Deno as supported; this pinned version is the one the
 * tests run (Redis 7, Deno 2.9). 5.x bundles ioredis; 6.x makes it an
 * optional peer that must be constructed by hand. It loads on first use.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { BackendHooks, SweepBackend } from "./backend.ts";
import { executeItem, workerName } from "./execute.ts";
import type { ResultRecord, SweepItem } from "./item.ts";

/** The BullMQ this backend was tested with (npm, loaded lazily). */
export const BULLMQ_SPEC = "npm:bullmq@5.81.5";

/** Default queue name. */
export const DEFAULT_QUEUE = "quantlab-sweep";

// The little of BullMQ's API used here (the package is imported dynamically, so untyped).
interface BullJob {
  readonly id?: string;
  readonly data: SweepItem;
  readonly returnvalue: ResultRecord | null;
  readonly failedReason?: string;
  readonly attemptsMade: number;
  getState(): Promise<string>;
  retry(state?: string): Promise<void>;
}
interface BullQueue {
  addBulk(jobs: { name: string; data: SweepItem; opts: Record<string, unknown> }[]): Promise<unknown>;
  getJob(id: string): Promise<BullJob | undefined>;
  obliterate(opts?: { force?: boolean }): Promise<void>;
  close(): Promise<void>;
}
interface BullWorker {
  on(event: string, fn: (...args: unknown[]) => void): void;
  waitUntilReady(): Promise<unknown>;
  close(force?: boolean): Promise<void>;
}
interface BullMq {
  Queue: new (name: string, opts: Record<string, unknown>) => BullQueue;
  Worker: new (
    name: string,
    fn: (job: BullJob) => Promise<ResultRecord>,
    opts: Record<string, unknown>,
  ) => BullWorker;
  UnrecoverableError: new (message: string) => Error;
}

let bullmq: Promise<BullMq> | undefined;
function loadBullMq(): Promise<BullMq> {
  const spec = BULLMQ_SPEC;
  return bullmq ??= import(spec) as Promise<BullMq>;
}

/**
 * ioredis connection options from a `redis://[:password@]host[:port][/db]` URL.
 *
 * @example
 * ```ts
 * import { redisConnection } from "./bullmq.ts";
 * const c = redisConnection("redis://:pw@10.0.0.5:6380/2");
 * if (c.host !== "10.0.0.5" || c.port !== 6380 || c.db !== 2 || c.password !== "pw") throw new Error(JSON.stringify(c));
 * ```
 */
export function redisConnection(url: string): {
  host: string;
  port: number;
  db: number;
  password?: string;
  username?: string;
  maxRetriesPerRequest: null;
} {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QuantlabError("INVALID_ARGUMENT", `not a Redis URL: "${url}" (expected redis://host:port)`);
  }
  if (u.protocol !== "redis:") throw new QuantlabError("INVALID_ARGUMENT", `not a redis:// URL: "${url}"`);
  const db = Number(u.pathname.replace(/^\//, "") || 0);
  return {
    host: u.hostname || "127.0.0.1",
    port: Number(u.port || 6379),
    db,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    maxRetriesPerRequest: null,
  };
}

/** Options of {@link BullMqBackend}. */
export interface BullMqBackendOptions {
  /** Redis URL (default `redis://127.0.0.1:6379`). */
  readonly url?: string;
  /** Queue name (default {@link DEFAULT_QUEUE}); workers must use the same. */
  readonly queue?: string;
  /** Attempts per job in all, first run included (default 3). */
  readonly attempts?: number;
  /** Milliseconds between attempts (default 1000). */
  readonly backoffMs?: number;
  /** Milliseconds between polls of unfinished jobs (default 250). */
  readonly pollMs?: number;
  /** Retry jobs found failed from an earlier run (default true: rerunning a sweep asks for them again). */
  readonly retryFailed?: boolean;
}

/**
 * Enqueue items on Redis for BullMQ workers and collect their results.
 *
 * @example
 * ```ts
 * import { BullMqBackend } from "./bullmq.ts";
 * const b = new BullMqBackend({ url: "redis://127.0.0.1:6379", queue: "demo" });
 * if (b.name !== "bullmq redis://127.0.0.1:6379 demo") throw new Error(b.name);
 * ```
 */
export class BullMqBackend implements SweepBackend {
  readonly #o: BullMqBackendOptions;

  /** A backend with `options` (nothing connects until {@link BullMqBackend.run}). */
  constructor(options: BullMqBackendOptions = {}) {
    redisConnection(options.url ?? "redis://127.0.0.1:6379");
    this.#o = options;
  }

  /** `"bullmq URL QUEUE"`. */
  get name(): string {
    return `bullmq ${this.#o.url ?? "redis://127.0.0.1:6379"} ${this.#o.queue ?? DEFAULT_QUEUE}`;
  }

  /** Enqueue `items` (idempotently) and wait until each has completed or failed for good, or `hooks.signal` aborts. */
  async run(items: readonly SweepItem[], hooks: BackendHooks): Promise<void> {
    const { Queue } = await loadBullMq();
    const attempts = this.#o.attempts ?? 3;
    const queue = new Queue(this.#o.queue ?? DEFAULT_QUEUE, {
      connection: redisConnection(this.#o.url ?? "redis://127.0.0.1:6379"),
    });
    try {
      const opts = {
        attempts,
        backoff: { type: "fixed", delay: this.#o.backoffMs ?? 1000 },
        removeOnComplete: false,
        removeOnFail: false,
      };
      for (let i = 0; i < items.length; i += 500) {
        await queue.addBulk(
          items.slice(i, i + 500).map((item) => ({
            name: item.experiment,
            data: item,
            opts: { ...opts, jobId: item.hash },
          })),
        );
      }
      const pending = new Map(items.map((i) => [i.hash, i]));
      let first = true;
      while (pending.size > 0 && !hooks.signal?.aborted) {
        const batch = [...pending.values()].slice(0, 200);
        const jobs = await Promise.all(batch.map((i) => queue.getJob(i.hash)));
        for (const [k, job] of jobs.entries()) {
          const item = batch[k];
          if (!job) { // removed by someone: enqueue again
            await queue.addBulk([{ name: item.experiment, data: item, opts: { ...opts, jobId: item.hash } }]);
            continue;
          }
          const state = await job.getState();
          if (state === "completed" && job.returnvalue) {
            pending.delete(item.hash);
            await hooks.onResult(job.returnvalue);
          } else if (state === "failed") {
            if (first && (this.#o.retryFailed ?? true)) {
              await job.retry("failed");
            } else {
              pending.delete(item.hash);
              hooks.onFailure?.(item, job.failedReason ?? "failed");
            }
          }
        }
        first = false;
        if (pending.size > 0) await new Promise((r) => setTimeout(r, this.#o.pollMs ?? 250));
      }
    } finally {
      await queue.close();
    }
  }
}

/** Options of {@link startBullMqWorker}. */
export interface BullMqWorkerOptions {
  /** Redis URL (default `redis://127.0.0.1:6379`). */
  readonly url?: string;
  /** Queue name (default {@link DEFAULT_QUEUE}). */
  readonly queue?: string;
  /** Jobs this process runs at once (default 1: trials are single-threaded; start one process per core). */
  readonly concurrency?: number;
  /** Job lock in ms: a dead worker's job is recovered about this long after it died (default 30000). */
  readonly lockMs?: number;
  /** How often to look for stalled jobs, in ms (default `lockMs`). */
  readonly stalledIntervalMs?: number;
  /** How often a job may stall (worker death) before it fails (default 3). */
  readonly maxStalledCount?: number;
  /** Called when a job starts (e.g. to log). */
  readonly onStart?: (item: SweepItem) => void;
  /** Called when a job finishes or fails. */
  readonly onDone?: (item: SweepItem, error?: string) => void;
}

/**
 * Start a worker that takes sweep jobs from the queue and runs them in this process until closed. Experiments
 * must be registered first (built-ins load on demand).
 *
 * @example
 * ```ts ignore
 * import { startBullMqWorker } from "./bullmq.ts";
 * const worker = await startBullMqWorker({ url: "redis://10.0.0.5:6379" });
 * Deno.addSignalListener("SIGTERM", () => worker.close());
 * ```
 */
export async function startBullMqWorker(options: BullMqWorkerOptions = {}): Promise<{ close(): Promise<void> }> {
  const { Worker, UnrecoverableError } = await loadBullMq();
  const lockMs = options.lockMs ?? 30000;
  const worker = new Worker(
    options.queue ?? DEFAULT_QUEUE,
    async (job) => {
      const item = job.data;
      options.onStart?.(item);
      try {
        const record = await executeItem(item);
        options.onDone?.(item);
        return record;
      } catch (e) {
        const msg = (e as Error)?.message ?? String(e);
        options.onDone?.(item, msg);
        // A version or hash mismatch will not go away on retry.
        if ((e as { code?: string })?.code === "INVALID_ARGUMENT" && /quantlab|hash/.test(msg)) {
          throw new UnrecoverableError(msg);
        }
        throw e;
      }
    },
    {
      connection: redisConnection(options.url ?? "redis://127.0.0.1:6379"),
      concurrency: options.concurrency ?? 1,
      lockDuration: lockMs,
      stalledInterval: options.stalledIntervalMs ?? lockMs,
      maxStalledCount: options.maxStalledCount ?? 3,
      name: workerName(),
    },
  );
  worker.on("error", (e) => console.error(`sweep worker: ${(e as Error)?.message ?? e}`));
  await worker.waitUntilReady();
  return { close: () => worker.close() };
}
