// Shared helpers for the gradient tests: base64 float32 decoding and tolerance comparison.
import assert from "node:assert/strict";

export function b64f32(s: string): Float32Array {
  const bin = atob(s);
  const u = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
  return new Float32Array(u.buffer);
}

/** |got - want| <= rel * max|want| + 1e-7 elementwise. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 1e-6;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= rel * scale + 1e-7,
      `${what}[${i}]: got ${got[i]}, PyTorch ${want[i]} (scale ${scale})`,
    );
  }
}

export const FIXTURES = new URL("../fixtures/", import.meta.url);
// deno-lint-ignore no-explicit-any
export const gradFixtures: any = JSON.parse(await Deno.readTextFile(new URL("grad_fixtures.json", FIXTURES)));
