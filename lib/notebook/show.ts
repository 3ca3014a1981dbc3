/**
 * `show(x)`: display an object now, as IPython's `display()` does.
 *
 * In Deno's Jupyter kernel it sends the object's MIME bundle as a
 * `display_data` message and waits until it is sent; elsewhere it prints the
 * `text/plain` form. Prefer `await show(x)` over ending a cell with `x` in
 * notebooks that run headlessly: Deno's kernel (2.9) can publish a cell's
 * final `execute_result` after the cell's `idle` status, and
 * `jupyter nbconvert --execute` then drops it, while awaited display messages
 * always arrive.
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
  } else {
    (options.print ?? console.log)(bundle["text/plain"] ?? String(x));
  }
}
