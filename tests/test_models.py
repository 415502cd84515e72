"""Models: ĝ's receptive field, parameter counts (spec §4.1), loss, decoding, the vocabulary."""

import pytest
import torch
from torch import nn

from sparling.experiments import get_experiment
from sparling.models import ModelConfig, MotifNetConfig, SparlingModel, Vocabulary
from sparling.models.motif_net import ResidualMotifNet

DIGITS = tuple("0123456789")


@pytest.fixture(scope="module")
def paper_model():
    return get_experiment("digit_circle_mt", "paper").build_model(1).eval()


def smoke_model(**motif_net) -> SparlingModel:
    torch.manual_seed(0)
    config = get_experiment("digit_circle_mt", "smoke").model
    if motif_net:
        config = ModelConfig(MotifNetConfig(**{"hidden": 4, **motif_net}), config.bottleneck, config.head)
    return SparlingModel(config, DIGITS, max_output_length=8)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- receptive field -------------------------------------------------------------------------------


def measured_receptive_field(config: MotifNetConfig, size: int = 41) -> list[int]:
    """Extent (per spatial axis) of the inputs that one central output depends on.

    BN in eval mode with a large bias keeps every ReLU open, so the net is affine and the
    gradient is nonzero exactly inside the receptive field (up to a measure-zero cancellation).
    """
    torch.manual_seed(0)
    net = ResidualMotifNet(config).eval()
    for module in net.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.constant_(module.bias, 100.0)
    shape = (1, config.in_channels, *([size] * config.spatial_dims))
    x = torch.rand(shape, requires_grad=True)
    out = net(x)
    centre = (0, 0, *([size // 2] * config.spatial_dims))
    out[centre].backward()
    nonzero = x.grad.abs().sum(dim=(0, 1)) > 0
    extents = []
    for axis in range(config.spatial_dims):
        other = tuple(a for a in range(config.spatial_dims) if a != axis)
        hit = torch.nonzero(nonzero.any(dim=other) if other else nonzero).flatten()
        extents.append(int(hit.max() - hit.min() + 1))
        assert len(hit) == extents[-1]  # contiguous
    return extents


def test_digit_circle_motif_net_receptive_field_is_17():
    config = get_experiment("digit_circle_mt", "cpu").model.motif_net
    assert config.receptive_field == 17
    assert measured_receptive_field(MotifNetConfig(hidden=4, residual_units=config.residual_units)) == [17, 17]


@pytest.mark.parametrize("units, dims", [(1, 2), (2, 2), (3, 1), (5, 1)])
def test_receptive_field_is_4_units_plus_1(units, dims):
    config = MotifNetConfig(hidden=3, residual_units=units, spatial_dims=dims)
    assert config.receptive_field == 4 * units + 1
    assert measured_receptive_field(config) == [4 * units + 1] * dims


def test_a_pixel_change_moves_only_outputs_within_the_receptive_field():
    """Default init, eval mode: outputs more than 8 pixels from a changed pixel do not move."""
    torch.manual_seed(1)
    net = ResidualMotifNet(MotifNetConfig(hidden=4)).eval()
    x = torch.rand(1, 1, 40, 40)
    y = x.clone()
    y[0, 0, 20, 20] += 1.0
    changed = (net(x) - net(y)).abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert rows.min() >= 12 and rows.max() <= 28 and cols.min() >= 12 and cols.max() <= 28


# --- sizes -----------------------------------------------------------------------------------------


def test_paper_parameter_counts(paper_model):
    assert count(paper_model) == pytest.approx(46.0e6, abs=0.5e6)
    assert count(paper_model.motif_net) == pytest.approx(0.30e6, abs=0.01e6)
    motif_net = paper_model.config.motif_net
    assert (motif_net.hidden, motif_net.residual_units, motif_net.num_motifs) == (64, 4, 10)


@torch.no_grad()
def test_paper_head_encodes_100x100_into_144_tokens(paper_model):
    memory = paper_model.head.encode(torch.rand(2, 10, 100, 100))
    assert memory.shape == (2, 12 * 12, 512)


# --- loss, decoding, precision ----------------------------------------------------------------------


def test_loss_is_finite_and_reaches_the_motif_net_through_the_bottleneck():
    model = smoke_model().train()
    x = torch.rand(3, 1, 40, 40)
    loss, ce = model.loss(x, [("1", "2", "3"), ("4", "5", "6", "7"), ("0", "8", "9")])
    assert loss.ndim == 0 and torch.isfinite(loss) and torch.isfinite(ce)
    assert loss.item() == pytest.approx(ce.item())  # Sparling adds no penalty
    loss.backward()
    for name, parameter in [("conv_in", model.motif_net.conv_in.weight), ("conv_out", model.motif_net.conv_out.weight),
                            ("bottleneck BN", model.bottleneck.norm.weight)]:
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@torch.no_grad()
def test_predict_returns_symbol_tuples_within_the_length_bound():
    model = smoke_model().eval()
    x = torch.rand(4, 1, 30, 30)
    for bound, predictions in [(8, model.predict(x)), (2, model.predict(x, max_length=2))]:
        assert len(predictions) == 4
        for prediction in predictions:
            assert isinstance(prediction, tuple) and len(prediction) <= bound
            assert set(prediction) <= set(DIGITS)


def test_bf16_body_keeps_the_motif_map_float32():
    model = smoke_model(bf16_body=True).eval()
    x = torch.rand(2, 1, 30, 30)
    with torch.no_grad():
        assert model.motif_net(x).dtype == torch.float32
        assert model.motif_map(x).dtype == torch.float32
    model.train()
    loss, _ = model.loss(x, [("1", "2", "3"), ("4", "5", "6")])
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert model.motif_net.conv_in.weight.grad.dtype == torch.float32


def test_density_is_set_on_the_bottleneck_and_saved_with_the_weights():
    model = smoke_model()
    model.density = 0.125
    assert model.bottleneck.density == 0.125
    assert model.state_dict()["bottleneck._density"].item() == 0.125
    with pytest.raises(ValueError, match="density must be in"):
        model.density = 0.0


# --- vocabulary ------------------------------------------------------------------------------------


def test_vocabulary_round_trip():
    vocabulary = Vocabulary(DIGITS)
    assert len(vocabulary) == 12 and (vocabulary.bos, vocabulary.eos) == (0, 1)
    ys = [("3", "1", "4"), (), ("9",)]
    ids = vocabulary.encode(ys, 6)
    assert ids.shape == (3, 6) and ids.dtype == torch.long
    assert ids[0].tolist() == [0, 5, 3, 6, 1, 1]
    assert [vocabulary.decode(row[1:].tolist()) for row in ids] == ys


def test_vocabulary_errors():
    vocabulary = Vocabulary(DIGITS)
    with pytest.raises(ValueError, match="does not fit length 4"):
        vocabulary.encode([("1", "2", "3")], 4)
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary(("a", "a"))
    with pytest.raises(ValueError, match="exclude"):
        Vocabulary(("a", "</s>"))

