"""Models: ĝ's receptive field, parameter counts (spec §4.1), loss, decoding, the vocabulary."""

import dataclasses
from dataclasses import replace

import pytest
import torch
from torch import nn

from sparling.experiments import get_experiment
from sparling.models import CTCHeadConfig, ModelConfig, MotifNetConfig, SparlingModel, Vocabulary
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
    centre = (0, 0, *(n // 2 for n in out.shape[2:]))
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


@pytest.mark.parametrize("stride, dims", [(2, 2), (4, 2), (3, 1)])
def test_strided_motif_net_has_one_position_per_block_and_a_block_aligned_receptive_field(stride, dims):
    config = MotifNetConfig(hidden=3, residual_units=1, spatial_dims=dims, stride=stride, num_motifs=2)
    size = 12 * stride
    out = ResidualMotifNet(config)(torch.rand(2, 1, *([size] * dims)))
    assert out.shape == (2, 2, *([12] * dims))
    assert config.receptive_field == stride * 5
    assert measured_receptive_field(config, size) == [stride * 5] * dims


def test_strided_motif_net_position_reads_its_own_block_through_conv_in():
    """Without residual units a map position depends on exactly its own 4×4 block of pixels."""
    net = ResidualMotifNet(MotifNetConfig(hidden=4, residual_units=1, stride=4, num_motifs=1)).eval()
    net.units = nn.Sequential()
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    net(x)[0, 0, 1, 2].backward()
    touched = torch.nonzero(x.grad[0, 0].abs() > 0)
    assert (touched[:, 0].min(), touched[:, 0].max(), touched[:, 1].min(), touched[:, 1].max()) == (4, 7, 8, 11)
    assert len(touched) == 16


def test_strided_motif_net_rejects_inputs_it_cannot_tile():
    net = ResidualMotifNet(MotifNetConfig(hidden=3, residual_units=1, stride=4))
    with pytest.raises(ValueError, match="not divisible by the motif net's stride 4"):
        net(torch.rand(1, 1, 30, 32))


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
    assert loss.item() > ce.item()  # + the pointer head's presence loss; Sparling adds no penalty:
    assert model.bottleneck.penalty(model.motif_map(x)).item() == 0
    without_presence = SparlingModel(dataclasses.replace(model.config, head=dataclasses.replace(model.config.head, presence_loss=0.0, map_presence_loss=0.0)),
                                     DIGITS, max_output_length=8).train()
    total, cross_entropy = without_presence.loss(x, [("1", "2", "3")] * 3)
    assert total.item() == pytest.approx(cross_entropy.item())
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



# --- the pointer head (cpu preset) -----------------------------------------------------------------


def pointer_head(**kw):
    from sparling.models.heads import PointerHead, PointerHeadConfig

    torch.manual_seed(0)
    return PointerHead(PointerHeadConfig(**{"tokens": 6, "d_model": 16, "heads": 2, "feedforward": 32, **kw}), 10, 12)


def test_pointer_head_keeps_the_strongest_cells_and_gives_vocabulary_logits():
    head = pointer_head()
    m = torch.zeros(2, 10, 100, 100)
    m[0, 3, 40, 50] = 2.0
    memory = head.encode(m)
    assert memory.shape == (2, 6, 16)
    logits = head.decode(memory, torch.tensor([[0, 5, 7], [0, 2, 1]]))
    assert logits.shape == (2, 3, 12)
    assert torch.all(logits[..., 0] < -1e3)  # <s> is never produced


def test_pointer_head_tokens_follow_the_activations():
    head = pointer_head(tokens=1)
    a, b = torch.zeros(1, 10, 100, 100), torch.zeros(1, 10, 100, 100)
    a[0, 2, 10, 10] = 1.0
    b[0, 2, 80, 60] = 1.0
    assert not torch.allclose(head.encode(a), head.encode(b))  # the kept cell's position enters its token


def test_pointer_head_passes_gradients_into_the_motif_map_and_presence_loss_uses_labels_only():
    head = pointer_head()
    m = torch.rand(2, 10, 100, 100, requires_grad=True)
    targets = torch.tensor([[2, 3, 1], [4, 1, 1]])
    memory = head.encode(m)
    loss = head.decode(memory, torch.tensor([[0, 2, 3], [0, 4, 1]])).logsumexp(-1).sum() + head.auxiliary_loss(m, memory, targets)
    loss.backward()
    assert m.grad is not None and m.grad.abs().sum() > 0
    silent = pointer_head(presence_loss=0.0, map_presence_loss=0.0)
    assert silent.auxiliary_loss(m.detach(), memory.detach(), targets).item() == 0.0


def test_pointer_head_channel_tokens_are_each_channels_strongest_pixels():
    head = pointer_head(per_channel_tokens=2)
    m = torch.zeros(1, 10, 100, 100, requires_grad=True)
    with torch.no_grad():
        m[0, 4, 30, 70] = 5.0
    memory = head.encode(m)
    assert memory.shape == (1, 20, 16)
    (memory * torch.randn(memory.shape, generator=torch.Generator().manual_seed(0))).sum().backward()
    assert m.grad[0, 4, 30, 70] != 0  # the kept value carries gradient back to the map
    moved = m.detach().clone()
    moved[0, 4, 30, 70], moved[0, 4, 60, 20] = 0.0, 5.0
    changed = (head.encode(moved) - memory.detach()).abs().sum(-1)[0]
    assert changed[8] > 0  # channel 4's strongest pixel moved, and its token with it


# --- the set head (LaTeX cpu preset) -----------------------------------------------------------------


def set_head(**kw):
    from sparling.models.heads import SetHead, SetHeadConfig

    torch.manual_seed(0)
    config = SetHeadConfig(**{"tokens": 4, "d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1,
                              "feedforward": 32, "fourier_features": 2, **kw})
    return SetHead(config, 5, 9)


def test_set_head_reads_the_largest_entries_and_nothing_else():
    head = set_head().eval()
    m = torch.zeros(2, 5, 6, 8)
    m[:, 1, 2, 3], m[:, 4, 5, 0] = 3.0, 1.0
    m[1, 0, 0, 7], m[1, 2, 0, 0] = 0.5, 0.2  # sample 1 fills the four tokens; sample 0 has two entries
    memory = head.encode(m)
    assert memory.shape == (2, 4, 16)
    logits = head.decode(memory, torch.tensor([[0, 4, 6], [0, 2, 1]]))
    assert logits.shape == (2, 3, 9)
    # entries below the kept four do not change the memory; a kept entry's position does
    faint = m.clone()
    faint[:, 2, 1, 1] = 0.01
    faint[:, 3, 4, 4] = 0.02
    faint[:, 3, 0, 1] = 0.03
    assert torch.allclose(head.encode(faint)[1], memory[1], atol=1e-6)
    moved = m.clone()
    moved[:, 1, 2, 3], moved[:, 1, 5, 7] = 0.0, 3.0
    assert not torch.allclose(head.encode(moved), memory, atol=1e-4)
    # absent entries (value 0) all become the same token, whatever their position or channel
    assert head.encode(torch.zeros(1, 5, 6, 8)).std(dim=1).max() < 1e-5


def test_set_head_passes_gradients_into_the_kept_entries():
    head = set_head()
    m = torch.zeros(1, 5, 6, 8, requires_grad=True)
    with torch.no_grad():
        m[0, 2, 3, 4] = 2.0
    head.decode(head.encode(m), torch.tensor([[0, 3]])).logsumexp(-1).sum().backward()
    assert m.grad[0, 2, 3, 4] != 0
    assert m.grad.abs().sum() == m.grad[0, 2, 3, 4].abs()  # entries that were 0 carry none


def test_set_head_map_presence_loss_reads_labels_and_reaches_every_channel():
    m = torch.rand(2, 5, 6, 8, requires_grad=True)
    targets = torch.tensor([[2, 3, 1], [4, 1, 1]])
    silent = set_head()
    assert silent.auxiliary_loss(m, silent.encode(m), targets).item() == 0.0
    head = set_head(map_presence_loss=1.0)
    loss = head.auxiliary_loss(m, head.encode(m), targets)
    assert loss.item() > 0
    loss.backward()
    assert (m.grad.flatten(2).abs().sum(-1) > 0).all()  # each channel's spatial maximum gets a gradient


def test_set_head_reads_1d_maps_and_rejects_bad_configs():
    from sparling.models.heads import SetHeadConfig

    head = set_head()
    m = torch.zeros(2, 5, 12)
    m[0, 1, 3] = 1.0
    assert head.encode(m).shape == (2, 4, 16)
    with pytest.raises(ValueError, match="tokens"):
        SetHeadConfig(tokens=0)
    with pytest.raises(ValueError, match="fourier_features"):
        SetHeadConfig(fourier_features=-1)


# --- 1-D maps: CTC head, pointer head, paper head ----------------------------------------------------


def ctc_model(**head) -> SparlingModel:
    from sparling.sparsity import SparlingConfig

    torch.manual_seed(0)
    config = ModelConfig(MotifNetConfig(hidden=4, residual_units=2, num_motifs=3, spatial_dims=1), SparlingConfig(),
                         CTCHeadConfig(**{"hidden": 8, **head}))
    return SparlingModel(config, ("a", "b", "c"), max_output_length=6)


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    model = ctc_model()
    vocabulary = model.vocabulary
    path = [0, 2, 2, 0, 2, 3, 3, 1, 4, 0]  # blank a a blank a b b </s> c blank
    log_probs = torch.full((1, len(path), len(vocabulary)), -10.0)
    log_probs[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
    ids = model.head.greedy(log_probs, max_length=10)
    assert [vocabulary.decode(row) for row in ids] == [("a", "a", "b", "c")]
    assert model.head.greedy(log_probs, max_length=2) == [[2, 2]]


def test_ctc_head_loss_trains_the_motif_net_and_predicts_symbol_tuples():
    model = ctc_model().train()
    x = torch.randn(4, 1, 32)
    loss, ctc = model.loss(x, [("a",), ("b", "c"), ("a", "a"), ()])
    assert torch.isfinite(loss) and loss.item() == pytest.approx(ctc.item())  # no auxiliary loss
    loss.backward()
    assert model.motif_net.conv_in.weight.grad.abs().sum() > 0
    model.eval()
    predictions = model.predict(x)
    assert len(predictions) == 4 and all(isinstance(p, tuple) and len(p) <= 6 for p in predictions)
    with pytest.raises(ValueError, match="1-D motif maps"):
        model.head.encode(torch.zeros(1, 3, 4, 4))


def test_ctc_head_config_validation():
    with pytest.raises(ValueError, match="kernel must be odd"):
        CTCHeadConfig(kernel=4)
    with pytest.raises(ValueError, match="layers must be >= 1"):
        CTCHeadConfig(layers=0)


def test_pointer_head_reads_a_1d_map_as_a_row():
    from sparling.models.heads import PointerHead, PointerHeadConfig

    torch.manual_seed(0)
    head = PointerHead(PointerHeadConfig(per_channel_tokens=2, d_model=16, heads=2, feedforward=32), 3, 6).eval()
    m = torch.zeros(2, 3, 40)
    m[0, 1, 7] = 2.0
    flat = head.encode(m)
    as_row = head.encode(m.unsqueeze(2))
    assert flat.shape == (2, 6, 16) and torch.equal(flat, as_row)
    with pytest.raises(ValueError, match="per_channel_tokens"):
        PointerHead(PointerHeadConfig(cell=5, d_model=16, heads=2, feedforward=32), 3, 6).encode(m)


def test_paper_head_1d_pools_time_by_8():
    from sparling.models.heads import PaperHead, PaperHeadConfig

    head = PaperHead(PaperHeadConfig(channels=16, heads=2, encoder_layers=1, decoder_layers=1, feedforward=32,
                                     spatial_dims=1), 10, 12).eval()
    memory = head.encode(torch.rand(2, 10, 642))
    assert memory.shape == (2, 80, 16)  # 642 frames → 80 (MaxPool1d(8), floor)
    assert head.decode(memory, torch.zeros(2, 3, dtype=torch.long)).shape == (2, 3, 12)



def test_head_loss_is_the_loss_of_a_given_map_without_the_bottleneck_penalty():
    from sparling.sparsity import L1Config

    smoke = smoke_model()
    torch.manual_seed(0)
    model = SparlingModel(replace(smoke.config, bottleneck=L1Config(weight=2.0)), DIGITS, max_output_length=8).train()
    x, ys = torch.rand(2, 1, 100, 100), [("1", "2"), ("3",)]
    torch.manual_seed(1)
    loss, ce = model.loss(x, ys)
    torch.manual_seed(1)
    m = model.motif_map(x)
    head_loss, head_ce = model.head_loss(m, ys)
    penalty = model.bottleneck.penalty(m)
    assert penalty.item() > 0 and head_ce.item() == pytest.approx(ce.item())
    assert head_loss.item() > head_ce.item()  # the pointer head's presence losses are in it
    assert loss.item() == pytest.approx((head_loss + penalty).item())


def _models_and_inputs():
    torch.manual_seed(1)
    latex = get_experiment("latex_ocr_mt", "smoke")
    yield "pointer", smoke_model().eval(), torch.rand(6, 1, 40, 40)
    yield "paper", latex.build_model(1).eval(), (torch.rand(6, 1, 120, 360) < 0.3).float()
    yield "ctc", ctc_model().eval(), torch.randn(6, 1, 32)


@pytest.mark.parametrize("max_length", [2, 5, None])
def test_exact_matches_gives_the_verdicts_of_greedy_decoding(max_length):
    for name, model, x in _models_and_inputs():
        if max_length:
            model.max_output_length = max_length
        predictions = model.predict(x)
        symbols = model.vocabulary.tokens[2:]
        assert model.exact_matches(x, predictions).all(), name
        # a wrong last symbol, one symbol too many, one too few: never a match
        wrong = [p[:-1] + (symbols[(symbols.index(p[-1]) + 1) % len(symbols)],) if p else (symbols[0],) for p in predictions]
        longer = [p + (symbols[0],) for p in predictions]
        shorter = [p[:-1] if p else (symbols[0], symbols[0]) for p in predictions]
        for variant in (wrong, longer, shorter):
            assert not model.exact_matches(x, variant).any(), name
        mixed = [p if i % 2 else w for i, (p, w) in enumerate(zip(predictions, wrong))]
        assert model.exact_matches(x, mixed).tolist() == [bool(i % 2) for i in range(len(x))], name


@torch.no_grad()
def test_greedy_decoding_never_emits_the_start_token():
    model = get_experiment("latex_ocr_mt", "smoke").build_model(1).eval()
    # a head whose logits favour <s> everywhere, then the first symbol
    bias = torch.zeros(len(model.vocabulary))
    bias[model.vocabulary.bos], bias[2] = 50.0, 25.0
    model.head.decoder.out.bias.data = bias
    torch.manual_seed(0)
    predictions = model.predict((torch.rand(2, 1, 120, 360) < 0.3).float())
    # without the rule every step would be <s> (dropped by decode): ()
    assert predictions == [(model.vocabulary.tokens[2],) * model.max_output_length] * 2
