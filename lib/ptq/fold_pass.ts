/**
 * The BatchNorm folding pass (stage `graph`, first by default): every inference-mode BatchNormalization after a
 * Conv or Gemm is folded into that layer's weight and bias (lib/onnx/fold_bn.ts), so the plan quantizes the
 * folded weights as integer kernels see them.
 *
 * @module
 */
import { foldBatchNorm } from "../onnx/fold_bn.ts";
import { type PtqPass, type PtqState, registerPass, timedPass } from "./pass.ts";

/**
 * The BatchNorm folding pass.
 *
 * @example
 * ```ts
 * import { foldBatchNormPass } from "./fold_pass.ts";
 * if (foldBatchNormPass().stage !== "graph") throw new Error("bad");
 * ```
 */
export function foldBatchNormPass(): PtqPass {
  return {
    name: "foldBatchNorm",
    stage: "graph",
    run(state: PtqState): Promise<PtqState> {
      return timedPass("foldBatchNorm", state, () => {
        const r = foldBatchNorm(state.model);
        return Promise.resolve({
          patch: { model: r.model },
          summary: `${r.folded.length} BatchNormalization folded${
            r.skipped.length ? `, ${r.skipped.length} kept` : ""
          }`,
          details: { folded: r.folded, skipped: r.skipped },
        });
      });
    },
    toString: () => "foldBatchNorm()",
  };
}

registerPass("foldBatchNorm", () => foldBatchNormPass());
