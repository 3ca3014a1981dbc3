#!/usr/bin/python3
"""PyTorch 1.13 peer of benchmarks/train_step_peer.ts: the same ResNet-8 (16/32/64 channels, BatchNorm) as
lib/models/resnet8.ts, one training step (forward, cross-entropy, backward, SGD update) at batch 128, and a full
Fashion-MNIST epoch, on the same number of threads.

Reads a JSON job on stdin: {"threads": 2, "batch": 128, "warmup": 3, "steps": 20, "epoch": true,
"train_epochs": 0, "data": "/usr/share/datasets/fashion-mnist"} and prints JSON:
{"torch": version, "step_ms": median, "step_all_ms": [...], "epoch_s": seconds or null, "params": n,
 "state_dict": [[name, shape], ...], "accuracy": [per trained epoch]}.

With "train_epochs" > 0 it trains with quantlab's reference recipe (SGD momentum 0.9 Nesterov, weight decay 5e-4,
one-cycle max lr 0.1, seeded order) and reports test accuracy after each epoch: a check that the recipe reaches
the target in PyTorch too.

Run alone: echo '{"threads": 2}' | /usr/bin/python3 benchmarks/train_step_peer.py

Serve mode ({"serve": true, ...} as the first line): stays up and answers one JSON command per stdin line, so a
benchmark can interleave PyTorch and quantlab blocks on a shared machine: {"cmd": "steps", "n": 10} -> {"step_all_ms":
[...]} (synthetic batch, as above); {"cmd": "epoch", "seed": s} -> {"epoch_s": wall seconds of one epoch over the
training set in a seeded order (SGD lr 0.05, momentum 0.9 Nesterov, weight decay 5e-4, same as quantlab's side),
"loss": mean training loss}; {"cmd": "quit"}.
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(folder, split):
    x = load_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz")).astype(np.float32)
    y = load_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64)
    x = (x / np.float32(255.0) - np.float32(MEAN)) / np.float32(STD)
    return torch.from_numpy(x[:, None].copy()), torch.from_numpy(y.copy())


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential()
            self.down.add_module("conv", nn.Conv2d(cin, cout, 1, stride, 0, bias=False))
            self.down.add_module("bn", nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.layer1 = Block(16, 16, 1)
        self.layer2 = Block(16, 32, 2)
        self.layer3 = Block(32, 64, 2)
        self.fc = nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def serve(job):
    threads = int(job.get("threads", 2))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch = int(job.get("batch", 128))
    model = ResNet8()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    data = None
    test = None
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        if cmd["cmd"] == "steps":
            times = []
            for _ in range(int(cmd.get("n", 10))):
                t0 = time.perf_counter()
                step(x, y)
                times.append((time.perf_counter() - t0) * 1000)
            print(json.dumps({"step_all_ms": times}), flush=True)
        elif cmd["cmd"] == "epoch":
            if data is None:
                data = load(job.get("data", "/usr/share/datasets/fashion-mnist"), "train")
            xs, ys = data
            perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(int(cmd.get("seed", 0))))
            t0 = time.perf_counter()
            total, seen = 0.0, 0
            for b in range(0, len(xs), batch):
                idx = perm[b:b + batch]
                if len(idx) < 2:
                    continue
                total += float(step(xs[idx], ys[idx])) * len(idx)
                seen += len(idx)
            epoch_s = time.perf_counter() - t0
            if test is None:
                test = load(job.get("data", "/usr/share/datasets/fashion-mnist"), "t10k")
            model.eval()
            with torch.no_grad():
                correct = sum(int((model(test[0][i:i + 500]).argmax(1) == test[1][i:i + 500]).sum())
                              for i in range(0, len(test[0]), 500))
            model.train()
            print(json.dumps({"epoch_s": epoch_s, "loss": total / seen, "test_accuracy": correct / len(test[0])}),
                  flush=True)


def main():
    first = sys.stdin.readline()
    try:
        job = json.loads(first or "{}")
    except ValueError:
        job = json.loads(first + sys.stdin.read())
    if job.get("serve"):
        serve(job)
        return
    threads = int(job.get("threads", 2))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch = int(job.get("batch", 128))
    folder = job.get("data", "/usr/share/datasets/fashion-mnist")
    model = ResNet8()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    out = {
        "torch": torch.__version__,
        "threads": threads,
        "params": sum(p.numel() for p in model.parameters()),
        "state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")],
    }

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    model.train()
    for _ in range(int(job.get("warmup", 3))):
        step(x, y)
    times = []
    for _ in range(int(job.get("steps", 20))):
        t0 = time.perf_counter()
        step(x, y)
        times.append((time.perf_counter() - t0) * 1000)
    out["step_all_ms"] = times
    out["step_ms"] = float(np.median(times))

    out["epoch_s"] = None
    train_epochs = int(job.get("train_epochs", 0))
    if job.get("epoch", True) or train_epochs > 0:
        xs, ys = load(folder, "train")
        xt, yt = load(folder, "t10k")
        epochs = max(1, train_epochs)
        model = ResNet8()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        steps_per_epoch = (len(xs) + batch - 1) // batch
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(job.get("max_lr", 0.1)),
                                                    total_steps=epochs * steps_per_epoch)
        acc = []
        for e in range(epochs):
            model.train()
            perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(100 + e))
            t0 = time.perf_counter()
            for b in range(0, len(xs), batch):
                idx = perm[b:b + batch]
                if len(idx) < 2:
                    continue
                step(xs[idx], ys[idx])
                sched.step()
            if e == 0:
                out["epoch_s"] = time.perf_counter() - t0
            if train_epochs > 0:
                model.eval()
                with torch.no_grad():
                    correct = sum(int((model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum())
                                  for i in range(0, len(xt), 1000))
                acc.append(correct / len(xt))
                print(f"epoch {e + 1}: test accuracy {acc[-1]:.4f} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)
        out["accuracy"] = acc
    print(json.dumps(out))


if __name__ == "__main__":
    main()
