"""Entropic OT loss, forward + backward: cmkd_lab's ``ot_cost`` against POT's
``ot.sinkhorn2``, side by side in one run (prints one JSON line per figure).

For each size n (n × n points in ``--dim`` dimensions, float32) and setting:

* ``l2-median``: Euclidean cost, ε = 0.1 × the batch's median cost (the
  package default), and
* ``cosine-abs``: cosine cost, absolute ε = 0.1 (the public code's setting;
  the cost range is known, so the scaling form is chosen without reading the
  device),

it times (wall clock on a GPU; process CPU time on the CPU, with one torch
thread, so other load on a shared machine does not skew the ratio) ``pot``
(``ot.sinkhorn2(a, b, M, reg, numItermax=100)`` on torch tensors, gradient
by back-propagation through its loop, its default stopping check every 10
iterations) and cmkd_lab's solvers (``auto``, ``scaling``,
``log``; ``--compile`` adds their ``torch.compile``d versions), 100
iterations each, envelope gradient. Each row gives the median milliseconds,
the speed-up over POT, and the relative difference of the value from POT's
(same float32 inputs) and from a float64 POT reference with exactly 100
iterations.

Usage::

    python benchmarks/bench_ot.py                       # CPU: n = 64, 256, 1024
    python benchmarks/bench_ot.py --device cuda --sizes 64,256,1024,4096 --compile
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch


def _timer(fn, device, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    ts, cs = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    # On the CPU (one torch thread) process CPU time is the work done, robust to other load on the machine.
    return 1e3 * statistics.median(cs if device.type == "cpu" else ts)


def bench(n, dim, setting, device, *, repeats, solvers, compile, pot, iters=100, seed=0):
    import ot
    from cmkd_lab.align import cost_matrix, ot_cost
    g = torch.Generator().manual_seed(seed + n)
    x = torch.randn(n, dim, generator=g).to(device)
    y = (torch.randn(n, dim, generator=g) + 0.1).to(device)
    cost = "l2" if setting == "l2-median" else "cosine"
    eps_units = "median" if setting == "l2-median" else "absolute"
    M64 = cost_matrix(x.double(), y.double(), cost)  # float64 reference, on the same device
    reg = 0.1 * float(M64.median()) if eps_units == "median" else 0.1
    w64 = torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
    ref64 = float(ot.sinkhorn2(w64, w64, M64, reg=reg, numItermax=iters, stopThr=0))
    rows, base = [], {}

    def row(name, ms, value):
        r = {"bench": "ot", "device": str(device), "n": n, "dim": dim, "setting": setting, "variant": name,
             "ms_fwd_bwd": round(ms, 3), "clock": "process-cpu" if device.type == "cpu" else "wall",
             "rel_diff_vs_float64": abs(value - ref64) / abs(ref64)}
        if "pot" in base:
            r["rel_diff_vs_pot"] = abs(value - base["pot"][1]) / abs(base["pot"][1])
            r["speedup_vs_pot"] = round(base["pot"][0] / ms, 2)
        rows.append(r)
        print(json.dumps(r), flush=True)

    if pot:
        w = torch.full((n,), 1.0 / n, device=device)

        def run_pot():
            z = x.clone().requires_grad_()
            v = ot.sinkhorn2(w, w, cost_matrix(z, y, cost), reg=reg, numItermax=iters)
            v.backward()
            return v

        with _quiet():
            ms = _timer(run_pot, device, max(3, repeats // 4))
            base["pot"] = (ms, float(run_pot()))
        row("pot", ms, base["pot"][1])
    for comp in ((False, True) if compile else (False,)):
        for solver in solvers:
            def run_ours():
                z = x.clone().requires_grad_()
                v = ot_cost(z, y, cost=cost, eps=0.1, eps_units=eps_units, max_iter=iters, warn=False,
                            solver=solver, compile=comp)
                v.backward()
                return v

            try:
                ms = _timer(run_ours, device, repeats, warmup=3 if comp else 2)
            except Exception as e:  # e.g. no working compiler for compile=True
                print(json.dumps({"bench": "ot", "device": str(device), "n": n, "setting": setting,
                                  "variant": f"{solver}{'+compile' if comp else ''}",
                                  "error": f"{type(e).__name__}: {str(e)[:200]}"}), flush=True)
                continue
            row(f"{solver}{'+compile' if comp else ''}", ms, float(run_ours()))
    return rows


class _quiet:
    def __enter__(self):
        import warnings
        self.w = warnings.catch_warnings()
        self.w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a):
        self.w.__exit__(*a)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--sizes", default="", help="comma-separated n (default CPU 64,256,1024; GPU 64,256,1024,4096)")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--settings", default="l2-median,cosine-abs")
    p.add_argument("--solvers", default="auto,scaling,log")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--compile", action="store_true", help="also time the torch.compile'd iterations")
    p.add_argument("--no-pot", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads on the CPU (0 = leave)")
    a = p.parse_args(argv)
    from cmkd_lab.distill import resolve_device
    device = resolve_device(a.device)
    if a.threads and device.type == "cpu":
        torch.set_num_threads(a.threads)
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()] or (
        [64, 256, 1024, 4096] if device.type == "cuda" else [64, 256, 1024])
    for n in sizes:
        for setting in [s.strip() for s in a.settings.split(",") if s.strip()]:
            bench(n, a.dim, setting, device, repeats=a.repeats if n <= 1024 or device.type == "cuda" else 5,
                  solvers=[s.strip() for s in a.solvers.split(",") if s.strip()], compile=a.compile,
                  pot=not a.no_pot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
