import assert from "node:assert/strict";
import { parseNpy } from "../../lib/data/npy.ts";
import { QuantlabError } from "../../lib/errors.ts";

const DIR = new URL("../fixtures/npy/", import.meta.url);
const expected = JSON.parse(await Deno.readTextFile(new URL("expected.json", DIR)));
const read = (name: string) => Deno.readFileSync(new URL(name, DIR));

/** A .npy file with a hand-written header (v1 unless `version`), padded like NumPy pads it. */
function npy(header: string, data: Uint8Array = new Uint8Array(0), version = 1): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  const text = header + " ".repeat(total - pre - header.length - 1) + "\n";
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, text.length, true);
  else dv.setUint32(8, text.length, true);
  out.set(new TextEncoder().encode(text), pre);
  out.set(data, total);
  return out;
}

const rejects = (bytes: Uint8Array, source: string, code: string, re: RegExp) =>
  assert.throws(
    () => parseNpy(bytes, source),
    (e: unknown) => e instanceof QuantlabError && e.code === code && e.message.includes(source) && re.test(e.message),
    `${source}: expected ${code} ${re}`,
  );

Deno.test("parseNpy reads NumPy's own v1, v2 and v3 float32 files, scalars and empty arrays", () => {
  for (const name of ["v1_2x3.npy", "v2_2x3.npy", "v3_2x3.npy", "scalar.npy", "rows0.npy", "calib_images.npy"]) {
    const a = parseNpy(read(name), name);
    assert.deepEqual(a.shape, expected[name].shape, name);
    assert.deepEqual([...a.data], expected[name].values, name);
  }
});

Deno.test("parseNpy rejects NumPy files it does not read, naming the file and the reason", () => {
  const why: Record<string, RegExp> = {
    "fortran_2x3.npy": /Fortran/,
    "f64_2x3.npy": /dtype '<f8'/,
    "big_endian_2x3.npy": /dtype '>f4'/,
    "int8_2x3.npy": /dtype '\|i1'/,
    "structured.npy": /structured dtype/,
  };
  assert.deepEqual(Object.keys(why).sort(), [...expected._rejected].sort());
  for (const [name, re] of Object.entries(why)) rejects(read(name), name, "UNSUPPORTED", re);
});

Deno.test("parseNpy rejects truncated, padded and hostile files with a typed error", () => {
  const good = read("v1_2x3.npy");
  rejects(good.subarray(0, good.length - 1), "cut.npy", "DATASET", /needs 24 data bytes.*has 23 \(truncated\)/);
  rejects(new Uint8Array([...good, 0, 0, 0, 0]), "long.npy", "DATASET", /trailing bytes/);
  rejects(good.subarray(0, 40), "header-cut.npy", "DATASET", /header claims/);
  rejects(good.subarray(0, 9), "tiny.npy", "DATASET", /\\x93NUMPY/);
  rejects(new TextEncoder().encode("not a numpy file at all"), "text.npy", "DATASET", /\\x93NUMPY/);
  const v9 = good.slice();
  v9[6] = 9;
  rejects(v9, "v9.npy", "UNSUPPORTED", /version 9/);
  const f4 = "'descr': '<f4', 'fortran_order': False";
  rejects(npy(`{${f4}, 'shape': (-1, 3), }`), "neg.npy", "DATASET", /dimension "-1"/);
  rejects(npy(`{${f4}, 'shape': (2.5,), }`), "frac.npy", "DATASET", /dimension "2.5"/);
  rejects(npy(`{${f4}, 'shape': (99999999, 99999999, 99999999), }`), "huge.npy", "DATASET", /needs|too large/);
  rejects(npy(`{${f4}, 'shape': 6, }`), "notuple.npy", "DATASET", /not a tuple/);
  rejects(npy(`{'descr': '<f4', 'shape': (2,), }`), "nofortran.npy", "DATASET", /lacks/);
  rejects(npy(`{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }`), "maybe.npy", "DATASET", /Maybe/);
  rejects(npy(`['descr', '<f4']`), "list.npy", "DATASET", /not a dict/);
  rejects(
    npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }`, new Uint8Array(4), 2).subarray(0, 10),
    "v2cut.npy",
    "DATASET",
    /cut off/,
  );
  // A header claiming 4 GB: reported, not allocated.
  const big = good.slice(0, 12);
  big[6] = 2;
  new DataView(big.buffer).setUint32(8, 0xffffffff, true);
  rejects(big, "claim.npy", "DATASET", /header claims/);
  // Well-formed hand-written files with the data offset not 4-aligned still read.
  const ok = npy(`{${f4}, 'shape': (2,), }`, new Uint8Array(new Float32Array([1.5, -2]).buffer));
  const odd = new Uint8Array(ok.length + 1);
  odd.set(ok, 1);
  assert.deepEqual([...parseNpy(odd.subarray(1), "odd.npy").data], [1.5, -2]);
  assert.throws(() => parseNpy("x" as unknown as Uint8Array), (e) => e instanceof QuantlabError);
});
