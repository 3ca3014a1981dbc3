#!/usr/bin/python3
"""PyTorch side of benchmarks/fake_quant_peer.ts (run by it; Debian's /usr/bin/python3, torch 1.13 CPU).

Reads a JSON job on stdin: {"input": path of rows*cols little-endian float32, "rows", "cols", "qmin", "qmax",
"iterations", "warmup", "output": path to write torch's fake-quantized matrix}. Times, on one thread:
  - full: per-channel abs-max (amax of abs along dim 1) + scale + fake_quantize_per_channel_affine
  - fq:   fake_quantize_per_channel_affine alone, scales given
Prints {"full": ms, "fq": ms, "threads": n, "torch": version} (medians).
"""
import json
import sys
import time

import numpy as np
import torch
from peer_timing import median_ms as _median_ms  # noqa: E402


def median_ms(fn):
    return _median_ms(fn, job["iterations"], job["warmup"])


torch.set_num_threads(1)
job = json.load(sys.stdin)
rows, cols, qmin, qmax = job["rows"], job["cols"], job["qmin"], job["qmax"]
w = torch.from_numpy(np.fromfile(job["input"], dtype="<f4").reshape(rows, cols))
eps = torch.tensor(torch.finfo(torch.float32).eps)
zp = torch.zeros(rows, dtype=torch.int32)
half_range = float(qmax - qmin) / 2  # as ObserverBase._calculate_qparams (symmetric)


def full():
    amax = torch.amax(torch.abs(w), dim=1)
    scale = torch.max(amax / half_range, eps)
    return torch.fake_quantize_per_channel_affine(w, scale, zp, 0, qmin, qmax)


scale0 = torch.max(torch.amax(torch.abs(w), dim=1) / half_range, eps)


def fq():
    return torch.fake_quantize_per_channel_affine(w, scale0, zp, 0, qmin, qmax)


res = {"full": median_ms(full), "fq": median_ms(fq), "threads": torch.get_num_threads(), "torch": torch.__version__}
full().numpy().astype("<f4").tofile(job["output"])
print(json.dumps(res))
