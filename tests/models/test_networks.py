"""Shapes, sizes and parameter counts of the networks the product trains and runs."""
from __future__ import annotations

import pytest
import torch

from geocolor.errors import ConfigError, ModelFileError, UsageError
from geocolor.models import build_model
from geocolor.models.patchgan import PatchDiscriminator
from geocolor.models.segcolor import SegColorNet, SegColorUNet
from geocolor.models.unet import UNetGenerator


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("size", [(256, 256), (512, 256)])
@pytest.mark.parametrize("channels", [(1, 3), (3, 1)])
def test_unet_maps_shape_and_range(size: tuple[int, int], channels: tuple[int, int]) -> None:
    cin, cout = channels
    net = UNetGenerator(cin, cout, ngf=4).eval()
    with torch.no_grad():
        out = net(torch.randn(2, cin, *size))
    assert out.shape == (2, cout, *size)
    assert out.min() >= -1 and out.max() <= 1


def test_unet_default_is_pix2pix_size() -> None:
    # pix2pix's unet_256 with ngf=64 has about 54.4 M parameters.
    assert 54.0e6 < n_params(UNetGenerator(1, 3, ngf=64)) < 54.8e6


def test_unet_bottleneck_is_1x1_for_256() -> None:
    net = UNetGenerator(1, 3, ngf=4)
    x = torch.randn(1, 1, 256, 256)
    for block in net.down:
        x = block(x)
    assert x.shape[-2:] == (1, 1)


def test_unet_fewer_levels_allow_small_tiles() -> None:
    net = UNetGenerator(1, 3, ngf=4, levels=5).eval()
    assert net(torch.randn(1, 1, 64, 96)).shape == (1, 3, 64, 96)


def test_unet_rejects_size_not_multiple_of_256_with_clear_message() -> None:
    net = UNetGenerator(1, 3, ngf=4)
    with pytest.raises(UsageError, match="multiples of 256.*300x257"):
        net(torch.randn(1, 1, 300, 257))


def test_unet_instance_norm_and_dropout_placement() -> None:
    net = UNetGenerator(1, 3, ngf=4, norm="instance")
    dropouts = [j for j, block in enumerate(net.up) if any(isinstance(m, torch.nn.Dropout) for m in block)]
    assert dropouts == [1, 2, 3]  # the three innermost blocks after the bottleneck
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert isinstance(net.outermost[-1], torch.nn.Tanh)


def test_unknown_norm_is_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown norm"):
        UNetGenerator(1, 3, ngf=4, norm="group")


def test_patchgan_is_70x70_and_outputs_logits() -> None:
    disc = PatchDiscriminator(in_channels=4)
    # pix2pix's n_layers=3 discriminator on 4 input channels: 2,766,657 parameters.
    assert n_params(disc) == 2_766_657
    out = disc(torch.randn(2, 1, 256, 256), torch.randn(2, 3, 256, 256))
    assert out.shape == (2, 1, 30, 30)
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in disc.modules())
    assert isinstance(disc.net[1], torch.nn.LeakyReLU)
    assert not isinstance(disc.net[1], torch.nn.BatchNorm2d)  # no norm on the first layer


def test_patchgan_other_size() -> None:
    disc = PatchDiscriminator(in_channels=4, ndf=8)
    assert disc(torch.randn(1, 3, 128, 64), torch.randn(1, 1, 128, 64)).shape == (1, 1, 14, 6)


@pytest.mark.parametrize("size", [(256, 256), (128, 192)])
def test_segcolornet_heads(size: tuple[int, int]) -> None:
    net = SegColorNet(n_classes=3).eval()
    with torch.no_grad():
        seg, ab = net(torch.randn(2, 1, *size))
    assert seg.shape == (2, 3, *size)
    assert ab.shape == (2, 2, *size)
    assert ab.abs().max() <= 1


def test_segcolornet_encoder_reaches_8x8x512() -> None:
    net = SegColorNet()
    assert net.encoder(torch.randn(1, 1, 256, 256)).shape == (1, 512, 8, 8)


def test_segcolor_unet_heads_and_size_error() -> None:
    net = SegColorUNet(n_classes=2, base=4).eval()
    seg, ab = net(torch.randn(1, 1, 48, 80))
    assert seg.shape == (1, 2, 48, 80) and ab.shape == (1, 2, 48, 80)
    with pytest.raises(UsageError, match="multiples of 16"):
        net(torch.randn(1, 1, 50, 80))
    with pytest.raises(UsageError, match=r"\(B, 1, H, W\)"):
        net(torch.randn(1, 3, 48, 80))


def test_registry_rebuilds_by_name_and_rejects_unknown() -> None:
    net = build_model("unet", in_channels=1, out_channels=3, ngf=4, levels=6)
    assert isinstance(net, UNetGenerator) and net.levels == 6
    with pytest.raises(ModelFileError, match="unknown architecture 'resnet9'"):
        build_model("resnet9")
    with pytest.raises(ModelFileError, match="cannot be built"):
        build_model("unet", wings=2)
