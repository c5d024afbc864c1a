"""Execute notebooks headless and record how long each takes, cell by cell.

    python scripts/time_notebooks.py                       # every notebook, full mode
    python scripts/time_notebooks.py --fast 00 03          # the fast mode, notebooks 00 and 03
    python scripts/time_notebooks.py --out times.json --html-dir test-artifacts/html
    python scripts/time_notebooks.py --executed-dir test-artifacts/executed   # keep the executed notebooks

Each notebook runs in a fresh ``python3`` kernel in a scratch copy of ``notebooks/`` (what it writes
under ``runs/`` stays there), with the environment of this process (set ``PYTHONPATH`` to the checkout
you mean to time). Recorded per notebook: the wall time, the kernel's CPU time (user + system, read
when the kernel has exited: on a loaded machine it bounds what the same work costs on an idle one),
the load average before and after, and the slowest cells with their first line. The record is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cell_seconds(cell) -> float:
    ex = cell.get("metadata", {}).get("execution", {})
    a, b = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not a or not b:
        return 0.0
    f = "%Y-%m-%dT%H:%M:%S.%f%z"
    return (datetime.strptime(b.replace("Z", "+0000"), f) - datetime.strptime(a.replace("Z", "+0000"), f)).total_seconds()


def time_one(path: Path, work: Path, *, fast: bool, timeout: int, html_dir: Path = None,
             executed_dir: Path = None) -> dict:
    import nbclient
    import nbformat

    env_fast = os.environ.get("CMKD_LAB_FAST")
    os.environ["CMKD_LAB_FAST"] = "1" if fast else "0"
    nb = nbformat.read(path, as_version=4)
    before = os.getloadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    error = None
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                                resources={"metadata": {"path": str(work)}}).execute()
    except Exception as e:  # a failing cell or a timeout: record it, keep going
        error = f"{type(e).__name__}: {str(e)[-600:]}"
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if env_fast is None:
        os.environ.pop("CMKD_LAB_FAST", None)
    else:
        os.environ["CMKD_LAB_FAST"] = env_fast
    cells = [(round(_cell_seconds(c), 1), i, (c.source.strip().splitlines() or [""])[0][:90])
             for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if executed_dir is not None:
        executed_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed_dir / f"{path.stem}{'-fast' if fast else ''}.ipynb")
    if html_dir is not None:
        from nbconvert import HTMLExporter

        html_dir.mkdir(parents=True, exist_ok=True)
        body, _ = HTMLExporter().from_notebook_node(nb)
        (html_dir / f"{path.stem}{'-fast' if fast else ''}.html").write_text(body, encoding="utf-8")
    return {"notebook": path.stem, "fast": fast, "wall_s": round(wall, 1),
            "kernel_cpu_s": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 1),
            "load_before": [round(x, 2) for x in before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(), "error": error,
            "slowest_cells": [{"s": s, "cell": i, "code": code} for s, i, code in sorted(cells, reverse=True)[:5]],
            "when": datetime.now().isoformat(timespec="seconds")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    ap.add_argument("--fast", action="store_true", help="the fast mode (CMKD_LAB_FAST=1)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    ap.add_argument("--out", default=str(ROOT / "test-artifacts" / "notebook_times_full.json"))
    ap.add_argument("--html-dir", default=None, help="also write each executed notebook as HTML here")
    ap.add_argument("--executed-dir", default=None, help="also keep each executed notebook (.ipynb) here")
    a = ap.parse_args(argv)
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if a.names:
        paths = [p for p in paths if any(p.stem.startswith(n) for n in a.names)]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(out.read_text()) if out.exists() else {}
    work = Path(tempfile.mkdtemp(prefix="cmkd-nb-times-"))
    for p in paths:
        shutil.copy(p, work / p.name)
        r = time_one(work / p.name, work, fast=a.fast, timeout=a.timeout,
                     html_dir=Path(a.html_dir) if a.html_dir else None,
                     executed_dir=Path(a.executed_dir) if a.executed_dir else None)
        record[p.stem + ("-fast" if a.fast else "")] = r
        out.write_text(json.dumps(record, indent=1))
        print(f"{p.stem}: {r['wall_s']} s wall, {r['kernel_cpu_s']} s kernel CPU, load {r['load_before']} -> "
              f"{r['load_after']}{'; ERROR ' + r['error'] if r['error'] else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
