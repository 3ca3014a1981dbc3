/**
 * `show(x)`: display an object now, as IPython's `display()` does.
 *
 * In Deno's Jupyter kernel it sends the object's MIME bundle as a
 * `display_data` message; elsewhere it prints the `text/plain` form.
 *
 * Why it then waits a moment (measured with Deno 2.9.6): the kernel publishes
 * a cell's outputs (display_data, execute_result, stream) from another task
 * than the cell's `status: idle`, ordered only by a 5 ms sleep, so a large
 * bundle (a chart of 50-400 KB) can reach the front end after idle; nbclient
 * (`jupyter nbconvert --execute`) and JupyterLab then drop it. With raw
 * jupyter_client, 1-2 of 16 large outputs arrived after idle, none when the
 * cell kept running 20 ms after the display. `show()` waits 20 ms plus 1 ms
 * per 4 KB of bundle (at most 250 ms) so its output leaves the kernel first.
 * Headless runs also keep late outputs (scripts/execute_notebook.py).
 *
 * @module
 */
import { bundleOf } from "./display.ts";
import { jupyterDisplay } from "./progress.ts";

/**
 * Display `x` (any object; rich when it implements the Jupyter display protocol).
 *
 * @example
 * ```ts
 * import { show } from "./show.ts";
 * import { table } from "./table.ts";
 * const lines: string[] = [];
 * await show(table([{ a: 1 }]), { print: (s) => lines.push(s) });
 * if (!lines[0].startsWith("a")) throw new Error(lines.join("\n"));
 * ```
 */
export async function show(x: unknown, options: { print?: (text: string) => void } = {}): Promise<void> {
  const bundle = await bundleOf(x);
  const display = options.print ? undefined : jupyterDisplay();
  if (display) {
    await display(bundle, { raw: true });
    const bytes = Object.values(bundle).reduce(
      (n, v) => n + (typeof v === "string" ? v.length : JSON.stringify(v).length),
      0,
    );
    await new Promise((resolve) => setTimeout(resolve, Math.min(250, 20 + bytes / 4096)));
  } else {
    (options.print ?? console.log)(bundle["text/plain"] ?? String(x));
  }
}
