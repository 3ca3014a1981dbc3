/**
 * `deno run -A scripts/notebook_soak.ts [NOTEBOOK] [--runs N]`: execute one notebook (default
 * `notebooks/08_ptq_onnx.ipynb`) N times in a row (default 10) through the headless executor and fail unless every
 * code cell of every run has its outputs and no cell errs. Each run prints how many outputs the kernel published
 * after their cell's idle status (the ones `jupyter nbconvert --execute` drops; see scripts/execute_notebook.py).
 *
 * @module
 */
import { executeChecked, findJupyter } from "./notebook_runner.ts";

const runsAt = Deno.args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(Deno.args[runsAt + 1]) : 10;
const path = Deno.args.find((a, i) => !a.startsWith("--") && Deno.args[i - 1] !== "--runs") ??
  new URL("../notebooks/08_ptq_onnx.ipynb", import.meta.url).pathname;
const jupyter = await findJupyter();
if (!jupyter) {
  console.error("Jupyter is not installed (Debian: jupyter-nbconvert python3-nbclient jupyter-client)");
  Deno.exit(2);
}
let failed = 0, late = 0;
for (let r = 1; r <= runs; r++) {
  const t0 = performance.now();
  const { check, lateOutputs } = await executeChecked(path, { jupyter });
  late += lateOutputs;
  const ok = check.errors.length === 0 && check.empty.length === 0 && check.charts > 0;
  if (!ok) failed++;
  console.log(
    `${new Date().toISOString()} run ${r}/${runs} ${ok ? "ok  " : "FAIL"} ${check.charts} chart outputs, ` +
      `${lateOutputs} late outputs kept, ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      (ok ? "" : ` errors: ${check.errors.join("; ")} empty cells: ${check.empty.join(", ")}`),
  );
}
console.log(`${runs - failed} of ${runs} runs complete; ${late} outputs arrived after their cell's idle and were kept`);
if (failed) Deno.exit(1);
