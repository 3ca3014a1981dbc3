#!/usr/bin/python3
"""PyTorch reimplementation of ZeroQ's distillation (classification/distill_data.py) for quantlab's benchmark.

Reads a JSON job on stdin: {"model": path to an ONNX model with BatchNorm, "batch": 32, "iterations": 500,
"threads": 2}. Builds the network as a torch module from the ONNX graph (Conv, BatchNormalization in eval mode,
Relu, Add, GlobalAveragePool, Flatten, Gemm, Identity), hooks every BatchNorm input (the Conv output, as ZeroQ's
forward hooks on Conv2d), and runs ZeroQ's loop exactly: the (randint(255) - 127.5) / 5418.75 init, Adam lr 0.5,
ReduceLROnPlateau(min_lr=1e-4, patience=100) stepped with the loss, own_loss terms with eps 1e-6 plus the input
term. Prints {"distill_ms": ..., "loss0": ..., "lossFinal": ...} on stdout. Run by benchmarks/zeroq_peer.ts.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from make_zeroq_fixtures import OnnxTorch, zeroq_loss  # noqa: E402


def main():
    job = json.load(sys.stdin)
    torch.set_num_threads(int(job.get("threads", 2)))
    torch.manual_seed(0)
    net = OnnxTorch(job["model"])
    shape = [d.dim_value for d in net.m.graph.input[0].type.tensor_type.shape.dim][1:]
    batch, iters = int(job.get("batch", 32)), int(job.get("iterations", 500))
    x = ((torch.randint(high=255, size=[batch, *shape]).float() - 127.5) / 5418.75).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.5)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, min_lr=1e-4, verbose=False, patience=100)
    t0 = time.perf_counter()
    loss0 = None
    for _ in range(iters):
        opt.zero_grad()
        loss, _, _ = zeroq_loss(net, x)
        loss.backward()
        opt.step()
        sched.step(loss.item())
        loss0 = loss.item() if loss0 is None else loss0
    ms = (time.perf_counter() - t0) * 1000
    with torch.no_grad():
        final = zeroq_loss(net, x)[0].item()
    print(json.dumps({"distill_ms": ms, "loss0": loss0, "lossFinal": final}))


if __name__ == "__main__":
    main()
