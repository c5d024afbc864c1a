"""All figures of one run, in report order."""
from __future__ import annotations

import warnings
from typing import List, Optional, Tuple

from .audit import audit_figure
from .bound import bound_bars
from .curves import accuracy_curves, loss_curves
from .distances import gap_curves, mmd_curves, ot_curves
from .labels import label_heatmaps, transport_plan_figure
from .projection import run_feature_overlay

__all__ = ["run_figures", "default_projection"]


def default_projection() -> str:
    """``"pca"`` in fast mode (``CMKD_LAB_FAST=1``: tests, quick demos — UMAP
    pays ≈ 10–15 s of compilation per process), otherwise ``"umap"``."""
    from .._env import fast_mode
    return "pca" if fast_mode() else "umap"


def run_figures(result: dict, *, projection: Optional[str] = None, seed: int = 0) -> List[Tuple[str, object]]:
    """(title, figure) pairs for a run's report.

    Parameters
    ----------
    result : dict
        As in ``result.json``.
    projection : {"umap", "pca", "none", None}
        Projection of the feature overlay; default :func:`default_projection`.
        ``"umap"`` gives a UMAP and a PCA overlay, ``"pca"`` the PCA one,
        ``"none"`` leaves the overlay out.
    seed : int
        Seed of the projection.
    """
    if not isinstance(result, dict):
        raise TypeError(f"result must be a dict as in result.json; got {type(result).__name__}")
    h = [r for r in result.get("history", []) if "epoch" in r]
    if not h:
        return []
    d = result.get("diagnostics") or {}
    K = len(d.get("class_names") or []) or None
    figs = [("Loss terms", loss_curves(h, config=result.get("config"))), ("Accuracy", accuracy_curves(h, num_classes=K))]
    if any(k.startswith("grad_enc_") for r in h for k in r):
        figs.append(("Gradient audit", audit_figure(h)))
    if not any("mmd2" in r for r in h):
        return figs
    figs += [("MMD between student and teacher features", mmd_curves(result)),
             ("Optimal transport and transport-plan class purity", ot_curves(result)),
             ("The bound, term by term", bound_bars(result)),
             ("Modality gap", gap_curves(result))]
    if d.get("records"):
        figs.append(("Label distributions", label_heatmaps(d)))
    if d.get("plans"):
        figs.append(("Transport plan", transport_plan_figure(d)))
    proj = projection or default_projection()
    if proj != "none" and d.get("snapshots"):
        # UMAP keeps local neighbourhoods (modalities often stay apart); PCA shows the global, linear geometry.
        for method in (["umap", "pca"] if proj == "umap" else [proj]):
            try:
                figs.append((f"Teacher and student features ({method.upper()})",
                             run_feature_overlay(d, method=method, seed=seed)))
            except ImportError as e:  # umap-learn missing: the PCA overlay is there anyway
                warnings.warn(f"{e}; the feature overlay uses PCA only")
    return figs
