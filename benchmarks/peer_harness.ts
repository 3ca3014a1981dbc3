/**
 * Peer comparison harness: time quantlab code and a reference (PyTorch, faiss)
 * on the same inputs in one run, and print ratios.
 *
 * Reference scripts run under Debian's own python3 (`/usr/bin/python3`, or
 * `$QUANTLAB_PYTHON`), read a JSON job on stdin and print a JSON object of
 * `{ name: milliseconds }` (plus anything else) on stdout.
 *
 * @module
 */

/** Median wall time in milliseconds of `fn` over `iterations` runs after `warmup` runs. */
export function timeMs(fn: () => unknown, options: { warmup?: number; iterations?: number } = {}): number {
  const warmup = options.warmup ?? 2, iterations = options.iterations ?? 7;
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Async variant of {@link timeMs}. */
export async function timeMsAsync(
  fn: () => Promise<unknown>,
  options: { warmup?: number; iterations?: number } = {},
): Promise<number> {
  const warmup = options.warmup ?? 2, iterations = options.iterations ?? 7;
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** The Python interpreter with torch/faiss (Debian's), overridable by QUANTLAB_PYTHON. */
export function referencePython(): string {
  return Deno.env.get("QUANTLAB_PYTHON") ?? "/usr/bin/python3";
}

/** Run a reference script with a JSON job on stdin; returns its parsed JSON stdout, or null if Python is missing. */
export async function runPeer<T = Record<string, number>>(
  script: string | URL,
  job: unknown,
  env: Record<string, string> = {},
): Promise<T | null> {
  const path = script instanceof URL ? script.pathname : script;
  let child;
  try {
    child = new Deno.Command(referencePython(), {
      args: [path],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1", ...env },
    }).spawn();
  } catch {
    return null;
  }
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(job)));
  await w.close();
  const out = await child.output();
  if (!out.success) {
    console.error(new TextDecoder().decode(out.stderr));
    return null;
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}

/** One comparison row. */
export interface PeerRow {
  /** What was measured. */
  name: string;
  /** quantlab's time in ms. */
  oursMs: number;
  /** The reference's time in ms (NaN if unavailable). */
  peerMs: number;
  /** Optional target: ours must be at most peer * maxRatio. */
  maxRatio?: number;
}

/** Print a table of comparisons with speed-up ratios (peer / ours) and targets. Returns the text. */
export function printComparison(title: string, peer: string, rows: PeerRow[]): string {
  const lines = [
    `## ${title}`,
    "",
    `| case | quantlab ms | ${peer} ms | speed-up (${peer}/quantlab) | target |`,
    "|---|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const ratio = r.peerMs / r.oursMs;
    const target = r.maxRatio === undefined
      ? ""
      : `${r.maxRatio <= 1 ? `>= ${(1 / r.maxRatio).toFixed(2)}x` : `<= ${r.maxRatio}x slower`} ${
        r.oursMs <= r.peerMs * r.maxRatio ? "met" : "MISSED"
      }`;
    lines.push(
      `| ${r.name} | ${r.oursMs.toFixed(2)} | ${Number.isNaN(r.peerMs) ? "n/a" : r.peerMs.toFixed(2)} | ${
        Number.isNaN(ratio) ? "n/a" : ratio.toFixed(2) + "x"
      } | ${target} |`,
    );
  }
  const text = lines.join("\n");
  console.log(text);
  return text;
}
