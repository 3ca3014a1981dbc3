/**
 * The local backend: a pool of worker processes on this machine (default: one
 * per logical CPU), each running one item at a time. An item whose worker dies
 * is handed to another (up to `retries` extra attempts, as are trials that
 * throw); dead workers are replaced while items remain.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { BackendHooks, SweepBackend } from "./backend.ts";
import type { ResultRecord, SweepItem } from "./item.ts";
import { lines, PROTOCOL_PREFIX } from "./local_worker.ts";

/** Options of {@link LocalPool}. */
export interface LocalPoolOptions {
  /** Worker processes (default `navigator.hardwareConcurrency`, at most the number of items). */
  readonly workers?: number;
  /** Extra attempts of an item after a failure or a dead worker (default 2). */
  readonly retries?: number;
  /** Modules every worker imports (they register experiments). */
  readonly modules?: readonly string[];
  /** Extra environment of the worker processes. */
  readonly env?: Readonly<Record<string, string>>;
  /** Deno flags of the workers (default `["-A"]`). */
  readonly denoFlags?: readonly string[];
}

interface Slot {
  child: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  item?: SweepItem;
  ready: boolean;
  done: Promise<void>;
}

/**
 * Worker processes on this machine.
 *
 * @example
 * ```ts ignore
 * import { LocalPool } from "./local.ts";
 * import { runSweep } from "./backend.ts";
 * import { expandGrid } from "./grid.ts";
 * import { ResultStore } from "./store.ts";
 * const items = await expandGrid({ experiment: "uniform", config: { quick: true }, seeds: 5 });
 * await runSweep(items, { backend: new LocalPool({ workers: 2 }), store: await ResultStore.open("sweeps/uniform") });
 * ```
 */
export class LocalPool implements SweepBackend {
  readonly #o: LocalPoolOptions;

  /** A pool with `options`. */
  constructor(options: LocalPoolOptions = {}) {
    if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers > 0)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `local pool: workers must be a positive integer, got ${options.workers}`,
      );
    }
    this.#o = options;
  }

  /** `"local xN"`. */
  get name(): string {
    return `local x${this.#o.workers ?? navigator.hardwareConcurrency}`;
  }

  /** Run `items` on fresh worker processes (they exit when it returns). */
  async run(items: readonly SweepItem[], hooks: BackendHooks): Promise<void> {
    const retries = this.#o.retries ?? 2;
    const queue = [...items];
    const attempts = new Map<string, number>();
    let remaining = items.length;
    let startupFailures = 0;
    const slots = new Set<Slot>();
    const enc = new TextEncoder();
    let finish!: () => void;
    const finished = new Promise<void>((r) => finish = r);
    const settle = () => {
      if (remaining === 0 || hooks.signal?.aborted) finish();
    };
    const fail = (item: SweepItem, error: string) => {
      const n = (attempts.get(item.hash) ?? 0) + 1;
      attempts.set(item.hash, n);
      if (n > retries) {
        remaining--;
        hooks.onFailure?.(item, error);
      } else queue.push(item);
    };
    const feed = async (slot: Slot) => {
      const item = queue.shift();
      slot.item = item;
      if (item) await slot.writer.write(enc.encode(JSON.stringify(item) + "\n")).catch(() => {});
      else await slot.writer.close().catch(() => {});
    };
    const spawn = () => {
      const flags = this.#o.denoFlags ?? ["-A"];
      const args = ["run", ...flags, new URL("./local_worker.ts", import.meta.url).href];
      for (const m of this.#o.modules ?? []) args.push("--module", m);
      const child = new Deno.Command(Deno.execPath(), {
        args,
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
        env: { ...this.#o.env },
      }).spawn();
      const slot: Slot = { child, writer: child.stdin.getWriter(), ready: false, done: Promise.resolve() };
      slots.add(slot);
      slot.done = (async () => {
        for await (const line of lines(child.stdout)) {
          if (!line.startsWith(PROTOCOL_PREFIX)) {
            console.error(line);
            continue;
          }
          const msg = JSON.parse(line.slice(PROTOCOL_PREFIX.length)) as {
            ready?: boolean;
            start?: string;
            result?: ResultRecord;
            error?: string;
          };
          if (msg.ready) {
            slot.ready = true;
            startupFailures = 0;
            await feed(slot);
          } else if (msg.result && slot.item?.hash === msg.result.hash) {
            slot.item = undefined;
            await hooks.onResult(msg.result);
            remaining--;
            settle();
            if (!hooks.signal?.aborted) await feed(slot);
          } else if (msg.error !== undefined && slot.item) {
            const item = slot.item;
            slot.item = undefined;
            fail(item, msg.error);
            settle();
            if (!hooks.signal?.aborted) await feed(slot);
          }
        }
        const status = await child.status;
        slots.delete(slot);
        if (slot.item) {
          const item = slot.item;
          slot.item = undefined;
          fail(item, `worker ${child.pid} exited (code ${status.code}${status.signal ? `, ${status.signal}` : ""})`);
        }
        if (!slot.ready && ++startupFailures >= 3) {
          // Workers die before they can take an item (e.g. a module fails to import): give up on the rest.
          for (const item of queue.splice(0)) {
            remaining--;
            hooks.onFailure?.(item, `worker processes exit at startup (code ${status.code}); see their stderr`);
          }
        }
        if (remaining > 0 && !hooks.signal?.aborted) {
          if (queue.length > 0) spawn();
          else if (slots.size === 0) finish();
        }
        settle();
      })();
    };
    const abort = () => finish();
    hooks.signal?.addEventListener("abort", abort);
    const n = Math.min(this.#o.workers ?? navigator.hardwareConcurrency, items.length);
    if (n === 0 || hooks.signal?.aborted) return;
    for (let i = 0; i < n; i++) spawn();
    await finished;
    hooks.signal?.removeEventListener("abort", abort);
    for (const s of slots) {
      await s.writer.close().catch(() => {});
      if (s.item || hooks.signal?.aborted) {
        try {
          s.child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }
    await Promise.all([...slots].map((s) => s.done.catch(() => {})));
  }
}
