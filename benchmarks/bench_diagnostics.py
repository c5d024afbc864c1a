"""Speed of the diagnostics; prints one JSON object per line.

* the MMD permutation test (unbiased MMD², 3 RBF bandwidths, blockwise pooled
  kernel computed once, permutations by one matrix product per block) on
  n × n features: 10,000 × 10,000 in dimension 128 with 500 permutations on
  the CPU, and 50,000 × 50,000 in dimension 512 on a GPU when there is one
  (with a single unbiased MMD² on the same sets for reference);
* the linear-time MMD on the same sets;
* UMAP on 20,000 points: the first call in the process (numba compilation)
  against a second call on the same data, and a PCA projection for scale;
* one ``diagnose`` call at the callback's default size (n_ref = 512, D = 64).

Usage::

    python benchmarks/bench_diagnostics.py              # everything that fits this machine
    python benchmarks/bench_diagnostics.py --only mmd   # mmd | umap | diagnose
    python benchmarks/bench_diagnostics.py --quick      # small sizes (a smoke run)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch


def emit(**kw):
    print(json.dumps(kw), flush=True)


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bench_mmd(n: int, d: int, perms: int, dev: torch.device, block=None):
    from cmkd_lab.diagnostics import linear_mmd, mmd2_unbiased, mmd_permutation_test, rbf_bandwidths

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g).to(dev)
    y = (torch.randn(n, d, generator=g) + 0.05).to(dev)
    bws = rbf_bandwidths(y, seed=0)
    # warm-up on a small slice (CUDA context, kernels)
    mmd_permutation_test(x[:256], y[:256], bandwidth=bws, n_permutations=4)
    _sync(dev)
    t = time.perf_counter()
    m = mmd2_unbiased(x, y, bandwidth=bws, block=block)
    _sync(dev)
    single = time.perf_counter() - t
    t = time.perf_counter()
    r = mmd_permutation_test(x, y, bandwidth=bws, n_permutations=perms, seed=0, block=block)
    _sync(dev)
    perm_s = time.perf_counter() - t
    t = time.perf_counter()
    lin = linear_mmd(x, y, bandwidth=bws, seed=0)
    _sync(dev)
    lin_s = time.perf_counter() - t
    N = 2 * n
    emit(bench="mmd_permutation_test", device=str(dev), n=n, m=n, dim=d, permutations=perms, bandwidths=len(bws),
         seconds=round(perm_s, 3), single_mmd2_seconds=round(single, 3), linear_mmd_seconds=round(lin_s, 4),
         mmd2=m, p_value=r["p_value"], linear_mmd2=lin["mmd2"], linear_p=lin["p_value"],
         kernel_entries_computed=N * (N + 1) // 2, dense_kernel_gb_fp32=round(N * N * 4 / 1e9, 2),
         permutation_matrix_mb=round(N * (perms + 2) * 4 / 1e6, 1),
         note="pooled kernel computed once per upper-triangle block; permutations by one (b x N)(N x P) product")


def bench_umap(n: int, d: int):
    from cmkd_lab.viz import project_features

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, d)) * 3
    lab = rng.integers(0, 6, n)
    z = (centres[lab] + rng.normal(size=(n, d))).astype(np.float32)
    half = n // 2
    t = time.perf_counter()
    import umap  # noqa: F401
    imp = time.perf_counter() - t
    out = {}
    for name in ("first_call", "second_call"):
        t = time.perf_counter()
        project_features(z[:half], [z[half:]], method="umap", fit_on="both", seed=0)
        out[name] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    project_features(z[:half], [z[half:]], method="pca", fit_on="both", seed=0)
    pca = round(time.perf_counter() - t, 3)
    emit(bench="umap", points=n, dim=d, import_s=round(imp, 2), first_call_s=out["first_call"],
         second_call_s=out["second_call"], compile_overhead_s=round(out["first_call"] - out["second_call"], 2),
         pca_s=pca, note="first call compiles numba kernels; the second call in the same process does not")


def bench_diagnose(n_ref: int, d: int, k: int, dev: torch.device):
    from cmkd_lab.diagnostics import diagnose, median_cost, rbf_bandwidths

    g = torch.Generator().manual_seed(0)
    head_t, head_s = torch.nn.Linear(d, k).to(dev), torch.nn.Linear(d, k).to(dev)
    zs, zt = torch.randn(n_ref, d, generator=g).to(dev), (torch.randn(n_ref, d, generator=g) + 0.2).to(dev)
    ys, yt = torch.randint(0, k, (n_ref,), generator=g), torch.randint(0, k, (n_ref,), generator=g)
    bws, eps = rbf_bandwidths(zt), 0.1 * median_cost(zt)
    cache: dict = {}
    times = []
    for i in range(3):
        t = time.perf_counter()
        diagnose(zs, ys, zt, yt, teacher_head=head_t, student_head=head_s, bandwidth=bws, eps=eps, num_classes=k,
                 keep_plan=True, cache=cache, seed=i)
        _sync(dev)
        times.append(time.perf_counter() - t)
    emit(bench="diagnose", device=str(dev), n_ref=n_ref, dim=d, classes=k, first_s=round(times[0], 3),
         steady_s=round(min(times[1:]), 3), note="first call includes lazy imports (POT) and the teacher's cached "
                                                  "Sinkhorn self-term")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("mmd", "umap", "diagnose"), default=None)
    p.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = p.parse_args(argv)
    emit(bench="environment", python=platform.python_version(), torch=torch.__version__,
         cpu_threads=torch.get_num_threads(), cpus=os.cpu_count(), cuda=torch.cuda.is_available(),
         gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    cpu = torch.device("cpu")
    if args.only in (None, "diagnose"):
        bench_diagnose(512, 64, 6, cpu)
    if args.only in (None, "mmd"):
        if args.quick:
            bench_mmd(1000, 32, 100, cpu)
        else:
            bench_mmd(10_000, 128, 500, cpu)
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            bench_diagnose(512, 64, 6, gpu)
            bench_mmd(5_000 if args.quick else 50_000, 512, 500, gpu)
        else:
            emit(bench="mmd_permutation_test", device="cuda", skipped="no CUDA device on this machine")
    if args.only in (None, "umap"):
        bench_umap(2_000 if args.quick else 20_000, 64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
