"""Training-step speed of the methods, side by side in one run (prints JSON lines).

Two setups:

* ``--tasks synthetic,hapt,digits-speech``: the built-in tasks with their own
  encoders, timed over whole training epochs of the real :class:`Trainer`
  (``for batch in trainer.batches(): method.step(batch)``, evaluation excluded).
* ``--resnet``: ResNet-18-sized teacher and student (``cmkd_lab.models.resnet``
  when present, else the self-contained fallback below) on random
  (B, 3, S, S) inputs, timed per step (the setting of the reference GPU timings: ResNet-18, batch 64).

Variants (``ratio`` is each one's time over ``ce``'s, measured interleaved):

* ``ce``, ``fa``: single-level references;
* ``ucmkd``: Algorithm 1, exact (``inner_scope="full"``), package defaults;
* ``ucmkd-detach``: exact, LA step on the head only (``la_detach_features``,
  the public code's choice), which lets one forward serve LA and the outer CE;
* ``ucmkd-last-layer`` / ``ucmkd-last-layer-detach``: the ANIL-style
  approximation (``inner_scope="last-layer"``), off by default in the package;
* ``public-code-ref``: the bilevel step the way the paper's public code runs
  it — deep copy of the student, a fresh AdamW (lr 1e-5, wd 0.05) per batch,
  the teacher's forward pass every step, POT's ``sinkhorn2`` with the cosine
  cost — written here only, for the ratio.

Usage::

    python benchmarks/bench_step.py --tasks synthetic,hapt,digits-speech --epochs 3
    python benchmarks/bench_step.py --resnet --device cuda --steps 30 [--amp]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = {
    "ce": ("ce", {}),
    "fa": ("fa", {}),
    "ucmkd": ("ucmkd", {}),
    "ucmkd-detach": ("ucmkd", {"la_detach_features": True}),
    "ucmkd-last-layer": ("ucmkd", {"inner_scope": "last-layer"}),
    "ucmkd-last-layer-detach": ("ucmkd", {"inner_scope": "last-layer", "la_detach_features": True}),
    "public-code-ref": ("ce", {}),  # the method object is replaced by PublicCodeStep
}


# ---------------------------------------------------------------- ResNet-18
class _Block(nn.Module):
    def __init__(self, i, o, s):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o)
        self.c2, self.b2 = nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o)
        self.sc = nn.Sequential() if s == 1 and i == o else nn.Sequential(nn.Conv2d(i, o, 1, s, bias=False),
                                                                          nn.BatchNorm2d(o))

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.sc(x))


class FallbackResNet18(nn.Module):
    """ResNet-18 layout (BasicBlock × [2, 2, 2, 2]) → pooled (B, 8w) → Linear (B, D)."""

    def __init__(self, in_channels=3, feature_dim=256, width=64):
        super().__init__()
        layers, c = [nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                     nn.MaxPool2d(3, 2, 1)], width
        for mult, s in ((1, 1), (2, 2), (4, 2), (8, 2)):
            layers += [_Block(c, width * mult, s), _Block(width * mult, width * mult, 1)]
            c = width * mult
        self.trunk = nn.Sequential(*layers)
        self.proj = nn.Linear(c, feature_dim)

    def forward(self, x):
        return self.proj(self.trunk(x).mean((2, 3)))  # (B, D)


def resnet18_encoder(in_channels, feature_dim, width):
    try:
        from cmkd_lab.models.resnet import ResNet18Encoder
        return ResNet18Encoder(in_channels, feature_dim, width=width), "cmkd_lab.models.resnet"
    except ImportError:
        return FallbackResNet18(in_channels, feature_dim, width), "fallback"


class _Harness:
    """The attributes a method reads from its trainer, around given models and random data."""

    def __init__(self, config, student, teacher, device, amp):
        self.config, self.student, self.teacher, self.device = config, student, teacher, device
        self.amp, self.dist = amp, None
        self.params = list(student.parameters())
        self.optimizer = torch.optim.SGD(self.params, lr=1e-2, momentum=0.9)

    def clip_gradients(self):
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)


# --------------------------------------------------- public-code-style step
class PublicCodeStep:
    """The bilevel step as the paper's public code runs it (for the ratio only)."""

    def __init__(self, trainer, x_teacher):
        self.tr, self.x_teacher = trainer, x_teacher

    def step(self, b):
        import ot
        from cmkd_lab.align import cost_matrix, label_alignment_loss
        tr = self.tr
        student, teacher = tr.student, tr.teacher
        # bf16 autocast for the networks when the other variants get it too (a fair ratio); OT in float32
        amp = torch.autocast(b.x_s.device.type, dtype=torch.bfloat16, enabled=bool(getattr(tr, "amp", False)))
        with torch.no_grad(), amp:
            z_t = teacher.features(self.x_teacher[b.idx_t])  # teacher forward every step  # (B, D)
        tmp = copy.deepcopy(student)
        inner = torch.optim.AdamW(tmp.parameters(), lr=1e-5, weight_decay=0.05)
        n = b.y_s.shape[0]
        w = torch.full((n,), 1.0 / n, device=z_t.device)
        with amp:
            z = tmp.features(b.x_s)
        fa = ot.sinkhorn2(w, w, cost_matrix(z.float(), z_t.float(), "cosine"), reg=0.1, numItermax=100)
        inner.zero_grad()
        fa.backward()
        inner.step()
        with amp:
            z = tmp.features(b.x_s).detach()
            with torch.no_grad():
                t_logits = teacher.head(z)
            la = label_alignment_loss(tmp.head(z).float(), t_logits.float(), b.y_s)
        inner.zero_grad()
        la.backward()
        inner.step()
        with amp:
            ce = F.cross_entropy(tmp(b.x_s).float(), b.y_s)
        grads = torch.autograd.grad(ce, list(tmp.parameters()))
        tr.optimizer.zero_grad(set_to_none=True)
        for p, g in zip(student.parameters(), grads):
            p.grad = g
        tr.clip_gradients()
        tr.optimizer.step()
        return {"loss": ce.detach()}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _method(name, trainer, x_teacher):
    from cmkd_lab.distill import get_method
    if name == "public-code-ref":
        return PublicCodeStep(trainer, x_teacher)
    return get_method(VARIANTS[name][0])(trainer)


# ----------------------------------------------------------- the setups
def bench_task(task_name, variants, *, device, epochs, amp, compile, teacher_epochs, fast, extra):
    from cmkd_lab.data import load_task
    from cmkd_lab.distill import DistillConfig, Trainer
    task = load_task(task_name, fast=fast)
    base = dict(epochs=1, teacher_epochs=teacher_epochs, device=str(device), amp=amp, compile=compile, **extra)
    trainers, teacher = {}, None
    for v in variants:
        cfg = DistillConfig(**base, **VARIANTS[v][1])
        tr = Trainer(task, VARIANTS[v][0], cfg, teacher=teacher)
        teacher = (tr.teacher, tr.teacher_info)
        x_t = torch.as_tensor(task.teacher["train"].x, dtype=torch.float32, device=tr.device)
        tr.method = _method(v, tr, x_t)
        trainers[v] = tr
    times = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    steps = {}
    for r in range(epochs + 1):  # round 0 warms up (allocations, compilation)
        for v in variants:  # interleaved: machine load hits every variant alike
            tr = trainers[v]
            _sync(tr.device)
            t0, c0 = time.perf_counter(), time.process_time()
            n = 0
            for b in tr.batches():
                tr.method.step(b)
                n += 1
            _sync(tr.device)
            if r:
                times[v].append(time.perf_counter() - t0)
                cpu[v].append(time.process_time() - c0)
            steps[v] = n
    return _rows(f"task:{task_name}", device, times, steps, amp, compile, unit="epoch",
                 cpu=cpu if device.type == "cpu" else None, extra=extra)


def _sync_check(variant, harness, batch, device):
    """One step under CUDA's sync debug mode "error": does the step read anything back from the GPU?"""
    row = {"bench": "sync", "device": str(device), "variant": variant, "config": {
        k: getattr(harness.config, k) for k in ("cost", "eps_units", "ot_solver", "ot_stop_thr", "compile")}}
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        harness.method.step(batch)
        row["host_syncs_in_step"] = "none"
    except RuntimeError as e:
        row["host_syncs_in_step"] = "yes"
        row["first_sync"] = str(e).splitlines()[0][:200]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return row


def bench_resnet(variants, *, device, steps, batch, size, width, feature_dim, amp, compile, extra, classes=10,
                 sync_check=False):
    from cmkd_lab.distill import Batch, DistillConfig
    from cmkd_lab.models import Classifier
    torch.manual_seed(0)
    enc_s, src = resnet18_encoder(3, feature_dim, width)
    enc_t, _ = resnet18_encoder(3, feature_dim, width)
    teacher = Classifier(enc_t, feature_dim, classes).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    pool = 4
    xs = torch.randn(pool * batch, 3, size, size, generator=g).to(device)
    xt = torch.randn(pool * batch, 3, size, size, generator=g).to(device)
    ys = torch.randint(0, classes, (pool * batch,), generator=g).to(device)
    with torch.no_grad():
        bank = torch.cat([teacher.features(xt[i:i + batch]) for i in range(0, pool * batch, batch)])  # (P·B, D)
    batches = []
    for i in range(pool):
        idx = torch.arange(i * batch, (i + 1) * batch, device=device)
        batches.append(Batch(x_s=xs[idx], y_s=ys[idx], z_t=bank[idx], y_t=ys[idx], idx_s=idx, idx_t=idx))
    harnesses = {}
    for v in variants:
        torch.manual_seed(1)
        student = Classifier(copy.deepcopy(enc_s), feature_dim, classes).to(device)
        cfg = DistillConfig(amp=amp, compile=compile, feature_dim=feature_dim, **extra, **VARIANTS[v][1])
        h = _Harness(cfg, student, teacher, device, amp and device.type == "cuda")
        h.method = _method(v, h, xt)
        harnesses[v] = h
    times = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    warm = 3
    for v in variants:
        for i in range(warm):
            harnesses[v].method.step(batches[i % pool])
    if sync_check:
        for v in variants:
            print(json.dumps(_sync_check(v, harnesses[v], batches[0], device)), flush=True)
    for i in range(steps):  # interleaved, one step each in turn
        for v in variants:
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            harnesses[v].method.step(batches[i % pool])
            _sync(device)
            times[v].append(time.perf_counter() - t0)
            cpu[v].append(time.process_time() - c0)
    rows = _rows(f"resnet18:{src}:B{batch}:{size}px:w{width}:D{feature_dim}", device, times,
                 {v: 1 for v in variants}, amp, compile, unit="step", extra=extra,
                 cpu=cpu if device.type == "cpu" else None)
    return rows


def _rows(setup, device, times, steps, amp, compile, unit, cpu=None, extra=None):
    med = {v: statistics.median(t) for v, t in times.items()}
    ref = med.get("ce")
    rows = []
    for v, m in med.items():
        row = {"bench": "step", "setup": setup, "device": str(device), "variant": v, "amp": amp, "compile": compile,
               **(extra or {}), "ms_per_step": round(1e3 * m / max(1, steps[v]), 3),
               "ratio_vs_ce": round(m / ref, 3) if ref else None, "repeats": len(times[v])}
        if unit == "epoch":
            row.update(s_per_epoch=round(m, 4), steps_per_epoch=steps[v])
        if cpu:  # process CPU time: robust to other load on a shared machine (single-threaded torch)
            c, cref = statistics.median(cpu[v]), statistics.median(cpu["ce"])
            row.update(cpu_ms_per_step=round(1e3 * c / max(1, steps[v]), 3), ratio_vs_ce_cpu_time=round(c / cref, 3))
        rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--tasks", default="", help="comma-separated built-in tasks (CPU setting)")
    p.add_argument("--resnet", action="store_true", help="ResNet-18-sized encoders on random images")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per variant (task setup)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant (resnet setup)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=224, help="image side (resnet setup)")
    p.add_argument("--width", type=int, default=64, help="ResNet first-stage channels (64 = ResNet-18)")
    p.add_argument("--feature-dim", type=int, default=256, help="D (resnet setup; != 8·width keeps a projection)")
    p.add_argument("--teacher-epochs", type=int, default=3)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--compile", default="none", choices=("none", "ot", "all"), help="config compile")
    p.add_argument("--ot-solver", default="auto", choices=("auto", "scaling", "log"), help="config ot_solver")
    p.add_argument("--fast", action="store_true", help="the tasks' small versions")
    p.add_argument("--ot-stop-thr", type=float, default=0.0, help="config ot_stop_thr for every variant")
    p.add_argument("--sync-check", action="store_true",
                   help="(CUDA, --resnet) run one step of each variant under torch.cuda.set_sync_debug_mode('error')")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads on the CPU (default 1: small models gain nothing from more, and "
                        "process CPU time then measures the work; 0 = leave torch's default)")
    a = p.parse_args(argv)
    from cmkd_lab.distill import resolve_device
    device = resolve_device(a.device)
    if a.threads and device.type == "cpu":
        torch.set_num_threads(a.threads)
    extra = {"ot_stop_thr": a.ot_stop_thr} if a.ot_stop_thr else {}
    if a.ot_solver != "auto":
        extra["ot_solver"] = a.ot_solver
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        p.error(f"--variants: unknown {unknown}; known: {', '.join(VARIANTS)}")
    if "ce" not in variants:
        variants.insert(0, "ce")
    rows = []
    for t in [t.strip() for t in a.tasks.split(",") if t.strip()]:
        rows += bench_task(t, variants, device=device, epochs=a.epochs, amp=a.amp, compile=a.compile,
                           teacher_epochs=a.teacher_epochs, fast=a.fast, extra=extra)
        for r in rows[-len(variants):]:
            print(json.dumps(r), flush=True)
    if a.resnet:
        rr = bench_resnet(variants, device=device, steps=a.steps, batch=a.batch_size, size=a.size, width=a.width,
                          feature_dim=a.feature_dim, amp=a.amp, compile=a.compile, extra=extra,
                          sync_check=a.sync_check and device.type == "cuda")
        for r in rr:
            print(json.dumps(r), flush=True)
        rows += rr
    if a.sync_check and device.type != "cuda":
        print(json.dumps({"bench": "note", "note": "--sync-check needs a CUDA device; skipped"}), flush=True)
    if not rows:
        p.error("nothing to run: give --tasks and/or --resnet")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("CMKD_LAB_CACHE", "/tmp/cmkd_lab_bench_cache")
    sys.exit(main())
