"""Median wall time for the Python peer scripts (the twin of timeMs in peer_harness.ts)."""
import time


def median_ms(fn, iterations=7, warmup=2):
    """Median milliseconds of `fn` over `iterations` runs after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]
