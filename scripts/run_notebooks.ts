/**
 * `deno task notebooks`: execute every notebook under notebooks/ through
 * Jupyter with the Deno kernel (registering the kernel if needed), fail on
 * any cell error or a notebook without a chart, and write the executed
 * outputs back so the committed notebooks read well on GitHub.
 *
 * Usage: deno task notebooks [--check] [NAME_OR_PATH ...]
 *   --check  execute and check only; leave the committed notebooks untouched.
 *
 * @module
 */
import { cleanNotebook, ensureKernel, executeChecked, findJupyter, writeNotebook } from "./notebook_runner.ts";

const root = new URL("../", import.meta.url);
const args = Deno.args.filter((a) => a !== "--check");
const checkOnly = Deno.args.includes("--check");

const jupyter = await findJupyter();
if (!jupyter) {
  console.error(
    "Jupyter is not installed. On Debian/Ubuntu: apt-get install jupyter-nbconvert python3-nbclient jupyter-client",
  );
  Deno.exit(2);
}
if (await ensureKernel(jupyter)) console.log("installed the Deno kernelspec (deno jupyter --install)");

const dir = new URL("notebooks/", root);
let paths = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".ipynb")).map((e) => e.name).sort();
if (args.length) paths = paths.filter((p) => args.some((a) => p.includes(a.replace(/^.*\//, ""))));
if (!paths.length) {
  console.error("no notebooks matched");
  Deno.exit(2);
}
let failed = 0;
for (const name of paths) {
  const path = new URL(name, dir).pathname;
  const t0 = performance.now();
  const { nb, check: c, lateOutputs } = await executeChecked(path, { jupyter });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const problems = [...c.errors];
  if (c.charts === 0) problems.push("no chart output (vega-lite or SVG)");
  if (c.ansi > 0) problems.push(`${c.ansi} outputs hold ANSI escape codes`);
  if (c.empty.length) {
    problems.push(`code cells without output (every quantlab cell shows something): ${c.empty.join(", ")}`);
  }
  if (problems.length) {
    failed++;
    console.log(`FAIL notebooks/${name} (${secs}s)\n  ${problems.join("\n  ")}`);
    continue;
  }
  if (!checkOnly) await writeNotebook(path, cleanNotebook(nb));
  const retried = lateOutputs > 0 ? `, ${lateOutputs} outputs published after idle kept` : "";
  console.log(
    `ok   notebooks/${name} (${secs}s, ${c.charts} chart outputs${retried}${checkOnly ? "" : ", outputs saved"})`,
  );
}
console.log(`${paths.length - failed} passed, ${failed} failed`);
if (failed) Deno.exit(1);
