"""Tests for brushwork.encoders.vgg: layer names, the partial network, forward outputs,
preprocessing, memory layout and gradients. All on the tiny random encoder."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import smooth_image

from brushwork.encoders import CONV_LAYERS, LAYERS, VGG19, check_layers, deepest
from brushwork.encoders.vgg import CAFFE_MEAN_BGR, LAYER_INDEX
from brushwork.errors import BrushworkError

# Tiny encoder (width 1/16) channels per block.
TINY_CHANNELS = {1: 4, 2: 8, 3: 16, 4: 32, 5: 32}

# ----------------------------------------------------------------------------- layer names


def test_layer_names_are_the_37_vgg19_layers() -> None:
    assert len(LAYERS) == 37
    assert len(set(LAYERS)) == 37
    assert LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYERS[-3:] == ("conv5_4", "relu5_4", "pool5")
    assert [name for name in LAYERS if name.startswith("pool")] == [f"pool{b}" for b in range(1, 6)]
    # every conv is directly followed by its relu
    for name in CONV_LAYERS:
        assert LAYERS[LAYER_INDEX[name] + 1] == name.replace("conv", "relu")
    assert {name: i for i, name in enumerate(LAYERS)} == LAYER_INDEX


def test_conv_layers_are_the_16_convolutions_in_order() -> None:
    assert len(CONV_LAYERS) == 16
    assert tuple(name for name in LAYERS if name.startswith("conv")) == CONV_LAYERS
    per_block = [sum(name.startswith(f"conv{b}_") for name in CONV_LAYERS) for b in range(1, 6)]
    assert per_block == [2, 2, 4, 4, 4]
    assert "conv5_4" in CONV_LAYERS and "conv1_3" not in CONV_LAYERS


def test_check_layers_returns_a_list_and_rejects_unknown_names() -> None:
    assert check_layers(iter(["relu1_1", "pool3"])) == ["relu1_1", "pool3"]
    with pytest.raises(BrushworkError, match="relu6_1"):
        check_layers(["relu1_1", "relu6_1"])
    with pytest.raises(BrushworkError, match="conv1_3"):
        check_layers(["conv1_3"])


def test_deepest_picks_the_layer_last_in_the_network() -> None:
    assert deepest(["relu4_1", "conv1_1", "pool2", "relu3_4"]) == "relu4_1"
    assert deepest(["pool1", "relu1_2"]) == "pool1"
    with pytest.raises(BrushworkError, match="bogus"):
        deepest(["relu1_1", "bogus"])


# ----------------------------------------------------------------------------- construction


def test_encoder_builds_only_up_to_last_layer(tiny_encoder: VGG19) -> None:
    keys = set(tiny_encoder.state_dict())
    assert "convs.conv5_1.weight" in keys and "convs.conv5_1.bias" in keys
    assert not any(k.startswith(("convs.conv5_2", "convs.conv5_3", "convs.conv5_4")) for k in keys)
    assert list(tiny_encoder.convs) == list(CONV_LAYERS[: CONV_LAYERS.index("conv5_1") + 1])
    assert tiny_encoder.layer_names[-1] == "relu5_1"
    assert tiny_encoder.layer_names == LAYERS[: LAYER_INDEX["relu5_1"] + 1]

    shallow = VGG19(last_layer="pool1", width=1 / 16)
    assert list(shallow.convs) == ["conv1_1", "conv1_2"]
    assert sum(p.numel() for p in shallow.parameters()) == (3 * 4 * 9 + 4) + (4 * 4 * 9 + 4)


def test_encoder_channels_scale_with_width(tiny_encoder: VGG19) -> None:
    channels = tiny_encoder.out_channels
    assert list(channels) == list(tiny_encoder.layer_names)
    for name, c in channels.items():
        assert c == TINY_CHANNELS[int(name[4])], name  # conv1_1, relu1_1, pool1 → block 1
    full = VGG19(last_layer="conv2_1")
    assert full.out_channels == {
        "conv1_1": 64,
        "relu1_1": 64,
        "conv1_2": 64,
        "relu1_2": 64,
        "pool1": 64,
        "conv2_1": 128,
    }
    assert full.convs["conv2_1"].in_channels == 64


def test_encoder_rejects_bad_options() -> None:
    with pytest.raises(BrushworkError, match="relu9_9"):
        VGG19(last_layer="relu9_9")
    with pytest.raises(BrushworkError, match="pooling"):
        VGG19(last_layer="relu1_1", pooling="median")
    with pytest.raises(BrushworkError, match="width"):
        VGG19(last_layer="relu1_1", width=0)


def test_encoder_load_weights_copies_and_checks_tensors() -> None:
    torch.manual_seed(1)
    weights = {
        "conv1_1.weight": torch.randn(64, 3, 3, 3),
        "conv1_1.bias": torch.randn(64),
        "conv1_2.weight": torch.randn(64, 64, 3, 3),
        "conv1_2.bias": torch.randn(64),
    }
    # Weights for layers beyond last_layer are not needed.
    encoder = VGG19(weights, last_layer="relu1_2")
    for key, value in weights.items():
        name, part = key.split(".")
        assert torch.equal(getattr(encoder.convs[name], part), value)

    missing = {k: v for k, v in weights.items() if k != "conv1_2.bias"}
    with pytest.raises(BrushworkError, match=r"conv1_2\.bias"):
        VGG19(missing, last_layer="relu1_2")
    wrong = {**weights, "conv1_1.weight": torch.randn(32, 3, 3, 3)}
    with pytest.raises(BrushworkError, match=r"conv1_1\.weight.*shape"):
        VGG19(wrong, last_layer="relu1_2")


# ----------------------------------------------------------------------------- forward


def test_forward_returns_exactly_the_requested_layers_with_their_shapes(
    tiny_encoder: VGG19,
) -> None:
    image = smooth_image(32, 48)
    layers = ["relu1_1", "pool1", "relu2_1", "pool2", "relu3_1", "pool3", "relu4_1", "pool4"]
    layers.append("relu5_1")
    features = tiny_encoder(image, layers)
    assert set(features) == set(layers)
    expected = {
        "relu1_1": (1, 4, 32, 48),
        "pool1": (1, 4, 16, 24),
        "relu2_1": (1, 8, 16, 24),
        "pool2": (1, 8, 8, 12),
        "relu3_1": (1, 16, 8, 12),
        "pool3": (1, 16, 4, 6),
        "relu4_1": (1, 32, 4, 6),
        "pool4": (1, 32, 2, 3),
        "relu5_1": (1, 32, 2, 3),
    }
    assert {name: tuple(f.shape) for name, f in features.items()} == expected


def test_forward_defaults_to_every_built_layer(tiny_encoder: VGG19) -> None:
    features = tiny_encoder(smooth_image(16, 16))
    assert list(features) == list(tiny_encoder.layer_names)


def test_forward_on_a_batch_keeps_images_independent(tiny_encoder: VGG19) -> None:
    a, b = smooth_image(16, 16, seed=1), smooth_image(16, 16, seed=2)
    batch = tiny_encoder(torch.cat([a, b]), ["relu3_1"])["relu3_1"]
    single = tiny_encoder(b, ["relu3_1"])["relu3_1"]
    assert batch.shape[0] == 2
    torch.testing.assert_close(batch[1:], single, rtol=1e-4, atol=1e-5)


def test_requesting_conv_and_relu_keeps_the_conv_output_intact(tiny_encoder: VGG19) -> None:
    image = smooth_image(16, 24)
    features = tiny_encoder(image, ["conv1_1", "relu1_1", "conv3_1", "relu3_1"])
    for block in (1, 3):
        conv, relu = features[f"conv{block}_1"], features[f"relu{block}_1"]
        assert (conv < 0).any(), "a random conv should give negative outputs"
        assert conv.data_ptr() != relu.data_ptr()
        torch.testing.assert_close(relu, conv.clamp(min=0), rtol=0, atol=0)
    # The conv output equals what the conv alone computes.
    alone = tiny_encoder(image, ["conv3_1"])["conv3_1"]
    torch.testing.assert_close(features["conv3_1"], alone, rtol=0, atol=0)


def test_relu_alone_equals_conv_clamped(tiny_encoder: VGG19) -> None:
    image = smooth_image(16, 24)
    relu = tiny_encoder(image, ["relu2_2"])["relu2_2"]
    conv = tiny_encoder(image, ["conv2_2"])["conv2_2"]
    assert (relu >= 0).all()
    torch.testing.assert_close(relu, conv.clamp(min=0), rtol=0, atol=0)


def test_forward_rejects_layers_deeper_than_last_layer(tiny_encoder: VGG19) -> None:
    image = smooth_image(16, 16)
    with pytest.raises(BrushworkError, match=r"conv5_2.*relu5_1"):
        tiny_encoder(image, ["relu1_1", "conv5_2"])
    with pytest.raises(BrushworkError, match="pool5"):
        tiny_encoder(image, ["pool5"])
    with pytest.raises(BrushworkError, match="relu0_1"):
        tiny_encoder(image, ["relu0_1"])


def test_avg_and_max_pooling_differ(tiny_encoder: VGG19) -> None:
    avg = VGG19(last_layer="relu5_1", pooling="avg", width=1 / 16).eval()
    avg.load_state_dict(tiny_encoder.state_dict())
    image = smooth_image(16, 16)
    max_out = tiny_encoder(image, ["relu1_2", "pool1"])
    avg_out = avg(image, ["relu1_2", "pool1"])
    # Same weights: identical before the first pool, different after it.
    torch.testing.assert_close(max_out["relu1_2"], avg_out["relu1_2"], rtol=0, atol=0)
    assert max_out["pool1"].shape == avg_out["pool1"].shape
    assert not torch.allclose(max_out["pool1"], avg_out["pool1"])
    x = max_out["relu1_2"]
    torch.testing.assert_close(max_out["pool1"], torch.nn.functional.max_pool2d(x, 2))
    torch.testing.assert_close(avg_out["pool1"], torch.nn.functional.avg_pool2d(x, 2))


# ----------------------------------------------------------------------------- preprocessing


def test_preprocess_gives_caffe_bgr_0_255_minus_mean(tiny_encoder: VGG19) -> None:
    assert CAFFE_MEAN_BGR == (103.939, 116.779, 123.68)
    image = torch.empty(1, 3, 2, 3)
    image[:, 0], image[:, 1], image[:, 2] = 0.2, 0.4, 0.6  # R, G, B
    out = tiny_encoder.preprocess(image)
    assert out.shape == image.shape
    expected = torch.tensor([0.6 * 255 - 103.939, 0.4 * 255 - 116.779, 0.2 * 255 - 123.68])
    torch.testing.assert_close(out, expected.view(1, 3, 1, 1).expand(1, 3, 2, 3), rtol=0, atol=1e-4)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([49.061, -14.779, -72.68]))
    # black and white map to minus the mean and 255 minus the mean
    mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    torch.testing.assert_close(tiny_encoder.preprocess(torch.zeros(1, 3, 1, 1)), -mean)
    torch.testing.assert_close(tiny_encoder.preprocess(torch.ones(1, 3, 1, 1)), 255 - mean)


# ----------------------------------------------------------------------------- layout, gradient


def test_channels_last_gives_the_same_features(tiny_encoder: VGG19) -> None:
    image = smooth_image(24, 32)
    layers = ["conv1_1", "relu2_1", "pool3", "relu5_1"]
    reference = tiny_encoder(image, layers)
    fast = copy.deepcopy(tiny_encoder).use_channels_last()
    assert fast.channels_last
    assert all(
        conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in fast.convs.values()
    )
    out = fast(image, layers)
    assert set(out) == set(layers)
    for name in layers:
        torch.testing.assert_close(out[name], reference[name], rtol=1e-4, atol=1e-4)
    back = fast.use_channels_last(False)
    assert not back.channels_last
    assert back.convs["conv1_2"].weight.is_contiguous()


def test_gradients_flow_to_the_input(tiny_encoder: VGG19) -> None:
    image = smooth_image(16, 16).requires_grad_(True)
    features = tiny_encoder(image, ["conv2_1", "relu2_1", "relu4_1"])
    loss = features["relu4_1"].pow(2).mean() + features["conv2_1"].mean()
    loss = loss + features["relu2_1"].mean()
    loss.backward()
    assert image.grad is not None
    assert torch.isfinite(image.grad).all()
    assert image.grad.abs().sum() > 0
    # frozen encoder: no parameter gets a gradient
    assert all(p.grad is None for p in tiny_encoder.parameters())
