"""faiss peer for benchmarks/pq_peer.ts: ProductQuantizer train + encode on the same float32 data.

Reads a JSON job on stdin: {"path": raw little-endian float32 file, "n": rows, "d": dim, "M": subvectors,
"nbits": log2(K), "iterations": k-means iterations, "maxPointsPerCentroid": int, "seed": int, "threads": int,
"reps": repetitions}. Prints JSON {"train_ms", "encode_ms", "decode_ms" (medians over reps), "mse" (mean
squared reconstruction error per vector), "faiss"} on stdout. Run with Debian's /usr/bin/python3.
"""
import json
import statistics
import sys
import time

import faiss
import numpy as np

job = json.load(sys.stdin)
faiss.omp_set_num_threads(int(job.get("threads", 1)))
n, d = int(job["n"]), int(job["d"])
x = np.fromfile(job["path"], dtype="<f4", count=n * d).reshape(n, d)

train, encode, decode = [], [], []
for _ in range(int(job.get("reps", 1))):
    pq = faiss.ProductQuantizer(d, int(job["M"]), int(job["nbits"]))
    pq.cp.niter = int(job["iterations"])
    pq.cp.max_points_per_centroid = int(job["maxPointsPerCentroid"])
    pq.cp.seed = int(job["seed"])
    t0 = time.perf_counter()
    pq.train(x)
    t1 = time.perf_counter()
    codes = pq.compute_codes(x)
    t2 = time.perf_counter()
    y = pq.decode(codes)
    t3 = time.perf_counter()
    train.append((t1 - t0) * 1e3)
    encode.append((t2 - t1) * 1e3)
    decode.append((t3 - t2) * 1e3)
mse = float(((x.astype(np.float64) - y) ** 2).sum(axis=1).mean())
print(json.dumps({
    "train_ms": statistics.median(train),
    "encode_ms": statistics.median(encode),
    "decode_ms": statistics.median(decode),
    "train_all_ms": train,
    "encode_all_ms": encode,
    "mse": mse,
    "faiss": faiss.__version__,
}))
