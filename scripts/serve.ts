/**
 * `deno run --allow-net=127.0.0.1 --allow-read=. scripts/serve.ts [--port 8000] [--host 127.0.0.1] [DIR]`: serve
 * this repository (or DIR) over HTTP for URL imports, with the MIME types Deno needs: `.ts` as
 * `application/typescript` (Python's `http.server` takes the type from the host's MIME table, which on many Linux
 * hosts maps `.ts` to Qt Linguist `text/vnd.trolltech.linguist`, and Deno then refuses the module), `.js`, `.json`,
 * `.onnx`, `.gz` and `.wasm`. Read-only, no directory listings, no paths outside DIR.
 *
 * @module
 */
import { extname, join, normalize, resolve } from "node:path";

/** Content types by file extension (everything else is `application/octet-stream`). */
export const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  ".ts": "application/typescript; charset=utf-8",
  ".mts": "application/typescript; charset=utf-8",
  ".js": "application/javascript; charset=utf-8",
  ".mjs": "application/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".wasm": "application/wasm",
  ".gz": "application/gzip",
  ".onnx": "application/octet-stream",
});

/** A request handler serving files under `root`. */
export function fileHandler(root: string): (req: Request) => Promise<Response> {
  const base = resolve(root);
  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed", { status: 405 });
    const path = normalize(decodeURIComponent(new URL(req.url).pathname));
    const file = join(base, path);
    if (!file.startsWith(base + "/") && file !== base) return new Response("bad path", { status: 400 });
    try {
      const info = await Deno.stat(file);
      if (!info.isFile) return new Response("not found", { status: 404 });
      const headers = {
        "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
        "content-length": String(info.size),
      };
      if (req.method === "HEAD") return new Response(null, { headers });
      return new Response((await Deno.open(file)).readable, { headers });
    } catch {
      return new Response("not found", { status: 404 });
    }
  };
}

if (import.meta.main) {
  const flag = (n: string) => {
    const i = Deno.args.indexOf(n);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const dir = Deno.args.find((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--")) ??
    new URL("..", import.meta.url).pathname;
  const hostname = flag("--host") ?? "127.0.0.1";
  const port = Number(flag("--port") ?? 8000);
  Deno.serve({
    hostname,
    port,
    onListen: (a) =>
      console.log(
        `serving ${resolve(dir)} at http://${a.hostname}:${a.port}/ (mod.ts: http://${a.hostname}:${a.port}/mod.ts)`,
      ),
  }, fileHandler(dir));
}
