/**
 * The distributed backend end to end: redis-server on 127.0.0.1 (a free port,
 * its own temp dir), two BullMQ worker processes (`deno task sweep --worker`),
 * a grid of the test-only fixture experiment, one worker SIGKILLed mid-job.
 * Every item's result must be stored exactly once and equal the local pool's
 * result for the same hash. Skips (with a message) only when redis-server is
 * not installed outside CI; with CI=true it must run.
 */
import assert from "node:assert/strict";
import { runSweep } from "../../lib/sweep/backend.ts";
import { BullMqBackend } from "../../lib/sweep/bullmq.ts";
import { expandGrid } from "../../lib/sweep/grid.ts";
import { LocalPool } from "../../lib/sweep/local.ts";
import { ResultStore } from "../../lib/sweep/store.ts";
import { lines } from "../../lib/sweep/local_worker.ts";

const FIXTURE = new URL("./fixture_experiment.ts", import.meta.url);
const SWEEP = new URL("../../scripts/sweep.ts", import.meta.url).href;

function findRedis(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"])) {
    try {
      const p = `${dir}/redis-server`;
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

const REDIS = findRedis();
const IN_CI = Deno.env.get("CI") === "true";
if (!REDIS && !IN_CI) {
  console.warn("tests/sweep/redis_test.ts: SKIPPED: redis-server is not installed (apt-get install redis-server)");
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A worker process and the hashes it has started, as its stdout reports them. */
function startWorker(url: string, queue: string, counter: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      SWEEP,
      "--worker",
      "--redis",
      url,
      "--queue",
      queue,
      "--module",
      FIXTURE.href,
      "--lock-ms",
      "1000",
    ],
    stdout: "piped",
    stderr: "inherit",
    env: { QUANTLAB_SWEEP_COUNTER: counter, NO_COLOR: "1" },
  }).spawn();
  const started: string[] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  const listeners: (() => void)[] = [];
  const reading = (async () => {
    for await (const line of lines(child.stdout)) {
      if (line.startsWith("start ")) started.push(line.split(" ")[1]);
      if (line.startsWith("worker ")) ready();
      for (const l of listeners) l();
    }
  })();
  const firstStart = new Promise<string>((resolve) => {
    const check = () => started.length > 0 && resolve(started[0]);
    listeners.push(check);
  });
  return { child, started, isReady, firstStart, reading };
}

Deno.test({
  name: "BullMQ on Redis: 2 workers, one SIGKILLed mid-job; each result stored once and equal to the local pool's",
  ignore: !REDIS && !IN_CI,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    if (!REDIS) throw new Error("CI=true but redis-server is not installed: .ci/run must install it");
    const dir = await Deno.makeTempDir({ prefix: "quantlab_redis_" });
    const port = freePort();
    const redis = new Deno.Command(REDIS, {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    const url = `redis://127.0.0.1:${port}`;
    const queue = `test-${crypto.randomUUID().slice(0, 8)}`;
    const counter = `${dir}/counter.txt`;
    const workers: ReturnType<typeof startWorker>[] = [];
    try {
      await waitForPort(port, 10000);
      const items = await expandGrid({ experiment: "sweep-fixture", config: { ms: 500, k: ["a", "b"] }, seeds: 4 });
      workers.push(startWorker(url, queue, counter), startWorker(url, queue, counter));
      await Promise.all(workers.map((w) => w.isReady));

      const store = await ResultStore.open(`${dir}/redis-store`);
      const backend = new BullMqBackend({ url, queue, attempts: 3, backoffMs: 100, pollMs: 100 });
      const sweep = runSweep(items, { backend, store, progress: "none" });
      // Kill worker 0 while it holds a job (it has printed "start" and the fixture sleeps 500 ms).
      const victim = await workers[0].firstStart;
      await new Promise((r) => setTimeout(r, 100));
      workers[0].child.kill("SIGKILL");
      const status = await workers[0].child.status;
      assert.equal(status.signal, "SIGKILL");
      const summary = await sweep;
      assert.deepEqual(summary.failed, {});
      assert.equal(summary.ran, items.length);

      // Exactly once: one line per item in the store file, every hash present.
      const fileLines = (await Deno.readTextFile(store.path)).trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(fileLines.length, items.length);
      assert.deepEqual(new Set(fileLines.map((r) => r.hash)), new Set(items.map((i) => i.hash)));
      // The killed job was finished by the surviving worker.
      const victimRecord = store.get(victim)!;
      assert.ok(victimRecord, "the job held by the killed worker has a result");
      assert.notEqual(victimRecord.worker.split(":").pop(), String(workers[0].child.pid));
      assert.ok(workers[1].started.includes(victim), "the surviving worker ran the killed worker's job");

      // Equal to the local pool's results for the same hashes.
      const local = await ResultStore.open(`${dir}/local-store`);
      await runSweep(items, {
        backend: new LocalPool({ workers: 2, modules: [FIXTURE.href] }),
        store: local,
        progress: "none",
      });
      for (const it of items) assert.deepEqual(store.get(it.hash)!.result, local.get(it.hash)!.result, it.hash);

      // Idempotent enqueue: a second coordinator with an empty store collects the results, runs nothing new.
      const startsBefore = (await Deno.readTextFile(counter)).split("\n").filter((l) => l.startsWith("start")).length;
      const again = await ResultStore.open(`${dir}/redis-store-2`);
      const s2 = await runSweep(items, { backend, store: again, progress: "none" });
      assert.equal(s2.ran, items.length);
      const startsAfter = (await Deno.readTextFile(counter)).split("\n").filter((l) => l.startsWith("start")).length;
      assert.equal(startsAfter, startsBefore);
      for (const it of items) assert.deepEqual(again.get(it.hash)!.result, store.get(it.hash)!.result);
    } finally {
      for (const w of workers) {
        try {
          w.child.kill("SIGTERM");
        } catch { /* already gone */ }
        await w.child.status;
        await w.reading.catch(() => {});
      }
      redis.kill("SIGTERM");
      await redis.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
