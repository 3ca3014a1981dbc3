/**
 * Headless notebook execution through real Jupyter (`jupyter nbconvert
 * --execute`) and Deno's kernel, shared by `deno task notebooks`,
 * `deno task kernel` and tests/notebooks_test.ts.
 *
 * @module
 */

/** A Jupyter notebook (nbformat 4), loosely typed. */
export interface Notebook {
  cells: NotebookCell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

/** One cell. */
export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  source: string | string[];
  metadata: Record<string, unknown>;
  outputs?: NotebookOutput[];
  execution_count?: number | null;
  id?: string;
}

/** One output of a code cell. */
export interface NotebookOutput {
  output_type: "stream" | "display_data" | "execute_result" | "error" | "update_display_data";
  data?: Record<string, unknown>;
  text?: string | string[];
  name?: string;
  ename?: string;
  evalue?: string;
  traceback?: string[];
  metadata?: Record<string, unknown>;
  execution_count?: number | null;
}

/** Result of checking an executed notebook. */
export interface NotebookCheck {
  /** Cells whose outputs hold an error. */
  errors: string[];
  /** Outputs with a chart MIME type (vega-lite or SVG). */
  charts: number;
  /** Outputs whose text holds ANSI escape codes. */
  ansi: number;
  /** Code cells (1-based) that produced no output at all. */
  empty: number[];
}

const CHART_MIMES = ["application/vnd.vegalite.v5+json", "application/vnd.vegalite.v4+json", "image/svg+xml"];
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

async function run(
  cmd: string,
  args: string[],
  cwd?: string,
  env?: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
  } catch (e) {
    return { code: -1, out: "", err: (e as Error).message };
  }
}

/**
 * The Jupyter command to use: `$QUANTLAB_JUPYTER`, else Debian's
 * `/usr/bin/jupyter`, else `jupyter` on PATH; `undefined` when none has
 * `nbconvert`.
 */
export async function findJupyter(): Promise<string | undefined> {
  const candidates = [Deno.env.get("QUANTLAB_JUPYTER"), "/usr/bin/jupyter", "jupyter"].filter((c): c is string => !!c);
  for (const c of candidates) {
    const r = await run(c, ["nbconvert", "--version"]);
    if (r.code === 0) return c;
  }
  return undefined;
}

/** Whether a kernelspec named `name` is installed. */
export async function hasKernel(jupyter: string, name = "deno"): Promise<boolean> {
  const r = await run(jupyter, ["kernelspec", "list", "--json"]);
  if (r.code !== 0) return false;
  try {
    const specs = JSON.parse(r.out).kernelspecs as Record<string, unknown>;
    return name in specs;
  } catch {
    return false;
  }
}

/** Install Deno's kernelspec (`deno jupyter --install`) when missing. Returns whether it installed one. */
export async function ensureKernel(jupyter: string): Promise<boolean> {
  if (await hasKernel(jupyter)) return false;
  const r = await run(Deno.execPath(), ["jupyter", "--install"]);
  if (r.code !== 0 || !(await hasKernel(jupyter))) {
    throw new Error(`could not install the Deno kernelspec (deno jupyter --install): ${stripAnsi(r.err)}`);
  }
  return true;
}

/** Remove ANSI escape codes. */
export function stripAnsi(s: string): string {
  return s.replace(ANSI, "");
}

function text(x: string | string[] | undefined): string {
  return Array.isArray(x) ? x.join("") : x ?? "";
}

/** Errors, chart outputs and ANSI codes of an executed notebook. */
export function checkNotebook(nb: Notebook): NotebookCheck {
  const result: NotebookCheck = { errors: [], charts: 0, ansi: 0, empty: [] };
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type === "code" && (cell.outputs ?? []).length === 0) result.empty.push(i + 1);
    for (const o of cell.outputs ?? []) {
      if (o.output_type === "error") {
        result.errors.push(`cell ${i + 1}: ${o.ename}: ${stripAnsi(o.evalue ?? "")}`);
      }
      if (o.data && CHART_MIMES.some((m) => m in o.data!)) result.charts++;
      const texts = [
        text(o.text),
        ...Object.values(o.data ?? {}).filter((v) => typeof v === "string" || Array.isArray(v)).map((v) =>
          text(v as string[])
        ),
      ];
      if (texts.some((t) => t.includes("\x1b["))) result.ansi++;
    }
  });
  return result;
}

/**
 * Make an executed notebook stable to commit: drop per-run execution
 * timestamps from cell metadata and any ANSI codes from stream text.
 */
export function cleanNotebook(nb: Notebook): Notebook {
  for (const cell of nb.cells) {
    delete cell.metadata.execution;
    for (const o of cell.outputs ?? []) {
      if (o.text !== undefined) o.text = Array.isArray(o.text) ? o.text.map(stripAnsi) : stripAnsi(o.text);
    }
  }
  return nb;
}

/** Options of {@link executeNotebook}. */
export interface ExecuteOptions {
  /** Jupyter command (default: {@link findJupyter}). */
  jupyter?: string;
  /** Seconds one cell may run (default 600). */
  cellTimeout?: number;
  /** Kernel name (default `deno`). */
  kernel?: string;
  /**
   * Extra environment for the kernel. The notebooks test sets `QUANTLAB_NOTEBOOK_QUICK=1`: notebooks whose full
   * runs take minutes (training) read it through `notebookQuick()` and run their quick preset instead; the
   * committed outputs come from `deno task notebooks` (full).
   */
  env?: Record<string, string>;
}

/** The Python that runs `scripts/execute_notebook.py`: `$QUANTLAB_PYTHON`, else the one Jupyter runs on. */
async function findPython(jupyter: string): Promise<string> {
  const env = Deno.env.get("QUANTLAB_PYTHON");
  if (env) return env;
  try {
    const head = (await Deno.readTextFile(jupyter.includes("/") ? jupyter : "/usr/bin/jupyter")).split("\n")[0];
    if (head.startsWith("#!") && !head.includes(" ")) return head.slice(2);
  } catch {
    // not a script we can read: fall back to PATH
  }
  return "python3";
}

/**
 * Execute `path` with the Deno kernel (working directory: the notebook's folder) and return the executed notebook.
 * Does not modify `path`. Cell errors are kept in the outputs (see {@link checkNotebook}).
 *
 * Runs `scripts/execute_notebook.py` (nbclient) rather than `jupyter nbconvert --execute`: Deno's kernel (2.9)
 * can publish a cell's output after the cell's `idle` status (two tasks, ordered only by a 5 ms sleep), and
 * nbconvert then drops it; the script keeps such late outputs under their cell (by parent message id).
 * `lateOutputs` counts them.
 */
export async function executeNotebook(
  path: string,
  options: ExecuteOptions = {},
): Promise<Notebook & { lateOutputs?: number }> {
  const jupyter = options.jupyter ?? await findJupyter();
  if (!jupyter) throw new Error("Jupyter with nbconvert is not installed (Debian: jupyter-nbconvert python3-nbclient)");
  const python = await findPython(jupyter);
  const script = new URL("execute_notebook.py", import.meta.url).pathname;
  const outDir = await Deno.makeTempDir({ prefix: "quantlab-nb-" });
  try {
    const r = await run(
      python,
      [
        script,
        path,
        `${outDir}/executed.ipynb`,
        "--kernel",
        options.kernel ?? "deno",
        "--timeout",
        String(options.cellTimeout ?? 600),
      ],
      undefined,
      options.env,
    );
    let nb: Notebook & { lateOutputs?: number };
    try {
      nb = JSON.parse(await Deno.readTextFile(`${outDir}/executed.ipynb`));
    } catch {
      throw new Error(`executing ${path} failed (exit ${r.code}):\n${stripAnsi(r.err).slice(-4000)}`);
    }
    const late = /late outputs kept: (\d+)/.exec(r.err);
    if (late) Object.defineProperty(nb, "lateOutputs", { value: Number(late[1]), enumerable: false });
    return nb;
  } finally {
    await Deno.remove(outDir, { recursive: true }).catch(() => {});
  }
}

/**
 * Execute and check a notebook once (no retries: late outputs are kept by {@link executeNotebook}).
 * `attempts` is always 1 (kept for callers).
 */
export async function executeChecked(
  path: string,
  options: ExecuteOptions = {},
): Promise<{ nb: Notebook; check: NotebookCheck; attempts: number; lateOutputs: number }> {
  const nb = await executeNotebook(path, options);
  return { nb, check: checkNotebook(nb), attempts: 1, lateOutputs: nb.lateOutputs ?? 0 };
}

/** Write a notebook as nbformat JSON (one-space indent, trailing newline, like Jupyter). */
export async function writeNotebook(path: string, nb: Notebook): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(nb, null, 1) + "\n");
}
