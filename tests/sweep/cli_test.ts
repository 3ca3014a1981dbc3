import assert from "node:assert/strict";

const SWEEP = new URL("../../scripts/sweep.ts", import.meta.url).pathname;
const FIXTURE = new URL("./fixture_experiment.ts", import.meta.url).pathname;

async function sweep(args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SWEEP, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
}

Deno.test("deno task sweep GRID.json: local pool, store, resume", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantlab_sweep_cli_" });
  try {
    await Deno.writeTextFile(
      `${dir}/grid.json`,
      JSON.stringify({ experiment: "sweep-fixture", config: { ms: 5, k: [1, 2] }, seeds: 3, modules: [FIXTURE] }),
    );
    const first = await sweep([`${dir}/grid.json`, "--store", `${dir}/store`, "--workers", "2"]);
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /6 ran, 0 were stored, 0 failed/);
    const lines = (await Deno.readTextFile(`${dir}/store/results.jsonl`)).trim().split("\n");
    assert.equal(lines.length, 6);
    const again = await sweep([`${dir}/grid.json`, "--store", `${dir}/store`]);
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /0 ran, 6 were stored, 0 failed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
