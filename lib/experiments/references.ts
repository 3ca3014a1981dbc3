/**
 * The paper's setting and number beside ours: for every claim a report checks, the survey section it comes
 * from (Gholami et al. 2021, "A Survey of Quantization Methods for Efficient Neural Network Inference",
 * arXiv:2103.13630, section numbers of that version) and, where a paper or its reference code reports one, the
 * setting and number it reports. Numbers come from the project's reading notes (`PAPERS.md`, gathered from the
 * methods' own code and papers); none was re-checked at its source for this report, so each is marked
 * "as recorded, not re-verified". Claims the survey makes only qualitatively say so instead of inventing a number.
 *
 * {@link citeFindings} attaches the references to a report's findings (matched by claim text); the report then
 * renders a small paper-vs-ours table under each finding.
 *
 * @module
 */
import type { PaperReference, Report } from "./report.ts";

/** One claim's reference: a pattern on the claim text and what to cite. */
export interface ClaimReference extends PaperReference {
  /** Matches the claim text of the finding (first match wins). */
  readonly claim: RegExp;
}

/** The survey's section titles used below (arXiv:2103.13630). */
const S = {
  uniform: "survey §III-B Uniform quantization",
  symmetric: "survey §III-C Symmetric and asymmetric quantization",
  calibration: "survey §III-D Range calibration algorithms: static vs dynamic quantization",
  granularity: "survey §III-E Quantization granularity",
  nonUniform: "survey §III-F Non-uniform quantization",
  ptq: "survey §III-G2 Post-training quantization",
  zeroShot: "survey §III-G3 Zero-shot quantization",
  stochastic: "survey §III-H Stochastic quantization",
  integer: "survey §IV-A Simulated and integer-only quantization",
  extreme: "survey §IV-E Extreme quantization",
  vq: "survey §IV-F Vector quantization",
} as const;

const QUALITATIVE = "stated qualitatively in the survey; no single number to compare";
const NOTES = "via the project's reading notes (PAPERS.md)";

/**
 * References by experiment id, in the order of each experiment's findings.
 *
 * @example
 * ```ts
 * import { CLAIM_REFERENCES } from "./references.ts";
 * const z = CLAIM_REFERENCES["zero-shot"][0];
 * if (!z.section.includes("§III-G3") || !z.result.includes("77.67")) throw new Error(z.result);
 * ```
 */
export const CLAIM_REFERENCES: Readonly<Record<string, readonly ClaimReference[]>> = Object.freeze({
  uniform: [
    {
      claim: /6 dB per bit/,
      section: S.uniform,
      source: "textbook uniform-quantizer noise model (Bennett 1948), as the survey states it",
      setting: "uniform quantizer, signal not clipped, step small against the signal",
      result: "SQNR grows 6.02 dB per bit (error power / 4 per bit)",
      verified: true,
    },
    {
      claim: /Asymmetric ranges win/,
      section: S.symmetric,
      source: "survey §III-C",
      setting: "one-sided (post-ReLU) activations",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Symmetric ranges are nearly as good/,
      section: S.symmetric,
      source: "survey §III-C",
      setting: "zero-centred weights",
      result: QUALITATIVE,
      verified: true,
    },
  ],
  calibration: [
    {
      claim: /Clipping beats min-max/,
      section: S.calibration,
      source: "survey §III-D (ACIQ, OMSE, KL calibration)",
      setting: "low bit widths, heavy-tailed values",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Dynamic quantization is more accurate/,
      section: S.calibration,
      source: "survey §III-D",
      setting: "ranges computed per input at run time",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Dynamic quantization costs run time/,
      section: S.calibration,
      source: "survey §III-D",
      setting: "ranges computed per input at run time",
      result: QUALITATIVE,
      verified: true,
    },
  ],
  granularity: [
    {
      claim: /Per-channel scales/,
      section: S.granularity,
      source: "survey §III-E",
      setting: "convolution weights, 4 bits",
      result: `${QUALITATIVE} (per-channel is "the current standard")`,
      verified: true,
    },
    {
      claim: /Finer groups/,
      section: S.granularity,
      source: "survey §III-E (group-wise quantization, Q-BERT)",
      setting: "groups within a channel",
      result: QUALITATIVE,
      verified: true,
    },
  ],
  "stochastic-rounding": [
    {
      claim: /unbiased/,
      section: S.stochastic,
      source: "survey §III-H",
      setting: "INT(x) = floor(x) or ceil(x) with probability of the fractional part",
      result: "unbiased by construction (E[INT(x)] = x)",
      verified: true,
    },
    {
      claim: /costs variance/,
      section: S.stochastic,
      source: `AdaRound (Nagel et al. 2020), Table 1; ${NOTES}`,
      setting: "ResNet-18, ImageNet, only the first layer at 4 bits",
      result: "nearest 52.29 %; stochastic 52.06 ± 5.52 % (spread over samples); best stochastic 63.06 %",
      verified: false,
    },
    {
      claim: /round-to-nearest stalls/,
      section: S.stochastic,
      source: "survey §III-H (Gupta et al. 2015, low-precision training)",
      setting: "training with low-precision weights",
      result: QUALITATIVE,
      verified: true,
    },
  ],
  "non-uniform": [
    {
      claim: /Lloyd-Max/,
      section: S.nonUniform,
      source: "survey §III-F",
      setting: "bell-shaped weights, same bit width",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Against the plain min-max/,
      section: S.nonUniform,
      source: "survey §III-F",
      setting: "bell-shaped weights",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Power-of-two/,
      section: S.nonUniform,
      source: "survey §III-F (logarithmic quantization)",
      setting: "bell-shaped weights",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Binary codes/,
      section: S.nonUniform,
      source: "survey §III-F (LQ-Nets, binary codes)",
      setting: "sums of ±1 bases",
      result: QUALITATIVE,
      verified: true,
    },
  ],
  "vector-quantization": [
    {
      claim: /PQ (reconstructs|beats)/,
      section: S.vq,
      source: `"And the Bit Goes Down" (Stock et al. 2020, facebookresearch/kill-the-bits); ${NOTES}`,
      setting: "ResNet-18 ImageNet, PQ of conv layers (256 centroids, block 9), with fine-tuning",
      result: "69.76 % float -> 65.81 % at 29x compression (1.54 MB), 61.18 % at 43x",
      verified: false,
    },
    {
      claim: /codebooks are the price/,
      section: S.vq,
      source: "survey §IV-F",
      setting: "codebook cost against layer size",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /below 1 bit per weight/,
      section: S.vq,
      source: `"And the Bit Goes Down"; ${NOTES}`,
      setting: "ResNet-50 ImageNet",
      result: "76.15 % -> 73.79 % at 19x, 68.21 % at 31x compression",
      verified: false,
    },
  ],
  "binary-ternary": [
    {
      claim: /Without training/,
      section: S.extreme,
      source: `BinaryConnect (Courbariaux et al. 2015) and BinaryNet, trained; ${NOTES}`,
      setting: "trained binary networks (our check is without training)",
      result: "BinaryConnect CIFAR-10 error 8.27 %; BinaryNet MNIST MLP 0.96 % error",
      verified: false,
    },
    {
      claim: /XNOR-Net/,
      section: S.extreme,
      source: "survey §IV-E (XNOR-Net scaling factor)",
      setting: "binary weights with a per-channel scale",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Ternary beats binary/,
      section: S.extreme,
      source: `Brevitas BNN-PYNQ; ${NOTES}`,
      setting: "CIFAR-10 CNV, trained",
      result: "1W1A 84.22 %, 2W2A 89.03 %",
      verified: false,
    },
    {
      claim: /TWN/,
      section: S.extreme,
      source: `TWN (Li et al. 2016); ${NOTES}`,
      setting: "threshold 0.7·mean|W|; LeNet-5 on MNIST (a reimplementation)",
      result: "ternary 99.14 % vs float 99.25 %",
      verified: false,
    },
    {
      claim: /TTQ/,
      section: S.extreme,
      source: `TTQ (Zhu et al. 2017, czhu95/ternarynet); ${NOTES}`,
      setting: "CIFAR-10, learned positive/negative scales, first and last layers float",
      result: "error ResNet-20 8.23 -> 8.87 %, ResNet-56 6.80 -> 6.44 %",
      verified: false,
    },
  ],
  "ptq-onnx": [
    {
      claim: /reproduces PyTorch/,
      section: S.ptq,
      source: "PyTorch eager-mode min-max PTQ of the same model (tests/fixtures/make_byom.py, committed reference)",
      setting: "the same ONNX model, calibration and test images",
      result: "PyTorch's top-1 per row is the reference (datasets/models/byom_reference.json)",
      verified: true,
    },
    {
      claim: /Per-channel weight scales/,
      section: S.granularity,
      source: "survey §III-E",
      setting: "convolution weights, 4 bits",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /8-bit PTQ/,
      section: S.ptq,
      source: `HAWQ-v3 (Yao et al. 2021, Zhen-Dong/HAWQ); ${NOTES}`,
      setting: "ResNet-18, ImageNet, W8A8",
      result: "71.56 % vs float 71.47 %",
      verified: false,
    },
    {
      claim: /clipping calibrator/,
      section: S.calibration,
      source: "survey §III-D",
      setting: "low activation bits",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /bias correction/i,
      section: S.ptq,
      source: "survey §III-G2 (Banner et al., Nagel et al. DFQ)",
      setting: "4-bit weights",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Cross-layer equalization/,
      section: S.ptq,
      source: "survey §III-G2 (DFQ, Nagel et al. 2019)",
      setting: "depthwise-separable networks with extreme per-channel ranges",
      result: QUALITATIVE,
      verified: true,
    },
  ],
  "integer-only": [
    {
      claim: /matches simulation/,
      section: S.integer,
      source: "survey §IV-A (dyadic requantization, HAWQ-v3)",
      setting: "integer-only kernels vs fake quantization",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /faster/,
      section: S.integer,
      source: `HAWQ-v3; ${NOTES}`,
      setting: "ResNet-18, batch 8, NVIDIA T4 (TVM)",
      result: "float 9.7 ms, W8A8 3.3 ms (2.9x), W4A4 2.2 ms",
      verified: false,
    },
  ],
  "zero-shot": [
    {
      claim: /W8A8 is within 1 point/,
      section: S.zeroShot,
      source: `ZeroQ (Cai et al. 2020, amirgholami/ZeroQ); ${NOTES}`,
      setting: "ImageNet, W8A8, distilled data, no real data",
      result: "ResNet-50 77.67 % vs float 77.72 %; MobileNetV2 72.91 % vs 73.03 %",
      verified: false,
    },
    {
      claim: /better than Gaussian noise/,
      section: S.zeroShot,
      source: `ZeroQ; ${NOTES}`,
      setting: "ImageNet; the margin over noise depends strongly on the seed on small networks",
      result: "distilled data beats Gaussian noise (ImageNet-scale); report over seeds",
      verified: false,
    },
    {
      claim: /Quantizing the input/,
      section: S.zeroShot,
      source: "ZeroQ's code keeps the network input in float",
      setting: "input quantized with the distilled range",
      result: QUALITATIVE,
      verified: true,
    },
    {
      claim: /Level 2/,
      section: S.zeroShot,
      source: "survey §III-G3 (level 2: fine-tuning on synthetic data)",
      setting: "fine-tuning with synthetic data",
      result: QUALITATIVE,
      verified: true,
    },
  ],
});

/**
 * Attach {@link CLAIM_REFERENCES} to the findings of `report` (matched by claim text; findings already cited or
 * without a match are left alone). Returns how many findings were cited.
 *
 * @example
 * ```ts
 * import { citeFindings } from "./references.ts";
 * import { Report } from "./report.ts";
 * const r = new Report("zero-shot", "Z", "c").finding("ZeroQ-calibrated W8A8 is within 1 point of real data", true, "e");
 * if (citeFindings(r) !== 1 || !r.findings[0].reference?.result.includes("77.67")) throw new Error("bad");
 * ```
 */
export function citeFindings(report: Report): number {
  // Report ids use "-" or "_" (e.g. "non_uniform" for the "non-uniform" experiment).
  const refs = CLAIM_REFERENCES[report.id] ?? CLAIM_REFERENCES[report.id.replace(/_/g, "-")] ?? [];
  let n = 0;
  report.findings.forEach((f, i) => {
    if (f.reference) return;
    const ref = refs.find((r) => r.claim.test(f.claim));
    if (!ref) return;
    const { claim: _claim, ...reference } = ref;
    report.cite(i, reference);
    n++;
  });
  return n;
}
