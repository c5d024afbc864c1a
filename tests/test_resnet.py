"""ResNet-18 encoders: the standard architecture's known sizes, pooling invariants, errors."""
import pytest
import torch

from cmkd_lab.models import build_encoder
from cmkd_lab.models.resnet import ResNet18Encoder, resnet18_trunk

# torchvision's resnet18 has 11,689,512 parameters, of which the 512→1000
# classifier holds 513,000: the trunk alone has 11,176,512.
TRUNK_PARAMS = 11_689_512 - 513_000


def _n(m):
    return sum(p.numel() for p in m.parameters())


def test_trunk_has_the_standard_resnet18_size_and_names():
    t = resnet18_trunk(3, backend="builtin")
    assert _n(t) == TRUNK_PARAMS
    # One input channel: the 7×7 stem shrinks from 64·3·49 to 64·1·49 weights.
    assert _n(resnet18_trunk(1, backend="builtin")) == TRUNK_PARAMS - 64 * 2 * 49
    keys = list(t.state_dict())
    # torchvision's resnet18 state dict has 122 entries; 120 without fc.weight / fc.bias.
    assert len(keys) == 120
    assert keys[:2] == ["conv1.weight", "bn1.weight"]
    for k in ("layer2.0.downsample.0.weight", "layer3.0.downsample.1.running_var", "layer4.1.bn2.bias"):
        assert k in keys
    assert not any(k.startswith(("layer1.0.downsample", "layer2.1.downsample")) for k in keys)


@pytest.mark.parametrize("size,out", [(224, 7), (32, 1), (64, 2)])
def test_trunk_downsamples_by_32(size, out):
    t = resnet18_trunk(3, width=4, backend="builtin").eval()
    with torch.no_grad():
        h = t(torch.randn(1, 3, size, size))
    assert h.shape == (1, 32, out, out)  # 8 · width channels


def test_encoder_shapes_for_frames_images_and_spectrograms():
    torch.manual_seed(0)
    v = ResNet18Encoder(3, 16, frames=3, width=4).eval()
    assert v(torch.randn(2, 3, 3, 32, 32)).shape == (2, 16)  # (B, T, C, H, W)
    assert v(torch.randn(2, 3, 32, 32)).shape == (2, 16)  # (B, C, H, W)
    a = ResNet18Encoder(1, 16, width=4).eval()
    assert a(torch.randn(2, 1, 24, 40)).shape == (2, 16)
    assert a(torch.randn(2, 24, 40)).shape == (2, 16)  # channel axis added


def test_feature_dim_512_with_standard_width_adds_no_projection():
    assert isinstance(ResNet18Encoder(3, 512, width=64, backend="builtin").proj, torch.nn.Identity)
    assert isinstance(ResNet18Encoder(3, 32, width=4).proj, torch.nn.Identity)  # 8 · 4
    assert isinstance(ResNet18Encoder(3, 16, width=4).proj, torch.nn.Linear)


def test_time_pooling_is_an_average_over_frames():
    torch.manual_seed(0)
    enc = ResNet18Encoder(3, 32, frames=4, width=4).eval()
    one = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        z1 = enc(one)
        z_rep = enc(one[:, None].expand(2, 4, 3, 32, 32))  # the same frame four times
        clip = torch.randn(2, 4, 3, 32, 32)
        z = enc(clip)
        z_perm = enc(clip[:, [2, 0, 3, 1]])  # frame order does not matter
        z_mean = torch.stack([enc(clip[:, t]) for t in range(4)]).mean(0)
    torch.testing.assert_close(z_rep, z1)
    torch.testing.assert_close(z_perm, z, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z_mean, z, rtol=1e-5, atol=1e-5)  # proj is the identity here


def test_build_encoder_dispatches_resnet18():
    enc = build_encoder({"kind": "resnet18", "in_channels": 1, "width": 4, "backend": "builtin"}, 8)
    assert isinstance(enc, ResNet18Encoder) and enc(torch.randn(3, 1, 16, 16)).shape == (3, 8)


def test_resnet_errors_name_the_problem():
    enc = ResNet18Encoder(1, 8, width=4)
    with pytest.raises(ValueError, match="in_channels=1; got inputs with 3 channels"):
        enc(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) or \(B, T, C, H, W\)"):
        enc(torch.randn(2, 16))
    with pytest.raises(ValueError, match="backend must be one of"):
        resnet18_trunk(3, backend="keras")
    with pytest.raises(ValueError, match="supports only width=64"):
        resnet18_trunk(3, width=8, backend="torchvision")
    with pytest.raises(ValueError, match="frames must be >= 1"):
        ResNet18Encoder(3, 8, frames=0, width=4)


def test_torchvision_backend_without_torchvision_says_how_to_install():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"cmkd_lab\[vision\]"):
            resnet18_trunk(3, backend="torchvision")
    else:  # with torchvision, both backends have the same parameter names and count
        tv, own = resnet18_trunk(3, backend="torchvision"), resnet18_trunk(3, backend="builtin")
        assert list(tv.state_dict()) == list(own.state_dict()) and _n(tv) == _n(own) == TRUNK_PARAMS
        own.load_state_dict(tv.state_dict())
