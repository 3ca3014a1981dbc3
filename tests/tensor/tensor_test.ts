import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { asFloatTensor, dtypeOf, sizeOf, Tensor } from "../../lib/tensor/tensor.ts";

Deno.test("construction, dtypes, shapes, no copy", () => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const t = Tensor.from(data, [2, 3]);
  assert.equal(t.data, data);
  assert.deepEqual(t.shape, [2, 3]);
  assert.ok(Object.isFrozen(t.shape));
  assert.equal(t.rank, 2);
  assert.equal(t.size, 6);
  assert.equal(t.toString(), "Tensor<float32>[2, 3]");
  assert.equal(t.reshape([3, 2]).data, data);
  const c = t.clone();
  assert.notEqual(c.data, data);
  assert.deepEqual(c.toArray(), [1, 2, 3, 4, 5, 6]);
  assert.equal(Tensor.from(t), t);
  assert.deepEqual(Tensor.from([1, 2]).shape, [2]);
  assert.equal(new Tensor(new Float32Array([7]), []).rank, 0);
  assert.equal(sizeOf([]), 1);
  assert.equal(sizeOf([2, 0, 3]), 0);
  for (
    const [d, A] of [["float32", Float32Array], ["int8", Int8Array], ["uint8", Uint8Array], [
      "int32",
      Int32Array,
    ]] as const
  ) {
    const z = Tensor.zeros([2, 2], d);
    assert.equal(z.dtype, d);
    assert.ok(z.data instanceof A);
    assert.equal(dtypeOf(new A(1)), d);
  }
  assert.equal(Tensor.zeros([3]).dtype, "float32");
});

Deno.test("bad input: shape mismatch, negative or fractional dims, wrong dtype", () => {
  const code = (c: string) => (e: unknown) => e instanceof QuantlabError && e.code === c;
  assert.throws(
    () => new Tensor(new Float32Array(5), [2, 3], "x0"),
    (e: unknown) => code("SHAPE_MISMATCH")(e) && (e as Error).message.includes("x0"),
  );
  assert.throws(() => new Tensor(new Float32Array(0), [-1, 0]), code("SHAPE_MISMATCH"));
  assert.throws(() => new Tensor(new Float32Array(3), [1.5, 2]), code("SHAPE_MISMATCH"));
  assert.throws(() => Tensor.from([1, 2, 3]).reshape([2, 2]), code("SHAPE_MISMATCH"));
  assert.throws(() => dtypeOf(new Float64Array(1) as unknown as Float32Array), code("INVALID_ARGUMENT"));
  assert.throws(
    () => asFloatTensor(Tensor.zeros([2], "int8") as unknown as Tensor<"float32">, "acts"),
    (e: unknown) => code("INVALID_ARGUMENT")(e) && (e as Error).message.includes("acts"),
  );
  assert.equal(asFloatTensor([1, 2]).dtype, "float32");
});
