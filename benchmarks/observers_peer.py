#!/usr/bin/python3
"""Peer timings for benchmarks/observers_peer.ts: PyTorch observers on the same 1M float32 values.

Reads a JSON job {"path": <float32 file>, "iterations": n} on stdin; prints {name: median ms}.
Single-threaded (OMP/MKL threads 1, torch.set_num_threads(1)) like quantlab.
"""
import json
import sys
import time

import numpy as np
import torch
from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver
from peer_timing import median_ms as _median_ms  # noqa: E402


def median_ms(fn):
    return _median_ms(fn, iters)


torch.set_num_threads(1)
job = json.load(sys.stdin)
x = torch.from_numpy(np.fromfile(job["path"], dtype=np.float32))
iters = int(job.get("iterations", 7))


def hist():
    o = HistogramObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    o(x)
    return o.calculate_qparams()


def minmax():
    o = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    o(x)
    return o.calculate_qparams()


def moving():
    o = MovingAverageMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    o(x)
    return o.calculate_qparams()


scale, _ = hist()
print(json.dumps({
    "histogram": median_ms(hist),
    "minmax": median_ms(minmax),
    "movingaverage": median_ms(moving),
    "histogram_scale": float(scale[0]),
    "torch": torch.__version__,
}))
