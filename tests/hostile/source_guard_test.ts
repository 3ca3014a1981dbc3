/**
 * Issue 15, case 1 (data loss): no writer overwrites the model it read from, whichever form the source took;
 * interrupted saves leave nothing behind after the next save.
 */
import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { cleanStaleTemporaries, modelSource, sameSource, writeModelAtomic } from "../../lib/onnx/io.ts";
import { saveCheckpoint } from "../../lib/grad/checkpoint.ts";
import { foldBatchNorm } from "../../lib/onnx/fold_bn.ts";
import { QuantlabError } from "../../lib/errors.ts";

const FIXTURE = new URL("../fixtures/models/poolnet_op17.onnx", import.meta.url);

async function withCopy(fn: (dir: string, path: string, original: Uint8Array) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const original = await Deno.readFile(FIXTURE);
  const path = `${dir}/m.onnx`;
  await Deno.writeFile(path, original);
  try {
    await fn(dir, path, original);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const refused = (e: unknown) =>
  e instanceof QuantlabError && e.code === "IO" && /refusing to overwrite/.test(e.message);

async function assertUntouched(path: string, original: Uint8Array): Promise<void> {
  assert.deepStrictEqual(await Deno.readFile(path), original, `${path} was overwritten`);
}

Deno.test("a model loaded by file: URL cannot be saved over by path (and the reverse)", async () => {
  await withCopy(async (_dir, path, original) => {
    const m = await OnnxModel.load(new URL(`file://${path}`));
    assert.equal(m.origin.kind, "file");
    const derived = foldBatchNorm(m).model; // derived models keep the origin
    await assert.rejects(writeModelAtomic(path, derived.encode(), { sources: [derived.origin] }), refused);
    const byPath = await OnnxModel.load(path);
    await assert.rejects(
      writeModelAtomic(new URL(`file://${path}`), byPath.encode(), { sources: [byPath.origin] }),
      refused,
    );
    await assertUntouched(path, original);
  });
});

Deno.test("relative paths, symlinks and hard links resolve to the same source", async () => {
  await withCopy(async (dir, path, original) => {
    await Deno.symlink(path, `${dir}/link.onnx`);
    await Deno.link(path, `${dir}/hard.onnx`);
    const m = await OnnxModel.load(`${dir}/link.onnx`);
    for (const target of [path, `${dir}/hard.onnx`, `${dir}/link.onnx`, `${dir}/./m.onnx`]) {
      await assert.rejects(writeModelAtomic(target, m.encode(), { sources: [m.origin] }), refused, target);
    }
    const cwd = Deno.cwd();
    Deno.chdir(dir);
    try {
      assert.ok(await sameSource("m.onnx", new URL(`file://${path}`)));
      await assert.rejects(writeModelAtomic("./m.onnx", m.encode(), { sources: [m.origin] }), refused);
    } finally {
      Deno.chdir(cwd);
    }
    await assertUntouched(path, original);
    // A different file is writable.
    await writeModelAtomic(`${dir}/out.onnx`, m.encode(), { sources: [m.origin] });
  });
});

Deno.test("bytes keep a source: a file holding those bytes is not overwritten", async () => {
  await withCopy(async (dir, path, original) => {
    const m = OnnxModel.decode(await Deno.readFile(path), "my model");
    assert.equal(m.origin.kind, "bytes");
    assert.equal(m.origin.fingerprint?.size, original.length);
    await assert.rejects(writeModelAtomic(path, m.encode(), { sources: [m.clone().origin] }), refused);
    await assertUntouched(path, original);
    await writeModelAtomic(`${dir}/other.onnx`, m.encode(), { sources: [m.origin] });
  });
});

Deno.test("checkpoints never overwrite the model they trained from", async () => {
  await withCopy(async (dir, path, original) => {
    const m = await OnnxModel.load(new URL(`file://${path}`));
    await assert.rejects(saveCheckpoint(path, m, { epoch: 1 }), refused);
    // The trainer checkpoints a model derived from the forward model (clone + new initializers).
    await assert.rejects(saveCheckpoint(path, m.clone(), { epoch: 1 }), refused);
    await assertUntouched(path, original);
    await saveCheckpoint(`${dir}/ckpt.onnx`, m, { epoch: 1 });
    const back = await OnnxModel.load(`${dir}/ckpt.onnx`);
    assert.ok(back.proto.metadataProps.some((e) => e.key === "epoch"));
  });
});

Deno.test("http(s) URLs load through fetch and are recorded as the source", async () => {
  const bytes = await Deno.readFile(FIXTURE);
  const ac = new AbortController();
  const server = Deno.serve({ port: 0, signal: ac.signal, onListen: () => {} }, () => new Response(bytes));
  try {
    const url = `http://localhost:${server.addr.port}/m.onnx`;
    const m = await OnnxModel.load(new URL(url));
    assert.deepStrictEqual({ kind: m.origin.kind, url: m.origin.kind === "url" ? m.origin.url : "" }, {
      kind: "url",
      url,
    });
    assert.equal(m.graph.node.length > 0, true);
    assert.ok(await sameSource(m.origin, url));
    await assert.rejects(writeModelAtomic(url, bytes), (e) => e instanceof QuantlabError && e.code === "IO");
  } finally {
    ac.abort();
    await server.finished;
  }
  assert.equal(modelSource("https://example.com/a.onnx").kind, "url");
  assert.throws(() => modelSource("ftp://example.com/a.onnx"), (e) => e instanceof QuantlabError);
});

Deno.test("a save interrupted by a kill leaves a temporary that the next save to that folder removes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A child process starts a large save and is killed -9 while writing.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { writeModelAtomic } from "${new URL("../../lib/onnx/io.ts", import.meta.url)}";
         const big = new Uint8Array(64 * 1024 * 1024);
         const w = writeModelAtomic("${dir}/big.onnx", big);
         console.log("started");
         await w;
         await new Promise(() => {});`,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read();
    // Wait until the temporary exists (the write is under way or done), then kill.
    for (let i = 0; i < 200; i++) {
      const names = [...Deno.readDirSync(dir)].map((e) => e.name);
      if (names.some((n) => n.endsWith(".tmp"))) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    // Simulate the worst case whatever the timing: a full-size temporary of the dead process.
    const dead = [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".tmp"))?.name ??
      `.big.onnx.${child.pid}-0123abcd.tmp`;
    if (![...Deno.readDirSync(dir)].some((e) => e.name === dead)) {
      await Deno.writeFile(`${dir}/${dead}`, new Uint8Array(1024));
    }
    // Another process's live temporary must survive; an old-format temporary older than an hour must not.
    const live = `.other.onnx.${Deno.pid}-aaaabbbb.tmp`;
    await Deno.writeFile(`${dir}/${live}`, new Uint8Array(1));
    const old = `.old.onnx.ffff0000.tmp`;
    await Deno.writeFile(`${dir}/${old}`, new Uint8Array(1));
    await Deno.utime(`${dir}/${old}`, new Date(Date.now() - 2 * 3600e3), new Date(Date.now() - 2 * 3600e3));
    await writeModelAtomic(`${dir}/small.onnx`, new Uint8Array([1]));
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.ok(!left.includes(dead), `stale temporary survived: ${left}`);
    assert.ok(!left.includes(old), `old temporary survived: ${left}`);
    assert.ok(left.includes(live), `a live temporary was removed: ${left}`);
    assert.deepStrictEqual(await cleanStaleTemporaries(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
