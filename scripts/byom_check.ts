/**
 * "Bring your own model" check (issue 10): quantlab's PTQ pipeline on a model it did not build, against the
 * PyTorch reference written by `tests/fixtures/make_byom.py` (`datasets/models/byom_reference.json`); see
 * lib/experiments/byom.ts for the procedure. Prints every row and the BN-kept export (quantlab folds the
 * BatchNorms itself); exits 1 when a row differs from PyTorch by more than 0.3 points.
 *
 * Usage: `deno run -A scripts/byom_check.ts [--threads 2]`
 *
 * @module
 */
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { type ByomComparison, compareByom, loadByom } from "../lib/experiments/byom.ts";

const threadsArg = Deno.args.indexOf("--threads");
const session = { threads: threadsArg >= 0 ? Number(Deno.args[threadsArg + 1]) : 2 };
const { reference, folded, bn } = await loadByom();
const [train, test] = await Promise.all([loadFashionMnist("train"), loadFashionMnist("test")]);
const show = (r: ByomComparison, from = "") =>
  console.log(
    `W${r.weightBits}A${r.activationBits} ${r.weights.padEnd(11)} PyTorch ${r.top1.toFixed(4)}  quantlab ${
      r.quantlab.toFixed(4)
    }  diff ${r.diff >= 0 ? "+" : ""}${r.diff.toFixed(2)} pt${from}`,
  );
const rows = await compareByom(folded, reference, train, test, { session, onRow: (r) => show(r) });
await compareByom(bn, reference, train, test, {
  session,
  rows: [reference.rows[0]],
  onRow: (r) => show(r, "  (byom_bn.onnx: BatchNorm folded by quantlab)"),
});
const bad = rows.filter((r) => Math.abs(r.diff) > 0.3);
console.log(bad.length ? `${bad.length} row(s) differ by more than 0.3 points` : "all rows within 0.3 points");
if (bad.length) Deno.exit(1);
