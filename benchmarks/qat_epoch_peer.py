#!/usr/bin/python3
"""Runs benchmarks/qat_parity.py unchanged (same arguments) for benchmarks/qat_epoch_peer.ts and adds the process CPU
time of its timed training loop: time.time is wrapped to also record time.process_time, and the pair of calls whose
wall difference is the reported "seconds" gives "cpu_seconds" (all threads of this process). The thread count is
$QAT_PEER_THREADS (qat_parity.py's torch.set_num_threads(2) is redirected to it)."""
import json
import os
import runpy
import sys
import time

calls = []
_wall = time.time


def _recording_time():
    w = _wall()
    calls.append((w, time.process_time()))
    return w


time.time = _recording_time
# qat_parity.py calls torch.set_num_threads(2); the driver's --threads (QAT_PEER_THREADS) wins.
import torch  # noqa: E402

_set_threads = torch.set_num_threads
torch.set_num_threads = lambda n: _set_threads(int(os.environ.get("QAT_PEER_THREADS", n)))
out = []
real_print = print


def _capture(*a, **k):
    out.append(" ".join(str(x) for x in a))


import builtins  # noqa: E402

builtins.print = _capture
sys.argv = [os.path.join(os.path.dirname(__file__), "qat_parity.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
builtins.print = real_print
for line in out:
    r = json.loads(line)
    pairs = ((w0, c0, w1, c1) for i, (w0, c0) in enumerate(calls) for (w1, c1) in calls[i + 1:])
    best = min((abs((w1 - w0) - r["seconds"]), c1 - c0) for w0, c0, w1, c1 in pairs)
    r["cpu_seconds"] = best[1]
    print(json.dumps(r), flush=True)
