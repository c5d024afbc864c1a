"""Speed of ``explore_gap``, part by part; prints one JSON object per line.

Two sets of n × n points in dimension D (default 10,000 × 10,000, D = 64):
K Gaussian classes in A; B is A rotated, shifted and noised (so row i of B
is the partner of row i of A). Three cases: unlabelled, labelled, labelled
and paired. The quadratic parts (MMD tests, exact and entropic OT, purity,
retrieval, CKA, Procrustes) run on a stratified subsample of ``max_points``
per set; centroids, the gap vector and the linear classifiers use every row.
``timings_s`` holds the seconds of each part as ``explore_gap`` measured them.

Usage::

    python benchmarks/bench_gap.py                    # 10k x 10k, D = 64, max_points 2000
    python benchmarks/bench_gap.py --max-points 5000  # a larger subsample (exact OT grows as N^3)
    python benchmarks/bench_gap.py --quick            # 2k x 2k (a smoke run)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch


def emit(**kw):
    print(json.dumps(kw), flush=True)


def data(n: int, d: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.normal(size=(k, d)) * 1.5
    a = centres[y] + rng.normal(size=(n, d))
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    b = a @ q + 0.8 + 0.5 * rng.normal(size=(n, d))
    return a.astype(np.float32), b.astype(np.float32), y


def main(argv=None):
    from cmkd_lab import explore_gap
    from cmkd_lab.distill.runtime import resolve_device

    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--classes", type=int, default=6)
    p.add_argument("--max-points", dest="max_points", type=int, default=2000)
    p.add_argument("--permutations", type=int, default=200)
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    n = 2000 if args.quick else args.n
    dev = resolve_device(args.device)
    emit(bench="env", device=str(dev), gpu=torch.cuda.get_device_name(0) if dev.type == "cuda" else None,
         cpu=platform.processor() or platform.machine(), cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
         torch=torch.__version__)
    a, b, y = data(n, args.dim, args.classes)
    explore_gap(a[:200], b[:200], y_a=y[:200], y_b=y[:200], pairs=True, n_permutations=10, cv=2,
                device=args.device)  # warm-up (imports, solver set-up)
    for case, kw in (("unlabelled", {}), ("labelled", dict(y_a=y, y_b=y)),
                     ("labelled+paired", dict(y_a=y, y_b=y, pairs=True))):
        t = time.perf_counter()
        r = explore_gap(a, b, max_points=args.max_points, n_permutations=args.permutations, device=args.device, **kw)
        wall = time.perf_counter() - t
        emit(bench="explore_gap", case=case, n_a=n, n_b=n, dim=args.dim, classes=args.classes,
             max_points=args.max_points, n_permutations=args.permutations, device=str(dev), wall_s=round(wall, 2),
             timings_s=r["timings_s"], subsample=[r["subsample"]["a"], r["subsample"]["b"], r["subsample"]["pairs"]],
             headline=r["headline"])


if __name__ == "__main__":
    main()
