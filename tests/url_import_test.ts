/**
 * URL importability: serve the repository over HTTP on 127.0.0.1, import
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
