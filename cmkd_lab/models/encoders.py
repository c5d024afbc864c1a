"""Encoders and heads.

The protocol: an **encoder** maps a batch of inputs (B, ...) to features
(B, D); a **head** maps features (B, D) to logits (B, K). Teacher and student
share D and K, so the teacher's head can be applied to the student's features.
A :class:`Classifier` bundles an encoder and a head.
"""
from __future__ import annotations

from typing import Callable, Union

import torch
from torch import nn

from .._validation import check_choice, check_int

__all__ = ["MLPEncoder", "CNN1dEncoder", "CNN2dEncoder", "Classifier", "build_encoder", "build_classifier",
           "ENCODER_KINDS", "check_compatible"]

ENCODER_KINDS = ("mlp", "cnn1d", "cnn2d", "resnet18")


class MLPEncoder(nn.Module):
    """(B, F) -> (B, D): two hidden layers with LayerNorm and GELU."""

    def __init__(self, in_features: int, feature_dim: int = 64, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.LayerNorm(hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU(),
            nn.Linear(hidden, feature_dim),
        )

    def forward(self, x):
        return self.net(x.flatten(1))  # (B, D)


def _global_pool(h: torch.Tensor, pool: str, dims) -> torch.Tensor:
    """Global average or max pooling over ``dims``."""
    return h.amax(dims) if pool == "max" else h.mean(dims)


_POOLS = ("avg", "max")


class CNN1dEncoder(nn.Module):
    """(B, C, L) -> (B, D): three conv blocks, global pooling (``pool``: "avg" or "max")."""

    def __init__(self, in_channels: int, length: int = 0, feature_dim: int = 64, width: int = 32, pool: str = "avg"):
        super().__init__()
        self.pool = check_choice("pool", pool, _POOLS)

        def block(i, o, k):
            return nn.Sequential(nn.Conv1d(i, o, k, padding=k // 2), nn.BatchNorm1d(o), nn.ReLU(), nn.MaxPool1d(2))

        self.net = nn.Sequential(block(in_channels, width, 7), block(width, 2 * width, 5),
                                 block(2 * width, 2 * width, 3))
        self.proj = nn.Linear(2 * width, feature_dim)

    def forward(self, x):
        h = self.net(x)  # (B, 2w, L/8)
        return self.proj(_global_pool(h, self.pool, -1))  # (B, D)


class CNN2dEncoder(nn.Module):
    """(B, C, H, W) -> (B, D): conv blocks sized to the input, global pooling (``pool``: "avg" or "max").

    Small inputs (8×8 digits) get two blocks, larger ones (log-mel) three. Max pooling suits inputs where
    the pattern sits anywhere in a longer window (a spoken word in a clip): averaging dilutes it.
    """

    def __init__(self, in_channels: int, height: int = 32, width: int = 32, feature_dim: int = 64, channels: int = 32,
                 pool: str = "avg"):
        super().__init__()
        self.pool = check_choice("pool", pool, _POOLS)
        n_blocks = 2 if min(height, width) < 16 else 3
        layers, c = [], in_channels
        for i in range(n_blocks):
            o = channels * (2 ** min(i, 1))
            layers += [nn.Conv2d(c, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
            c = o
        self.net = nn.Sequential(*layers)
        self.proj = nn.Linear(c, feature_dim)

    def forward(self, x):
        if x.ndim == 3:
            x = x[:, None]  # (B, 1, H, W)
        h = self.net(x)  # (B, c, h, w)
        return self.proj(_global_pool(h, self.pool, (2, 3)))  # (B, D)


class Classifier(nn.Module):
    """Encoder + linear head. ``forward`` returns logits; ``features`` the (B, D) features."""

    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(feature_dim, num_classes)
        self.feature_dim, self.num_classes = feature_dim, num_classes

    def features(self, x):
        return self.encoder(x)  # (B, D)

    def forward(self, x):
        return self.head(self.encoder(x))  # (B, K)


def _check_spec(kind: str, kw: dict) -> None:
    """Unknown or missing keys of an encoder spec, named with what the encoder accepts."""
    import inspect

    if kind == "resnet18":
        from .resnet import ResNet18Encoder as cls
    else:
        cls = {"mlp": MLPEncoder, "cnn1d": CNN1dEncoder, "cnn2d": CNN2dEncoder}[kind]
    sig = inspect.signature(cls.__init__).parameters.items()
    params = {n: p for n, p in sig if n not in ("self", "feature_dim") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    open_ended = any(p.kind is p.VAR_KEYWORD for _, p in sig)  # ResNet18Encoder ignores shape hints
    unknown = [] if open_ended else sorted(set(kw) - set(params))
    missing = [n for n, p in params.items() if p.default is p.empty and n not in kw]
    if unknown or missing:
        what = "; ".join(x for x in (f"unknown key(s) {unknown}" if unknown else "",
                                     f"missing required key(s) {missing}" if missing else "") if x)
        raise ValueError(f"encoder spec {{'kind': {kind!r}, ...}}: {what}; {kind} takes "
                         f"{', '.join(f'{n} (required)' if p.default is p.empty else n for n, p in params.items())}")


def build_encoder(spec: Union[dict, Callable[[int], nn.Module]], feature_dim: int) -> nn.Module:
    """Build an encoder from a spec dict (``{"kind": "cnn1d", "in_channels": 3, ...}``)
    or a factory ``fn(feature_dim) -> nn.Module``."""
    check_int("feature_dim", feature_dim, minimum=1)
    if callable(spec) and not isinstance(spec, dict):
        enc = spec(feature_dim)
        if not isinstance(enc, nn.Module):
            raise TypeError(f"an encoder factory must return an nn.Module; got {type(enc).__name__}")
        return enc
    if not isinstance(spec, dict) or "kind" not in spec:
        raise TypeError(f"encoder spec must be a dict with a 'kind' key or a factory; got {spec!r}")
    kw = {k: v for k, v in spec.items() if k != "kind"}
    kind = check_choice("encoder kind", spec["kind"], ENCODER_KINDS)
    _check_spec(kind, kw)
    if kind == "mlp":
        return MLPEncoder(feature_dim=feature_dim, **kw)
    if kind == "cnn1d":
        return CNN1dEncoder(feature_dim=feature_dim, **kw)
    if kind == "cnn2d":
        return CNN2dEncoder(feature_dim=feature_dim, **kw)
    from .resnet import ResNet18Encoder  # optional heavier backbone

    return ResNet18Encoder(feature_dim=feature_dim, **kw)


def build_classifier(spec, feature_dim: int, num_classes: int) -> Classifier:
    """Encoder from ``spec`` plus a linear head to ``num_classes`` logits."""
    check_int("num_classes", num_classes, minimum=2)
    return Classifier(build_encoder(spec, feature_dim), feature_dim, num_classes)


def check_compatible(teacher: nn.Module, student: nn.Module, example_t: torch.Tensor, example_s: torch.Tensor) -> None:
    """Raise a clear error when teacher and student features or class counts differ."""
    was_t, was_s = teacher.training, student.training
    teacher.eval(), student.eval()
    with torch.no_grad():
        zt = teacher.features(example_t[:2])
        zs = student.features(example_s[:2])
        kt = teacher.head(zt).shape[-1]
        ks = student.head(zs).shape[-1]
    teacher.train(was_t), student.train(was_s)
    if zt.shape[1:] != zs.shape[1:]:
        raise ValueError(
            f"teacher and student feature dimensions differ: teacher features {tuple(zt.shape)}, student features "
            f"{tuple(zs.shape)}; both encoders must map into the same space (same feature_dim)"
        )
    if kt != ks:
        raise ValueError(f"teacher and student class counts differ: teacher K={kt}, student K={ks}")
