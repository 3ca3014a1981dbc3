/**
 * Writing model bytes safely: atomically (a temporary file in the same folder, then a rename) and never onto
 * the file the model was read from.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

async function realOrSelf(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}

/**
 * Write `bytes` to `path` atomically. Refuses (code `IO`) when `path` is the same file as any of `inputs`
 * (compared after resolving links), so a quantized model never overwrites its source.
 *
 * @example
 * ```ts
 * import { writeModelAtomic } from "./io.ts";
 * const dir = await Deno.makeTempDir();
 * await writeModelAtomic(`${dir}/m.onnx`, new Uint8Array([1, 2]));
 * if ((await Deno.readFile(`${dir}/m.onnx`)).length !== 2) throw new Error("bad");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeModelAtomic(
  path: string,
  bytes: Uint8Array,
  options: { inputs?: readonly string[] } = {},
): Promise<void> {
  const target = await realOrSelf(path);
  for (const input of options.inputs ?? []) {
    if ((await realOrSelf(input)) === target) {
      throw new QuantlabError("IO", `refusing to overwrite the input model "${input}"; choose another output path`);
    }
  }
  const slash = path.lastIndexOf("/");
  const dir = slash >= 0 ? path.slice(0, slash) || "/" : ".";
  const base = slash >= 0 ? path.slice(slash + 1) : path;
  const tmp = `${dir}/.${base}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new QuantlabError("IO", `cannot write "${path}": ${(e as Error).message}`, { cause: e });
  }
}
