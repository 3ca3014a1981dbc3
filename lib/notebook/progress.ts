/**
 * Progress for long operations: a display that updates in place in a Jupyter
 * notebook (Deno's kernel, `Deno.jupyter.display` with a `display_id`), a bar
 * on stderr in a terminal (`\r`, no colours), and nothing otherwise (CI logs,
 * pipes).
 *
 * `tick()` returns a promise: `await` it in long loops so the notebook gets
 * the update while the cell is still running.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { escapeHtml, type MediaBundle } from "./display.ts";

/** Where progress goes. */
export type ProgressSink = "auto" | "jupyter" | "terminal" | "lines" | "none";

/** Options of {@link progress}. */
export interface ProgressOptions {
  /** Text before the bar. */
  readonly label?: string;
  /** Where to report (default `"auto"`: Jupyter kernel, else a terminal on stderr, else nothing). */
  readonly sink?: ProgressSink;
  /** Characters in the text bar (default 30). */
  readonly width?: number;
  /** Minimum milliseconds between two updates (default 100; the last update always shows). */
  readonly intervalMs?: number;
  /**
   * `"lines"` sink: at most one plain line per this many milliseconds (default 2000; the first and the last update
   * always print). For logs that are not a terminal (CI): no carriage returns, each line timestamped.
   */
  readonly lineIntervalMs?: number;
  /** Write terminal output here instead of stderr, and `"lines"` output instead of stdout (tests). */
  readonly write?: (text: string) => void;
  /** Send Jupyter bundles here instead of `Deno.jupyter.display` (tests). */
  readonly display?: (bundle: MediaBundle, update: boolean, displayId: string) => Promise<void> | void;
}

/** `Deno.jupyter.display` as quantlab calls it. */
export type JupyterDisplay = (
  obj: unknown,
  options: { raw: boolean; update?: boolean; display_id?: string },
) => Promise<void>;

/**
 * `Deno.jupyter.display` when running inside Deno's Jupyter kernel, else `undefined`.
 *
 * @example
 * ```ts
 * import { jupyterDisplay } from "./progress.ts";
 * // A doc test does not run inside the Jupyter kernel.
 * if (jupyterDisplay() !== undefined) throw new Error("bad");
 * ```
 */
export function jupyterDisplay(): JupyterDisplay | undefined {
  try {
    // Outside the kernel, reading Deno.jupyter throws.
    const j = (Deno as unknown as { jupyter?: { display?: JupyterDisplay } }).jupyter;
    return typeof j?.display === "function" ? j.display.bind(j) : undefined;
  } catch {
    return undefined;
  }
}

let counter = 0;

/**
 * A text progress bar such as `[#########.....]  60% 6/10`.
 *
 * @example
 * ```ts
 * import { progressBar } from "./progress.ts";
 * if (progressBar(5, 10, 10) !== "[#####.....]  50% 5/10") throw new Error(progressBar(5, 10, 10));
 * ```
 */
export function progressBar(done: number, total: number, width = 30): string {
  const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const full = Math.floor(f * width);
  const pct = String(Math.floor(f * 100)).padStart(3);
  return `[${"#".repeat(full)}${".".repeat(width - full)}] ${pct}% ${done}/${total}`;
}

/**
 * A progress reporter for `total` steps. Make one with {@link progress}.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const lines: string[] = [];
 * const p = new Progress(4, { sink: "terminal", intervalMs: 0, width: 4, write: (s) => lines.push(s) });
 * for (let i = 0; i < 4; i++) await p.tick();
 * await p.finish();
 * if (!lines.join("").includes("[####] 100% 4/4")) throw new Error(JSON.stringify(lines));
 * ```
 */
export class Progress {
  /** Steps in all. */
  readonly total: number;
  /** Label before the bar. */
  readonly label: string;
  /** Where output goes, resolved from `"auto"`. */
  readonly sink: Exclude<ProgressSink, "auto">;
  #done = 0;
  #note = "";
  #last = -Infinity;
  #lastLine = -Infinity;
  #shown = false;
  #finished = false;
  readonly #opts: ProgressOptions;
  readonly #id = `quantlab-progress-${Date.now().toString(36)}-${counter++}`;
  readonly #start = performance.now();
  readonly #jupyter?: JupyterDisplay;

  /** Prefer {@link progress}. */
  constructor(total: number, options: ProgressOptions = {}) {
    if (!Number.isInteger(total) || total < 0) {
      throw new QuantlabError("INVALID_ARGUMENT", `progress total must be a non-negative integer, got ${total}`);
    }
    this.total = total;
    this.label = options.label ?? "";
    this.#opts = options;
    const want = options.sink ?? "auto";
    this.#jupyter = options.display ? undefined : jupyterDisplay();
    if (want === "auto") {
      this.sink = this.#jupyter ? "jupyter" : isStderrTerminal() ? "terminal" : "none";
    } else {
      this.sink = want;
    }
  }

  /** Steps done so far. */
  get done(): number {
    return this.#done;
  }

  /** Advance by `steps` (default 1) with an optional note; resolves once the update is shown. */
  tick(steps = 1, note?: string): Promise<void> {
    return this.set(this.#done + steps, note);
  }

  /** Set the number of steps done. */
  set(done: number, note?: string): Promise<void> {
    this.#done = Math.min(this.total, Math.max(0, done));
    if (note !== undefined) this.#note = note;
    const now = performance.now();
    if (this.#done < this.total && now - this.#last < (this.#opts.intervalMs ?? 100)) return Promise.resolve();
    this.#last = now;
    return this.#render(false);
  }

  /** Show the final state (and end the terminal line). */
  async finish(note?: string): Promise<void> {
    if (this.#finished) return;
    if (note !== undefined) this.#note = note;
    this.#done = this.total;
    await this.#render(true);
    this.#finished = true;
  }

  /** The current state as one line of text. */
  toString(): string {
    const secs = (performance.now() - this.#start) / 1000;
    const head = this.label ? `${this.label} ` : "";
    const note = this.#note ? ` ${this.#note}` : "";
    return `${head}${progressBar(this.#done, this.total, this.#opts.width ?? 30)} ${secs.toFixed(1)}s${note}`;
  }

  async #render(final: boolean): Promise<void> {
    if (this.sink === "none") return;
    const text = this.toString();
    if (this.sink === "terminal") {
      const write = this.#opts.write ?? writeStderr;
      write(`\r${text}${final ? "\n" : ""}`);
      return;
    }
    if (this.sink === "lines") {
      const now = performance.now();
      if (!final && this.#shown && now - this.#lastLine < (this.#opts.lineIntervalMs ?? 2000)) return;
      this.#lastLine = now;
      this.#shown = true;
      const write = this.#opts.write ?? writeStdout;
      write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
      return;
    }
    const f = this.total > 0 ? this.#done / this.total : 1;
    const bundle: MediaBundle = {
      "text/plain": text,
      "text/html": `<div style="font-family:monospace">${escapeHtml(this.label)} <progress value="${
        f.toFixed(4)
      }" max="1" style="width:240px"></progress> ${this.#done}/${this.total} ${escapeHtml(this.#note)}</div>`,
    };
    const update = this.#shown;
    this.#shown = true;
    if (this.#opts.display) {
      await this.#opts.display(bundle, update, this.#id);
    } else if (this.#jupyter) {
      await this.#jupyter(bundle, { raw: true, update, display_id: this.#id });
    }
  }
}

/**
 * Start reporting progress over `total` steps.
 *
 * @example
 * ```ts
 * import { progress } from "./progress.ts";
 * const p = progress(3, { label: "calibrating", sink: "none" });
 * await p.tick();
 * if (p.done !== 1) throw new Error("bad");
 * await p.finish();
 * ```
 */
export function progress(total: number, options: ProgressOptions = {}): Progress {
  return new Progress(total, options);
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(text));
  } catch {
    // stderr closed: progress is best effort.
  }
}

function writeStdout(text: string): void {
  try {
    Deno.stdout.writeSync(encoder.encode(text));
  } catch {
    // stdout closed: progress is best effort.
  }
}

function isStderrTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}
