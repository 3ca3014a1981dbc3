/**
 * URL importability: serve the repository over HTTP on 127.0.0.1 (as scripts/serve.ts does), import
 * `mod.ts` by URL from a folder without a deno.json into a fresh Deno cache,
 * fake-quantize a tensor, and check the printed result and the cache size.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MAX_CACHE_BYTES = 20 * 1024 * 1024;

const CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "application/javascript; charset=utf-8",
  ".json": "application/json",
  ".gz": "application/gzip",
};

function serveRepository(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(join(ROOT, path));
      const ext = path.slice(path.lastIndexOf("."));
      return new Response(body, { headers: { "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) total += await directorySize(p);
    else if (e.isFile) total += (await Deno.lstat(p)).size;
  }
  return total;
}

Deno.test("mod.ts imports by URL into a fresh cache, fake-quantizes, and stays light", async () => {
  const server = serveRepository();
  const port = server.addr.port;
  const work = await Deno.makeTempDir({ prefix: "quantlab_url_" });
  const cache = await Deno.makeTempDir({ prefix: "quantlab_cache_" });
  try {
    const script = `
import { quantizer } from "http://127.0.0.1:${port}/mod.ts";
const { values, params } = quantizer().int(4).symmetric().fakeQuantize([0.1, -0.7, 0.35, 0.7]);
console.log(JSON.stringify({ values: Array.from(values.data), scale: params.scale[0] }));
`;
    await Deno.writeTextFile(join(work, "use_quantlab.ts"), script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", `--allow-import=127.0.0.1:${port}`, "use_quantlab.ts"],
      cwd: work,
      env: { DENO_DIR: cache, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `deno run failed:\n${stderr}`);
    const printed = JSON.parse(new TextDecoder().decode(out.stdout).trim());
    // int4 restricted symmetric: S = 0.7 / 7 = 0.1 (float32), grid k*S for k in -7..7.
    const s = Math.fround(Math.fround(0.7) / 7);
    assert.equal(printed.scale, s);
    assert.deepEqual(printed.values, [1, -7, 4, 7].map((k) => Math.fround(k * s)));
    const size = await directorySize(cache);
    assert.ok(size < MAX_CACHE_BYTES, `importing mod.ts filled ${(size / 1e6).toFixed(1)} MB of cache (limit 20 MB)`);
  } finally {
    await server.shutdown();
    await Deno.remove(work, { recursive: true });
    await Deno.remove(cache, { recursive: true });
  }
});

/** The README's `deno run` lines for the URL-imported PTQ example, keyed by the comment before each. */
async function readmeFlags(): Promise<Record<string, string[]>> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const out: Record<string, string[]> = {};
  for (const m of readme.matchAll(/# (tensor-level|WASM|native)[^\n]*\n(deno run [^\n]+)/g)) {
    out[m[1]] = m[2].replace(/^deno run /, "").split(/\s+/).filter((a) => a.startsWith("--"));
  }
  return out;
}

Deno.test({
  name: "URL import: a model loaded over http is quantized with the README's flags; only the binding in use is fetched",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { fileHandler } = await import("../scripts/serve.ts");
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, fileHandler(ROOT));
    const host = `127.0.0.1:${server.addr.port}`;
    const work = await Deno.makeTempDir({ prefix: "quantlab_url_ptq_" });
    const flags = await readmeFlags();
    assert.ok(
      flags.WASM && flags.native && flags["tensor-level"],
      `README lacks the flag lines: ${JSON.stringify(flags)}`,
    );
    try {
      const example = (await Deno.readTextFile(join(ROOT, "README.md"))).match(
        /```ts(?: ignore)?\n(\/\/ ptq_by_url\.ts[\s\S]*?)```/,
      )?.[1];
      assert.ok(example, "README lacks the ptq_by_url.ts example");
      await Deno.writeTextFile(join(work, "ptq_by_url.ts"), example.replaceAll("127.0.0.1:8000", host));
      for (const kind of ["WASM", "native"] as const) {
        await t.step(kind, async () => {
          const cache = await Deno.makeTempDir({ prefix: "quantlab_cache_" });
          try {
            const out = await new Deno.Command(Deno.execPath(), {
              args: [
                "run",
                "--no-config",
                ...flags[kind].map((f) => f.replaceAll("127.0.0.1:8000", host)),
                "ptq_by_url.ts",
              ],
              cwd: work,
              env: { DENO_DIR: cache, NO_COLOR: "1" },
              stdout: "piped",
              stderr: "piped",
            }).output();
            const stderr = new TextDecoder().decode(out.stderr);
            assert.ok(out.success, `deno run failed:\n${stderr}`);
            const printed = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
            assert.ok(printed.nodes > 20 && printed.train >= 2000, JSON.stringify(printed));
            const npm = [...Deno.readDirSync(join(cache, "npm", "registry.npmjs.org"))].map((e) => e.name);
            const bindings = npm.filter((n) => n === "onnxruntime-node" || n === "onnxruntime-web");
            assert.deepEqual(bindings, [kind === "WASM" ? "onnxruntime-web" : "onnxruntime-node"]);
            // The WASM fall-back is said once, with its reason.
            const notes = stderr.match(/quantlab: ONNX Runtime runs on onnxruntime-web/g)?.length ?? 0;
            assert.equal(notes, kind === "WASM" ? 1 : 0, stderr);
          } finally {
            await Deno.remove(cache, { recursive: true });
          }
        });
      }
    } finally {
      await server.shutdown();
      await Deno.remove(work, { recursive: true });
    }
  },
});
