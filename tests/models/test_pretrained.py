"""ImageNet weights: loaded from torchvision's cache or a file, never silently random."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from geocolor.errors import PretrainedWeightsError
from geocolor.models.perceptual import VGGPerceptualLoss
from geocolor.models.pretrained import cache_path, load_pretrained_state
from geocolor.models.segcolor import SegColorNet


def _save_vgg16(path: Path) -> dict[str, torch.Tensor]:
    """A file shaped like torchvision's VGG16 weights: random features, zero classifier (fast)."""
    torch.manual_seed(3)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg16(weights=None).state_dict().items()}
    state = {k: (torch.randn(s) if k.startswith("features.") else torch.zeros(s)) for k, s in shapes.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_missing_vgg_weights_say_where_and_how() -> None:
    with pytest.raises(PretrainedWeightsError) as err:
        VGGPerceptualLoss()
    message = str(err.value)
    assert str(cache_path("vgg16")) in message
    assert "vgg16-397923af.pth" in message
    assert "--lambda-content 0" in message


def test_vgg_weights_from_torchvision_cache_are_used() -> None:
    state = _save_vgg16(cache_path("vgg16"))
    loss = VGGPerceptualLoss()
    assert torch.equal(loss.features[0].weight, state["features.0.weight"])
    assert torch.equal(loss.features[14].weight, state["features.14.weight"])
    assert all(not p.requires_grad for p in loss.parameters())


def test_vgg_weights_from_explicit_file(tmp_path: Path) -> None:
    state = _save_vgg16(tmp_path / "my-vgg.pth")
    loss = VGGPerceptualLoss(weights_file=tmp_path / "my-vgg.pth")
    assert torch.equal(loss.features[10].weight, state["features.10.weight"])


def test_features_only_file_works_and_wrong_network_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(4)
    features = torchvision.models.vgg16(weights=None).features.state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, tmp_path / "feat.pth")
    loss = VGGPerceptualLoss(weights_file=tmp_path / "feat.pth")
    assert torch.equal(loss.features[2].weight, features["2.weight"])
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(PretrainedWeightsError, match="not VGG16 weights"):
        VGGPerceptualLoss(weights_file=tmp_path / "resnet.pth")


def test_explicit_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(PretrainedWeightsError, match="nope.pth: vgg16 weights file not found"):
        load_pretrained_state("vgg16", tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(PretrainedWeightsError, match="bad.pth: cannot read vgg16 weights"):
        load_pretrained_state("vgg16", bad)


def test_perceptual_loss_maps_inputs_to_imagenet_normalisation() -> None:
    loss = VGGPerceptualLoss(pretrained=False)
    white = torch.ones(1, 3, 8, 8)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(loss.normalise(white)[0, :, 0, 0], expected)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == 0
    assert loss(x, -x).item() > 0
    loss.train()
    assert not loss.features.training  # frozen network stays in eval mode


def test_resnet34_weights_loaded_and_stem_collapsed_to_one_channel() -> None:
    torch.manual_seed(5)
    state = torchvision.models.resnet34(weights=None).state_dict()
    path = cache_path("resnet34")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    net = SegColorNet(pretrained=True)
    assert torch.allclose(net.encoder[0].weight, state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(net.encoder[4][0].conv1.weight, state["layer1.0.conv1.weight"])


def test_missing_resnet34_weights_suggest_no_pretrained() -> None:
    with pytest.raises(PretrainedWeightsError, match="--no-pretrained"):
        SegColorNet(pretrained=True)
