/**
 * Where a model came from ({@link ModelSource}), and writing model bytes safely: atomically (a temporary file in
 * the same folder, flushed, then a rename), never onto a file a model was read from, and cleaning the temporary
 * files an interrupted save (a kill, a crash) left in that folder.
 *
 * One notion of source serves every writer: `OnnxModel.origin` records it when a model is loaded or decoded
 * (a path, a `file:` URL, an http(s) URL, or bytes with an optional name), derived models (clones, folded,
 * quantized, trained) keep it, and {@link writeModelAtomic} refuses a target that {@link sameSource} says is
 * one of the sources it is given. Files compare by identity (device and inode, so links and `file:` URLs
 * resolve), bytes by content: a target whose current contents are the source bytes is refused too, so
 * `ptq(await Deno.readFile(p)).save("qdq", p)` cannot overwrite `p`.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** Size and a sampled FNV-1a hash of some bytes: cheap to take, enough to recognise the same model file. */
export interface Fingerprint {
  /** Byte length. */
  readonly size: number;
  /** Hash of the first and last 4 KiB and 64 evenly spaced 256-byte blocks (hex). */
  readonly sample: string;
}

/**
 * Where a model's bytes came from: a local file (absolute path, links resolved where the file exists), an
 * http(s) URL, or bytes given directly (with an optional name for messages). `fingerprint` identifies the
 * bytes that were read.
 */
export type ModelSource =
  | { readonly kind: "file"; readonly path: string; readonly fingerprint?: Fingerprint }
  | { readonly kind: "url"; readonly url: string; readonly fingerprint?: Fingerprint }
  | { readonly kind: "bytes"; readonly name?: string; readonly fingerprint?: Fingerprint };

/** What the source helpers accept: a source, a path, or a URL (`file:` or http(s)). */
export type SourceLike = ModelSource | string | URL;

const BLOCK = 256, EDGE = 4096, BLOCKS = 64;

function sampleRanges(size: number): [number, number][] {
  if (size <= 2 * EDGE + BLOCKS * BLOCK) return [[0, size]];
  const out: [number, number][] = [[0, EDGE]];
  const span = size - 2 * EDGE - BLOCK;
  for (let k = 0; k < BLOCKS; k++) {
    const at = EDGE + Math.floor((span * k) / (BLOCKS - 1));
    out.push([at, at + BLOCK]);
  }
  out.push([size - EDGE, size]);
  return out;
}

function fnv(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619);
  return h >>> 0;
}

/**
 * The {@link Fingerprint} of `bytes` (reads at most ~25 KiB of them, whatever their size).
 *
 * @example
 * ```ts
 * import { fingerprint } from "./io.ts";
 * const a = fingerprint(new Uint8Array([1, 2, 3]));
 * if (a.size !== 3 || a.sample === fingerprint(new Uint8Array([1, 2, 4])).sample) throw new Error("bad");
 * ```
 */
export function fingerprint(bytes: Uint8Array): Fingerprint {
  let h = 2166136261;
  for (const [a, b] of sampleRanges(bytes.length)) h = fnv(h, bytes.subarray(a, b));
  return { size: bytes.length, sample: h.toString(16).padStart(8, "0") };
}

async function fileFingerprint(path: string, size: number): Promise<Fingerprint | undefined> {
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(path, { read: true });
    let h = 2166136261;
    for (const [a, b] of sampleRanges(size)) {
      const buf = new Uint8Array(b - a);
      await f.seek(a, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) {
        const n = await f.read(buf.subarray(got));
        if (n === null) return undefined;
        got += n;
      }
      h = fnv(h, buf);
    }
    return { size, sample: h.toString(16).padStart(8, "0") };
  } catch {
    return undefined;
  } finally {
    f?.close();
  }
}

function isAbsolute(p: string): boolean {
  return p.startsWith("/") || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith("\\\\");
}

function absolute(p: string): string {
  if (isAbsolute(p)) return p;
  const cwd = Deno.cwd();
  return `${cwd.endsWith("/") ? cwd.slice(0, -1) : cwd}/${p.startsWith("./") ? p.slice(2) : p}`;
}

function fromFileUrl(u: URL): string {
  const p = decodeURIComponent(u.pathname);
  return /^\/[A-Za-z]:\//.test(p) ? p.slice(1) : p;
}

/**
 * A {@link ModelSource} from a path, a `file:` or http(s) URL (as a `URL` or a string), or a source (returned
 * as is). Paths become absolute against the current folder. Other URL schemes are `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * import { modelSource } from "./io.ts";
 * const s = modelSource(new URL("file:///tmp/m.onnx"));
 * if (s.kind !== "file" || s.path !== "/tmp/m.onnx") throw new Error(JSON.stringify(s));
 * if (modelSource("https://example.com/m.onnx").kind !== "url") throw new Error("bad");
 * ```
 */
export function modelSource(from: SourceLike, fp?: Fingerprint): ModelSource {
  if (typeof from === "object" && !(from instanceof URL)) return from;
  let url: URL | undefined;
  if (from instanceof URL) url = from;
  else if (/^[A-Za-z][A-Za-z0-9+.-]+:/.test(from) && !/^[A-Za-z]:[\\/]/.test(from)) {
    try {
      url = new URL(from);
    } catch (e) {
      throw new QuantlabError("INVALID_ARGUMENT", `"${from}" is not a valid URL`, { cause: e });
    }
  }
  if (!url) {
    if (typeof from !== "string" || from === "") {
      throw new QuantlabError("INVALID_ARGUMENT", `a model source must be a path or a URL, got ${String(from)}`);
    }
    return { kind: "file", path: absolute(from), ...(fp ? { fingerprint: fp } : {}) };
  }
  if (url.protocol === "file:") return { kind: "file", path: fromFileUrl(url), ...(fp ? { fingerprint: fp } : {}) };
  if (url.protocol === "http:" || url.protocol === "https:") {
    return { kind: "url", url: url.href, ...(fp ? { fingerprint: fp } : {}) };
  }
  throw new QuantlabError(
    "INVALID_ARGUMENT",
    `model URL "${url.href}" has scheme ${url.protocol}; expected file:, http: or https:`,
  );
}

/**
 * The source of bytes given directly, with an optional `name` for messages (not a path: nothing is looked up
 * under it) and the bytes' fingerprint.
 *
 * @example
 * ```ts
 * import { bytesSource } from "./io.ts";
 * const s = bytesSource(new Uint8Array([1, 2]), "my model");
 * if (s.kind !== "bytes" || s.name !== "my model" || s.fingerprint?.size !== 2) throw new Error("bad");
 * ```
 */
export function bytesSource(bytes: Uint8Array, name?: string): ModelSource {
  return { kind: "bytes", ...(name !== undefined ? { name } : {}), fingerprint: fingerprint(bytes) };
}

/**
 * A short label of a source for messages: the path, the URL, or the bytes' name (`"model bytes"` without one).
 *
 * @example
 * ```ts
 * import { sourceLabel } from "./io.ts";
 * if (sourceLabel({ kind: "bytes" }) !== "model bytes" || sourceLabel({ kind: "file", path: "/m.onnx" }) !== "/m.onnx") {
 *   throw new Error("bad");
 * }
 * ```
 */
export function sourceLabel(s: ModelSource): string {
  return s.kind === "file" ? s.path : s.kind === "url" ? s.url : s.name ?? "model bytes";
}

/** Absolute path with links resolved: the file itself when it exists, else its folder (for a file to be made). */
async function resolvePath(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    const slash = path.lastIndexOf("/");
    if (slash <= 0) return path;
    try {
      return `${await Deno.realPath(path.slice(0, slash))}/${path.slice(slash + 1)}`;
    } catch {
      return path;
    }
  }
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([statOrNull(a), statOrNull(b)]);
  if (sa && sb && sa.ino !== null && sb.ino !== null && sa.dev === sb.dev) return sa.ino === sb.ino;
  return (await resolvePath(a)) === (await resolvePath(b));
}

async function contentMatches(path: string, fp: Fingerprint): Promise<boolean> {
  const st = await statOrNull(path);
  if (!st?.isFile || st.size !== fp.size) return false;
  return (await fileFingerprint(path, st.size))?.sample === fp.sample;
}

/**
 * Whether two sources are the same model origin: the same file (device and inode when both exist, else paths
 * compared after resolving `file:` URLs, relative paths and links), the same http(s) URL, or, when one side is
 * bytes, a file whose current contents are those bytes (by {@link Fingerprint}).
 *
 * @example
 * ```ts
 * import { sameSource } from "./io.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/m.onnx`, new Uint8Array([1]));
 * await Deno.symlink(`${dir}/m.onnx`, `${dir}/link.onnx`);
 * if (!(await sameSource(new URL(`file://${dir}/m.onnx`), `${dir}/link.onnx`))) throw new Error("bad");
 * if (await sameSource(`${dir}/m.onnx`, `${dir}/other.onnx`)) throw new Error("bad");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function sameSource(a: SourceLike, b: SourceLike): Promise<boolean> {
  const x = modelSource(a), y = modelSource(b);
  if (x.kind === "file" && y.kind === "file") return await sameFile(x.path, y.path);
  if (x.kind === "url" && y.kind === "url") return x.url === y.url;
  if (x.kind === "file" && y.fingerprint) return await contentMatches(x.path, y.fingerprint);
  if (y.kind === "file" && x.fingerprint) return await contentMatches(y.path, x.fingerprint);
  if (x.fingerprint && y.fingerprint) {
    return x.fingerprint.size === y.fingerprint.size && x.fingerprint.sample === y.fingerprint.sample;
  }
  return false;
}

/** Temporary files of {@link writeModelAtomic}: `.<name>.<pid>-<8 hex>.tmp` (and the older `.<name>.<8 hex>.tmp`). */
const TMP = /^\..+\.(?:(\d+)-)?[0-9a-f]{8}\.tmp$/;
/** A temporary file older than this is stale whatever wrote it. */
const STALE_MS = 60 * 60 * 1000;

function processAlive(pid: number): boolean | undefined {
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync("/proc/self");
  } catch {
    return undefined; // no /proc: judge by age only
  }
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Remove the temporary files an interrupted {@link writeModelAtomic} left in `dir`: those whose writing process
 * is gone (Linux `/proc`), or older than an hour. Returns the names removed. Errors are ignored (best effort).
 *
 * @example
 * ```ts
 * import { cleanStaleTemporaries } from "./io.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/.m.onnx.999999999-0a1b2c3d.tmp`, new Uint8Array(8)); // pid 999999999 is gone
 * const removed = await cleanStaleTemporaries(dir);
 * if (Deno.build.os === "linux" && removed.length !== 1) throw new Error(String(removed));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function cleanStaleTemporaries(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = e.isFile ? TMP.exec(e.name) : null;
      if (!m) continue;
      const path = `${dir}/${e.name}`;
      const alive = m[1] ? processAlive(Number(m[1])) : undefined;
      let stale = alive === false;
      if (!stale && alive === undefined) {
        const st = await statOrNull(path);
        stale = !!st?.mtime && Date.now() - st.mtime.getTime() > STALE_MS;
      }
      if (stale) {
        try {
          await Deno.remove(path);
          removed.push(e.name);
        } catch { /* another process removed or renamed it */ }
      }
    }
  } catch { /* unreadable folder: the write itself will report */ }
  return removed;
}

/** Options of {@link writeModelAtomic}. */
export interface WriteOptions {
  /** Sources the written model derives from: the write is refused if the target is one of them. */
  sources?: readonly SourceLike[];
  /** Paths of input models (the same as `sources`; kept for older callers). */
  inputs?: readonly string[];
}

/**
 * Write `bytes` to `path` (a path or `file:` URL) atomically: into a temporary file in the same folder, flushed
 * to disk, then renamed over `path`. Refuses (code `IO`, naming both) when `path` is the same as any of
 * `sources` by {@link sameSource}, so a derived model never overwrites the file it came from. Stale temporary
 * files of interrupted saves in that folder are removed first ({@link cleanStaleTemporaries}).
 *
 * @example
 * ```ts
 * import { writeModelAtomic } from "./io.ts";
 * const dir = await Deno.makeTempDir();
 * await writeModelAtomic(`${dir}/m.onnx`, new Uint8Array([1, 2]));
 * if ((await Deno.readFile(`${dir}/m.onnx`)).length !== 2) throw new Error("bad");
 * try {
 *   await writeModelAtomic(`${dir}/m.onnx`, new Uint8Array([3]), { sources: [new URL(`file://${dir}/m.onnx`)] });
 *   throw new Error("should refuse");
 * } catch (e) {
 *   if ((e as { code?: string }).code !== "IO") throw e;
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeModelAtomic(
  path: string | URL,
  bytes: Uint8Array,
  options: WriteOptions = {},
): Promise<void> {
  const target = modelSource(path);
  if (target.kind !== "file") {
    throw new QuantlabError("IO", `cannot write a model to "${sourceLabel(target)}": only local paths are writable`);
  }
  if (!(bytes instanceof Uint8Array)) {
    throw new QuantlabError("INVALID_ARGUMENT", `writing "${target.path}": expected the model bytes as a Uint8Array`);
  }
  const file = target.path;
  for (const s of [...(options.sources ?? []), ...(options.inputs ?? [])]) {
    const src = modelSource(s);
    if (await sameSource(target, src)) {
      throw new QuantlabError(
        "IO",
        `refusing to overwrite "${file}": it is the source model (${src.kind} ${sourceLabel(src)}); ` +
          `choose another output path`,
      );
    }
  }
  const slash = file.lastIndexOf("/");
  const dir = file.slice(0, slash) || "/";
  const base = file.slice(slash + 1);
  await cleanStaleTemporaries(dir);
  const tmp = `${dir}/.${base}.${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`;
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(tmp, { write: true, createNew: true });
    let at = 0;
    while (at < bytes.length) at += await f.write(bytes.subarray(at));
    await f.syncData();
    f.close();
    f = undefined;
    await Deno.rename(tmp, file);
  } catch (e) {
    try {
      f?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw new QuantlabError("IO", `cannot write "${file}": ${(e as Error).message}`, { cause: e });
  }
}
