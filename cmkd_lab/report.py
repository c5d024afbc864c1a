"""Self-contained HTML report of a run (plotly.js inlined, viewable offline)."""
from __future__ import annotations

import html
import json
from pathlib import Path

__all__ = ["write_report", "render_report"]


def _table(rows, header):
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _figures(result):
    try:
        from .viz import run_figures
    except ImportError:
        return []
    return run_figures(result)


def render_report(result: dict) -> str:
    """The HTML text of a run's report."""
    figs = _figures(result)
    parts = []
    first = True
    for title, fig in figs:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if first else False))
        first = False
    keys = ["task", "method", "seed", "pairing", "epochs", "epochs_done", "status", "student_test_acc",
            "student_val_acc", "best_epoch", "student_test_acc_last", "teacher_test_acc", "student_fraction",
            "wall_s", "s_per_epoch", "device"]
    summary = _table([(k, result.get(k)) for k in keys], ["field", "value"])
    hist = result.get("history", [])
    cols = sorted({k for r in hist for k in r if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)},
                  key=lambda k: (k != "epoch", k))
    htable = _table([[r.get(c, "") for c in cols] for r in hist], cols)
    info = html.escape(json.dumps(result.get("task_info", {}), indent=1, default=str))
    cfg = html.escape(json.dumps(result.get("config", {}), indent=1))
    env = html.escape(json.dumps(result.get("versions", {}), indent=1))
    title = f"cmkd_lab — {result.get('task')} · {result.get('method')} · seed {result.get('seed')}"
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px}"
             "pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            "<p>UCMKD: Tran et al., <i>Cross-Modal Knowledge Distillation without Paired Data</i>, ICML 2026 "
            "(arXiv 2606.10504).</p>"
            f"<h2>Results</h2>{summary}{''.join(parts)}<h2>History</h2>{htable}"
            f"<h2>Task</h2><pre>{info}</pre><h2>Config</h2><pre>{cfg}</pre><h2>Environment</h2><pre>{env}</pre>"
            "</body></html>")


def write_report(result: dict, path) -> Path:
    """Write ``report.html`` for ``result`` (a dict as in ``result.json``)."""
    import os
    import tempfile
    path = Path(path)
    text = render_report(result)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
