"""ResNet-18 encoders for video frames and spectrograms (the paper's backbone).

:class:`ResNet18Encoder` maps

* frames (B, T, C, H, W) — T frames per clip, each through the 2-D trunk,
  features averaged over space and time (as the public audio-visual code's
  visual branch) — or single images (B, C, H, W), and
* spectrograms (B, 1, F, L) or (B, F, L) with ``in_channels=1``

to features (B, D). With ``width=64`` the trunk is the standard ResNet-18
(He et al., 2016: 7×7 stem, BasicBlock × [2, 2, 2, 2], 512 output channels,
11,176,512 parameters without the classifier); ``feature_dim=512`` then adds
no projection. Smaller widths (``width=4``) make CPU tests fast.

Backends: torchvision's ``resnet18`` (random init) when torchvision is
installed and ``width == 64`` (``pip install cmkd_lab[vision]``), otherwise
the compact implementation below, which has the same layers and the same
parameter names, so state dicts move between the two.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .._validation import check_choice, check_int

__all__ = ["ResNet18Encoder", "resnet18_trunk", "BasicBlock"]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (1×1 projection when the shape changes)."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(out + skip)


class _Trunk(nn.Module):
    """Stem + four stages; (B, C, H, W) → (B, 8·width, H/32, W/32)."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = width
        for i, (mult, stride) in enumerate(((1, 1), (2, 2), (4, 2), (8, 2)), start=1):
            o = width * mult
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(c, o, stride), BasicBlock(o, o, 1)))
            c = o
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _torchvision_trunk(in_channels: int) -> Optional[nn.Module]:
    try:
        from torchvision.models import resnet18
    except ImportError:
        return None
    net = resnet18(weights=None)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.avgpool, net.fc = nn.Identity(), nn.Identity()

    class _TV(nn.Module):  # the torchvision layers under the same names as _Trunk
        def __init__(self):
            super().__init__()
            for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
                setattr(self, name, getattr(net, name))

        forward = _Trunk.forward

    return _TV()


def resnet18_trunk(in_channels: int = 3, *, width: int = 64, backend: str = "auto") -> nn.Module:
    """The ResNet-18 convolutional trunk, (B, C, H, W) → (B, 8·width, h, w).

    Parameters
    ----------
    in_channels : int
        3 for RGB frames, 1 for spectrograms.
    width : int
        Channels of the first stage (64 = the standard network).
    backend : {"auto", "torchvision", "builtin"}
        ``auto`` uses torchvision when installed and ``width == 64``.
    """
    check_int("in_channels", in_channels, minimum=1)
    check_int("width", width, minimum=1)
    check_choice("backend", backend, ("auto", "torchvision", "builtin"))
    if backend in ("auto", "torchvision") and width == 64:
        tv = _torchvision_trunk(in_channels)
        if tv is not None:
            return tv
        if backend == "torchvision":
            raise ImportError("backend='torchvision' needs torchvision: pip install 'cmkd_lab[vision]' "
                              "(or use backend='builtin', the same architecture)")
    elif backend == "torchvision":
        raise ValueError(f"backend='torchvision' supports only width=64 (torchvision's BasicBlock is fixed); "
                         f"got width={width}; use backend='builtin' or 'auto'")
    return _Trunk(in_channels, width)


class ResNet18Encoder(nn.Module):
    """ResNet-18 encoder: frames (B, T, C, H, W) / images (B, C, H, W) / spectrograms → (B, D).

    Parameters
    ----------
    in_channels : int
        3 for RGB frames, 1 for spectrograms.
    feature_dim : int
        D. Equal to ``8 * width`` (512 for the standard network): the pooled
        trunk output is the feature; otherwise a linear projection follows.
    frames : int
        Frames per clip T expected in 5-D inputs (1 for spectrograms / images).
    width : int
        First-stage channels (64 = standard; small values for quick tests).
    backend : {"auto", "torchvision", "builtin"}
    **_ : ignored
        Shape hints other spec keys may carry (``height``, ``width_px`` ...).
    """

    def __init__(self, in_channels: int = 3, feature_dim: int = 512, frames: int = 1, *, width: int = 64,
                 backend: str = "auto", **_):
        super().__init__()
        check_int("frames", frames, minimum=1)
        check_int("feature_dim", feature_dim, minimum=1)
        self.in_channels, self.frames, self.width = int(in_channels), int(frames), int(width)
        self.trunk = resnet18_trunk(in_channels, width=width, backend=backend)
        c = 8 * width
        self.proj = nn.Identity() if feature_dim == c else nn.Linear(c, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x[:, None]  # (B, 1, F, L): a spectrogram without its channel axis
        if x.ndim == 4:
            B, T = x.shape[0], 1
        elif x.ndim == 5:
            B, T = x.shape[:2]
            x = x.reshape(B * T, *x.shape[2:])  # (B·T, C, H, W)
        else:
            raise ValueError(f"ResNet18Encoder takes (B, C, H, W) or (B, T, C, H, W) inputs; got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet18Encoder was built for in_channels={self.in_channels}; got inputs with "
                             f"{x.shape[1]} channels (shape {tuple(x.shape)})")
        h = self.trunk(x)  # (B·T, 8w, h, w)
        z = h.mean((2, 3)).reshape(B, T, -1).mean(1)  # (B, 8w): pooled over space, then time
        return self.proj(z)  # (B, D)
