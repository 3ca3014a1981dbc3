/**
 * A local pool's worker process: reads one item per stdin line, writes
 * protocol lines (prefixed {@link PROTOCOL_PREFIX}) to stdout: `start`, then
 * `result` or `error`. Anything else a trial prints goes to stderr.
 *
 * Usage (started by `LocalPool`): deno run -A lib/sweep/local_worker.ts [--module SPEC]...
 *
 * @module
 */
import { executeItem, loadExperimentModules } from "./execute.ts";
import type { SweepItem } from "./item.ts";

/** Marks protocol lines on a worker's stdout. */
export const PROTOCOL_PREFIX = "@@quantlab-sweep ";

/**
 * Split a byte stream into text lines.
 *
 * @example
 * ```ts
 * import { lines } from "./local_worker.ts";
 * const s = new Blob(["a\nb", "c\n"]).stream();
 * const out: string[] = [];
 * for await (const l of lines(s)) out.push(l);
 * if (out.join("|") !== "a|bc") throw new Error(out.join("|"));
 * ```
 */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

async function main(): Promise<void> {
  const modules: string[] = [];
  for (let i = 0; i < Deno.args.length; i++) if (Deno.args[i] === "--module") modules.push(Deno.args[++i]);
  // Trials' own console.log must not corrupt the protocol: send it to stderr.
  const out = (msg: unknown) =>
    Deno.stdout.writeSync(new TextEncoder().encode(PROTOCOL_PREFIX + JSON.stringify(msg) + "\n"));
  console.log = (...a: unknown[]) => console.error(...a);
  await loadExperimentModules(modules);
  out({ ready: true });
  for await (const line of lines(Deno.stdin.readable)) {
    if (!line.trim()) continue;
    const item = JSON.parse(line) as SweepItem;
    out({ start: item.hash });
    try {
      out({ result: await executeItem(item) });
    } catch (e) {
      out({ error: (e as Error)?.stack ?? String(e), hash: item.hash });
    }
  }
}

if (import.meta.main) await main();
