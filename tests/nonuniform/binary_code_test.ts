import assert from "node:assert";
import { binaryCodeLevels, fitBinaryCode } from "../../lib/nonuniform/binary_code.ts";
import { sortedSlot } from "../../lib/nonuniform/sorted_slot.ts";
import { nonUniform } from "../../lib/nonuniform/nonuniform_quantizer.ts";
import { loadFixture, mseOf, normal } from "./helpers.ts";

Deno.test("binary codes agree with a dense NumPy implementation of Xu et al. 2018 (fixture)", () => {
  const fx = loadFixture();
  for (const c of fx.binary_code) {
    const x = Float64Array.from(Float32Array.from(fx.data[c.data]));
    const r = fitBinaryCode(sortedSlot(x), c.bits, c.rounds);
    c.alphas.forEach((a, i) => {
      assert.ok(
        Math.abs(r.alphas[i] - a) <= 1e-9 * Math.max(1, Math.abs(a)),
        `${c.data}/${c.bits}/${c.rounds}: alpha ${i} ${r.alphas[i]} vs ${a}`,
      );
    });
    const sse = r.history[r.history.length - 1];
    assert.ok(Math.abs(sse - c.sse) <= 1e-9 * c.sse, `${c.data}/${c.bits}/${c.rounds}: sse ${sse} vs ${c.sse}`);
  }
});

Deno.test("binary codes: closed forms, monotone error, levels as sums of bases", () => {
  // one basis: alpha = mean|x| (greedy and least squares agree)
  const x = Float64Array.from([-3, -1, 0, 2, 6]);
  const r1 = fitBinaryCode(sortedSlot(x.slice()), 1, 5);
  assert.strictEqual(r1.alphas[0], 12 / 5);
  // greedy by hand: alpha1 = mean|x| = 2.4; residuals x - 2.4 sign(x) = [-0.6, 1.4, -2.4, -0.4, 3.6]
  const g = fitBinaryCode(sortedSlot(x.slice()), 2, 0);
  assert.ok(Math.abs(g.alphas[0] - 2.4) < 1e-12 && Math.abs(g.alphas[1] - 8.4 / 5) < 1e-12, String(g.alphas));
  // levels are sums of bases with signs from the code bits
  assert.deepStrictEqual(Array.from(binaryCodeLevels([4, 2, 1])), [-7, 1, -3, 5, -5, 3, -1, 7]);
  const w = normal(20000, 4);
  for (const bits of [2, 3, 4, 6]) {
    const r = fitBinaryCode(sortedSlot(Float64Array.from(w)), bits, 50);
    for (let i = 1; i < r.history.length; i++) {
      assert.ok(r.history[i] <= r.history[i - 1] * (1 + 1e-12), `bits ${bits}`);
    }
  }
  // a degenerate slot (one distinct value) keeps finite bases and reproduces it
  const fq = nonUniform().levels("binary-code").bits(3).fit([0.5, 0.5, 0.5]);
  assert.ok(fq.params.every(Number.isFinite));
  assert.ok(Math.abs(fq.fakeQuantize([0.5]).data[0] - 0.5) < 1e-6);
});

Deno.test("binary codes: refinement beats greedy; error falls with bits", () => {
  const w = normal(50000, 8);
  let prev = Infinity;
  for (const bits of [1, 2, 3, 4, 5]) {
    const greedy = nonUniform().levels("binary-code").bits(bits).iterations(0).fit(w);
    const refined = nonUniform().levels("binary-code").bits(bits).fit(w);
    const eg = mseOf(w, greedy.fakeQuantize(w).data), er = mseOf(w, refined.fakeQuantize(w).data);
    assert.ok(er <= eg * (1 + 1e-9), `bits ${bits}: refined ${er} vs greedy ${eg}`);
    assert.ok(er < prev, `bits ${bits}: ${er} vs ${prev}`);
    prev = er;
  }
});
