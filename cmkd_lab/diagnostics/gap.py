"""Modality-gap summary without pairs: how far apart the two feature clouds sit."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ._common import as_labels, pair_features

__all__ = ["modality_gap"]


@torch.no_grad()
def modality_gap(z_s, z_t, *, y_s=None, y_t=None, num_classes: Optional[int] = None) -> dict:
    """Centroid gap and cosine between mean features.

    Parameters
    ----------
    z_s : (N, D) student features;  z_t : (M, D) teacher features
    y_s, y_t : (N,), (M,) labels, optional (for the per-class centroid gap)
    num_classes : int, optional

    Returns
    -------
    dict
        ``centroid_gap`` ‖mean z_S − mean z_T‖; ``mean_cos`` cosine between the
        two means (None when a mean lies within three standard errors of the origin: its
        direction is sampling noise); ``gap_ratio`` the gap over the teacher's RMS radius
        (scale-free); ``norm_ratio`` mean ‖z_S‖ / mean ‖z_T‖; with labels,
        ``class_centroid_gap`` (mean over classes present on both sides).
    """
    ts, tt = pair_features("z_s", z_s, "z_t", z_t)
    ts, tt = ts.double().cpu(), tt.double().cpu()
    ms, mt = ts.mean(0), tt.mean(0)  # (D,)
    gap = float((ms - mt).norm())
    denom = float(ms.norm() * mt.norm())
    # A mean within three standard errors of the origin (centred features) has no direction but noise: no cosine.
    se_s = float(((ts - ms) ** 2).sum(1).mean().sqrt()) / max(1, ts.shape[0]) ** 0.5
    se_t = float(((tt - mt) ** 2).sum(1).mean().sqrt()) / max(1, tt.shape[0]) ** 0.5
    cos = float(ms @ mt) / denom if denom > 0 and ms.norm() > 3 * se_s and mt.norm() > 3 * se_t else None
    radius = float(((tt - mt) ** 2).sum(1).mean().sqrt())
    ns, nt = float(ts.norm(dim=1).mean()), float(tt.norm(dim=1).mean())
    out = {"centroid_gap": gap, "mean_cos": cos, "gap_ratio": gap / radius if radius > 0 else float("inf"),
           "norm_ratio": ns / nt if nt > 0 else (1.0 if ns == 0 else float("inf"))}
    if y_s is not None and y_t is not None:
        K = num_classes or int(max(np.max(np.asarray(y_s)), np.max(np.asarray(y_t)))) + 1
        ls = as_labels("y_s", y_s, ts.shape[0], K)
        lt = as_labels("y_t", y_t, tt.shape[0], K)
        gaps = [float((ts[torch.as_tensor(ls == k)].mean(0) - tt[torch.as_tensor(lt == k)].mean(0)).norm())
                for k in range(K) if np.any(ls == k) and np.any(lt == k)]
        out["class_centroid_gap"] = float(np.mean(gaps)) if gaps else None
    return out
