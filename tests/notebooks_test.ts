/**
 * Executes every notebook through real Jupyter and Deno's kernel (into a
 * temporary directory; the committed notebooks are not touched), and runs a
 * notebook from a folder outside the repository that maps "quantlab" to this
 * checkout in a deno.json beside it. Skipped only when Jupyter (nbconvert) is
 * not installed.
 */
import assert from "node:assert/strict";
import {
  checkNotebook,
  ensureKernel,
  executeChecked,
  findJupyter,
  type Notebook,
  type NotebookOutput,
  writeNotebook,
} from "../scripts/notebook_runner.ts";

const jupyter = await findJupyter();
const ignore = jupyter === undefined;
if (ignore) {
  console.warn(
    "notebooks_test: SKIPPED - Jupyter with nbconvert is not installed (Debian: jupyter-nbconvert python3-nbclient jupyter-client)",
  );
}
const root = new URL("../", import.meta.url);
const notebooks = [...Deno.readDirSync(new URL("notebooks/", root))]
  .filter((e) => e.name.endsWith(".ipynb"))
  .map((e) => e.name)
  .sort();

Deno.test({
  name: "notebooks: every notebook executes headlessly with the Deno kernel and shows charts",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await ensureKernel(jupyter!);
    assert.ok(notebooks.length >= 4, `expected the four survey notebooks, found ${notebooks.join(", ")}`);
    for (const name of notebooks) {
      await t.step(name, async () => {
        const path = new URL(`notebooks/${name}`, root).pathname;
        const before = await Deno.readTextFile(path);
        const { check: c } = await executeChecked(path, { jupyter, env: { QUANTLAB_NOTEBOOK_QUICK: "1" } });
        assert.deepEqual(c.errors, [], `cell errors in ${name}`);
        assert.ok(c.charts >= 1, `${name} has no chart output`);
        assert.equal(c.ansi, 0, `${name} has ANSI codes in its outputs`);
        assert.deepEqual(c.empty, [], `${name}: code cells without output`);
        assert.equal(await Deno.readTextFile(path), before, "the committed notebook was modified");
        const saved: Notebook = JSON.parse(before);
        assert.ok(checkNotebook(saved).charts >= 1, `committed ${name} lacks executed chart outputs`);
      });
    }
  },
});

Deno.test({
  name: "notebooks: a notebook outside the repository imports quantlab through a deno.json import map",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await ensureKernel(jupyter!);
    const dir = await Deno.makeTempDir({ prefix: "quantlab-outside-" });
    try {
      const mod = new URL("mod.ts", root).pathname;
      const viz = new URL("lib/viz/mod.ts", root).pathname;
      await Deno.writeTextFile(
        `${dir}/deno.json`,
        JSON.stringify({ imports: { quantlab: mod, "quantlab/viz": viz } }, null, 2),
      );
      const cell = (source: string) => ({
        cell_type: "code" as const,
        metadata: {},
        source,
        outputs: [],
        execution_count: null,
      });
      const nb: Notebook = {
        cells: [
          cell(
            'import { quantizer, sqnr } from "quantlab";\nimport { errorVsBitsChart } from "quantlab/viz";\n' +
              "const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));\n" +
              "const rows = [2, 4, 8].map((bits) => ({ bits, method: 'min-max', value: sqnr(x, quantizer().int(bits).fakeQuantize(x).values) }));\n" +
              "// one write: the Deno 2.9 kernel can drop a second stream message that arrives after the reply\n" +
              'console.log("cwd=" + Deno.cwd() + "\\nsqnr8=" + rows[2].value.toFixed(1));',
          ),
          cell('await errorVsBitsChart(rows, { metric: "sqnr", title: "outside" }).render()'),
        ],
        metadata: { kernelspec: { display_name: "Deno", language: "typescript", name: "deno" } },
        nbformat: 4,
        nbformat_minor: 5,
      };
      await writeNotebook(`${dir}/outside.ipynb`, nb);
      const { nb: out, check: c } = await executeChecked(`${dir}/outside.ipynb`, { jupyter });
      assert.deepEqual(c.errors, []);
      assert.equal(c.charts, 1);
      const text = (out.cells[0].outputs ?? []).map((o: NotebookOutput) => [o.text ?? ""].flat().join("")).join("");
      assert.ok(text.includes(`cwd=${await Deno.realPath(dir)}`) || text.includes(`cwd=${dir}`), text);
      const m = /sqnr8=([\d.]+)/.exec(text);
      assert.ok(m && Number(m[1]) > 35 && Number(m[1]) < 50, text);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("notebooks: import quantlab through the deno.json beside them, never by a relative path", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("notebooks/deno.json", root)));
  assert.equal(config.imports?.quantlab, "../mod.ts");
  for (const name of notebooks) {
    const text = await Deno.readTextFile(new URL(`notebooks/${name}`, root));
    assert.ok(!text.includes("../mod.ts"), `${name} imports ../mod.ts`);
    assert.ok(text.includes('from \\"quantlab\\"'), `${name} does not import "quantlab"`);
  }
});
