/**
 * The result store: a directory holding `results.jsonl`, one finished item
 * ({@link ResultRecord}) per line, appended as results arrive. The first line
 * for a hash wins; a torn last line (a crash mid-write) is ignored and the
 * next append starts on a fresh line. One process writes a store (the sweep's
 * coordinator); workers never touch it, so lines cannot interleave.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { ResultRecord } from "./item.ts";

/** The file inside a store directory. */
export const RESULTS_FILE = "results.jsonl";

/**
 * A JSON-lines result store in a directory.
 *
 * @example
 * ```ts
 * import { ResultStore } from "./store.ts";
 * import { sweepItem } from "./item.ts";
 * const dir = await Deno.makeTempDir();
 * const item = await sweepItem("demo", {}, 0, "0.0.0");
 * const store = await ResultStore.open(dir);
 * const rec = { ...item, result: { x: 1 }, seconds: 0.1, worker: "here", finishedAt: new Date().toISOString() };
 * if (!(await store.append(rec)) || await store.append(rec)) throw new Error("second append must be a no-op");
 * const again = await ResultStore.open(dir);
 * if (again.size !== 1 || !again.has(item.hash)) throw new Error("bad");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ResultStore {
  readonly #records = new Map<string, ResultRecord>();
  #tail = Promise.resolve();

  private constructor(readonly dir: string, readonly path: string) {}

  /** Open (creating) the store in `dir` and load what it holds. */
  static async open(dir: string): Promise<ResultStore> {
    await Deno.mkdir(dir, { recursive: true });
    const path = `${dir.replace(/\/+$/, "")}/${RESULTS_FILE}`;
    const store = new ResultStore(dir, path);
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      let rec: ResultRecord;
      try {
        rec = JSON.parse(line);
      } catch {
        continue; // a torn line from a crash mid-write
      }
      if (rec && typeof rec.hash === "string" && !store.#records.has(rec.hash)) store.#records.set(rec.hash, rec);
    }
    if (text.length > 0 && !text.endsWith("\n")) await Deno.writeTextFile(path, "\n", { append: true });
    return store;
  }

  /** Number of results. */
  get size(): number {
    return this.#records.size;
  }

  /** Whether the store holds a result for `hash`. */
  has(hash: string): boolean {
    return this.#records.has(hash);
  }

  /** The result for `hash`, if any. */
  get(hash: string): ResultRecord | undefined {
    return this.#records.get(hash);
  }

  /** Every record, in the order they were stored. */
  records(): ResultRecord[] {
    return [...this.#records.values()];
  }

  /** Append a record unless its hash is already stored; true when written. Appends are serialised. */
  append(record: ResultRecord): Promise<boolean> {
    if (!record || typeof record.hash !== "string" || record.hash.length === 0) {
      return Promise.reject(new QuantlabError("INVALID_ARGUMENT", "result store: a record needs a hash"));
    }
    if (this.#records.has(record.hash)) return Promise.resolve(false);
    this.#records.set(record.hash, record);
    const line = JSON.stringify(record) + "\n";
    const write = this.#tail.then(() => Deno.writeTextFile(this.path, line, { append: true }));
    this.#tail = write.catch(() => {});
    return write.then(() => true);
  }
}
