"""The Sparling layer and the baseline bottlenecks (cf. the authors' library tests, spec §9.1)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from torch import nn

from sparling.sparsity import (
    BatchTopKBottleneck,
    KLBottleneck,
    L1Bottleneck,
    NoBottleneck,
    SpatialSparsity,
    TopKBottleneck,
    get_density,
    kth_smallest_per_row,
    top_values,
    set_density,
)

TOLERANCE = 0.03
CHANNELS = 8


def gaussian(shape, seed, means=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    if means is not None:
        x = x + means.view(1, -1, *([1] * (len(shape) - 2)))
    return x


def calibrate(layer, shape, batches, seed=0, means=None):
    layer.train()
    for b in range(batches):
        layer(gaussian(shape, seed * 100_000 + b, means))
    layer.eval()
    return layer


def zero_fraction_per_channel(out):
    return (out == 0).float().transpose(0, 1).reshape(out.shape[1], -1).mean(dim=1)


def no_bn(channels, density, **kw):
    return SpatialSparsity(channels, density, batchnorm=False, **kw)


@pytest.mark.parametrize("sparsity", [0.3, 0.7, 0.9, 0.95])
def test_per_channel_sparsity_matches_target_2d(sparsity):
    layer = calibrate(SpatialSparsity(CHANNELS, 1 - sparsity), (32, CHANNELS, 8, 8), 100)
    with torch.no_grad():
        out = layer(gaussian((256, CHANNELS, 8, 8), 99))
    assert torch.all((zero_fraction_per_channel(out) - sparsity).abs() < TOLERANCE)


def test_per_channel_sparsity_0999_with_accumulation():
    # 32·8·8 = 2048 values per channel and batch: 2.05 expected nonzeros < 10, so every
    # threshold update pools 5 batches.
    layer = no_bn(CHANNELS, 1e-3)
    calibrate(layer, (32, CHANNELS, 8, 8), 2000)
    assert torch.all((layer.threshold - norm.ppf(0.999)).abs() < 0.3)
    with torch.no_grad():
        out = layer(gaussian((2000, CHANNELS, 8, 8), 99))
    sparsity = (out == 0).float().mean().item()
    assert 0.9985 < sparsity < 0.9995
    assert torch.all((zero_fraction_per_channel(out) - 0.999).abs() < TOLERANCE)


def test_accumulation_waits_for_enough_expected_nonzeros():
    layer = no_bn(2, 0.01, momentum=1.0)  # 10 expected nonzeros need 1000 values per channel
    layer.train()
    layer(gaussian((4, 2, 100), 0).view(4, 2, 10, 10))  # 400 values: no update yet
    assert torch.all(layer.threshold == 0)
    layer(gaussian((4, 2, 100), 1).view(4, 2, 10, 10))
    layer(gaussian((2, 2, 100), 2).view(2, 2, 10, 10))  # 1000 values: update
    assert torch.all(layer.threshold != 0)


def test_accumulated_threshold_equals_order_statistic_of_the_union():
    layer = no_bn(3, 0.004, momentum=1.0)
    batches = [gaussian((5, 3, 10, 10), s) for s in range(5)]  # 500 values per channel each
    layer.train()
    for b in batches:
        layer(b)
    union = torch.cat([b.transpose(0, 1).reshape(3, -1) for b in batches], dim=1)
    k = max(1, int(union.shape[1] * (1 - 0.004)))
    assert torch.equal(layer.threshold, union.kthvalue(k, dim=1).values)


def test_heterogeneous_channel_means_without_batchnorm():
    means = torch.linspace(-2, 2, CHANNELS)
    layer = calibrate(no_bn(CHANNELS, 0.5), (32, CHANNELS, 8, 8), 100, means=means)
    assert torch.all((layer.threshold - means).abs() < 0.1)
    with torch.no_grad():
        out = layer(gaussian((256, CHANNELS, 8, 8), 99, means))
    assert torch.all((zero_fraction_per_channel(out) - 0.5).abs() < TOLERANCE)


def test_batchnorm_removes_heterogeneous_means():
    means = torch.linspace(-5, 5, CHANNELS)
    layer = calibrate(SpatialSparsity(CHANNELS, 0.2), (32, CHANNELS, 8, 8), 100, means=means)
    with torch.no_grad():
        out = layer(gaussian((256, CHANNELS, 8, 8), 99, means))
    assert torch.all((zero_fraction_per_channel(out) - 0.8).abs() < TOLERANCE)


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7, 0.9])
def test_thresholds_approximate_normal_quantiles(sparsity):
    layer = calibrate(no_bn(CHANNELS, 1 - sparsity), (64, CHANNELS, 8, 8), 100)
    assert torch.all((layer.threshold - norm.ppf(sparsity)).abs() < 0.1)


def test_single_threshold_controls_global_sparsity():
    means = torch.linspace(-1, 1, CHANNELS)
    layer = calibrate(no_bn(CHANNELS, 0.3, per_channel=False), (32, CHANNELS, 8, 8), 100, means=means)
    assert layer.threshold.shape == (1,)
    with torch.no_grad():
        out = layer(gaussian((256, CHANNELS, 8, 8), 99, means))
    per_channel = zero_fraction_per_channel(out)
    assert abs((out == 0).float().mean().item() - 0.7) < TOLERANCE
    assert per_channel[0] - per_channel[-1] > 0.3  # one threshold cannot equalise channels


def test_eval_mode_freezes_thresholds():
    layer = calibrate(SpatialSparsity(CHANNELS, 0.3), (32, CHANNELS, 8, 8), 20)
    before = layer.threshold.clone()
    with torch.no_grad():
        layer(100 * gaussian((32, CHANNELS, 8, 8), 5))
    assert torch.equal(layer.threshold, before)


def test_threshold_is_updated_before_it_is_applied():
    x = torch.arange(1.0, 11.0).view(1, 1, 10)
    layer = SpatialSparsity(1, 0.5, spatial_dims=1, batchnorm=False, momentum=1.0, min_expected_nonzeros=0)
    layer.train()
    out = layer(x)
    assert layer.threshold.item() == 5.0  # k = 5th smallest of 1..10
    assert torch.equal(out, torch.relu(x - 5.0))


def test_no_gradient_into_threshold_but_gradient_into_input():
    layer = SpatialSparsity(CHANNELS, 0.5)
    z = gaussian((4, CHANNELS, 6, 6), 0).requires_grad_()
    layer(z).sum().backward()
    assert not layer.threshold.requires_grad
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_one_dimensional_inputs(sparsity):
    layer = calibrate(SpatialSparsity(CHANNELS, 1 - sparsity, spatial_dims=1), (16, CHANNELS, 64), 100)
    with torch.no_grad():
        out = layer(gaussian((256, CHANNELS, 64), 99))
    assert torch.all((zero_fraction_per_channel(out) - sparsity).abs() < TOLERANCE)
    assert isinstance(layer.norm, nn.BatchNorm1d)


def test_state_dict_holds_threshold_and_density():
    layer = calibrate(SpatialSparsity(CHANNELS, 0.1), (16, CHANNELS, 8, 8), 10)
    fresh = SpatialSparsity(CHANNELS, 0.5)
    fresh.load_state_dict(layer.state_dict())
    assert torch.equal(fresh.threshold, layer.threshold)
    assert fresh.density == pytest.approx(0.1)


def test_density_propagates_to_every_layer():
    model = nn.Sequential(SpatialSparsity(4, 0.5), nn.Identity(), nn.Sequential(SpatialSparsity(4, 0.5, per_channel=False)))
    set_density(model, 0.125)
    assert [m.density for m in model.modules() if isinstance(m, SpatialSparsity)] == [0.125, 0.125]
    assert get_density(model) == 0.125
    with pytest.raises(ValueError, match="no bottleneck"):
        set_density(nn.Linear(2, 2), 0.1)


@pytest.mark.parametrize("bad", [-0.1, 0.0, 1.5, float("nan")])
def test_bad_density_is_rejected(bad):
    with pytest.raises(ValueError, match="density"):
        SpatialSparsity(4, bad)
    layer = SpatialSparsity(4, 0.5)
    with pytest.raises(ValueError, match="density"):
        layer.density = bad


def test_wrong_rank_and_channel_mismatch_are_rejected():
    layer = SpatialSparsity(4, 0.5)
    with pytest.raises(ValueError, match="rank 4"):
        layer(torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="channels=4"):
        layer(torch.zeros(2, 3, 5, 5))
    with pytest.raises(ValueError, match="channels"):
        SpatialSparsity(0, 0.5)
    with pytest.raises(ValueError, match="spatial_dims"):
        SpatialSparsity(4, 0.5, spatial_dims=3)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    length=st.integers(1, 5000),
    density=st.floats(1e-5, 1.0),
    seed=st.integers(0, 2**16),
    ties=st.booleans(),
)
def test_fast_threshold_equals_exact_order_statistic(rows, length, density, seed, ties):
    values = torch.randn(rows, length, generator=torch.Generator().manual_seed(seed))
    if ties:
        values = values.round(decimals=1)
    k = max(1, int(length * (1 - density)))
    assert torch.equal(kth_smallest_per_row(values, k), values.kthvalue(k, dim=1).values)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 8), st.integers(1, 5), st.integers(1, 30), st.integers(1, 30)),
    density=st.floats(1e-4, 1.0),
    per_channel=st.booleans(),
)
def test_layer_threshold_equals_reference_kthvalue(shape, density, per_channel):
    n, c, h, w = shape
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(n * 1000 + h))
    layer = SpatialSparsity(c, density, per_channel=per_channel, batchnorm=False, momentum=1.0, min_expected_nonzeros=0)
    layer.train()
    layer(z)
    # The paper's formulation: permute to (N·H·W, C) and take the k-th smallest per column.
    flat = z.permute(0, 2, 3, 1).reshape(-1, c) if per_channel else z.reshape(-1, 1)
    k = max(1, int(flat.shape[0] * (1 - density)))
    assert torch.equal(layer.threshold, flat.kthvalue(k, dim=0).values)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 12), st.integers(1, 12)),
        st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 40)),
    ),
    m_fraction=st.floats(0.0, 1.0),
    per_channel=st.booleans(),
    ties=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_top_values_equal_the_sorted_upper_tail(shape, m_fraction, per_channel, ties, seed):
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    if ties:
        z = z.round()
    flat = z.transpose(0, 1).reshape(shape[1], -1) if per_channel else z.reshape(1, -1)
    m = max(1, round(m_fraction * flat.shape[1]))
    expected = flat.sort(dim=1, descending=True).values[:, :m]
    assert torch.equal(top_values(z, m, per_channel).sort(dim=1, descending=True).values, expected)


# --- baselines -----------------------------------------------------------------------------


def test_no_bottleneck_is_identity():
    z = gaussian((2, 3, 4, 4), 0)
    layer = NoBottleneck(3)
    assert torch.equal(layer(z), z)
    assert layer.penalty(z).item() == 0
    layer.density = 0.1  # bookkeeping only
    assert torch.equal(layer(z), z)


def test_l1_is_batchnorm_relu_with_mean_abs_penalty():
    z = gaussian((8, 3, 4, 4), 0)
    layer = L1Bottleneck(3, weight=2.0).train()
    out = layer(z)
    assert torch.all(out >= 0) and (out == 0).float().mean() > 0.3
    assert layer.penalty(out).item() == pytest.approx(2.0 * out.abs().mean().item())
    with pytest.raises(ValueError, match="weight"):
        L1Bottleneck(3, weight=-1)


def test_kl_is_sigmoid_with_bernoulli_kl_penalty_and_thresholded_head_input():
    z = gaussian((8, 3, 4, 4), 0)
    layer = KLBottleneck(3, weight=1.0, density=0.01).train()
    out = layer(z)
    assert torch.all((out > 0) & (out < 1))
    p, q = 0.01, out.mean().item()
    expected = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    assert layer.penalty(out).item() == pytest.approx(expected, rel=1e-5)
    head = layer.to_head(out)
    assert torch.equal(head > 0, out > 0.5)
    # At the target mean activation the penalty vanishes.
    assert layer.penalty(torch.full((10,), 0.01)).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("density", [0.1, 0.01, 1e-3])
def test_topk_keeps_k_per_sample(density):
    z = gaussian((4, 5, 10, 10), 0)  # after BatchNorm the top 10 % are all positive
    layer = TopKBottleneck(5, density)
    out = layer(z)
    k = max(1, round(density * 500))
    assert out.shape == z.shape
    assert all(int((out[i] != 0).sum()) == k for i in range(4))


def test_batch_topk_keeps_k_times_batch_and_learns_eval_threshold():
    layer = BatchTopKBottleneck(5, 0.02)
    layer.train()
    for s in range(50):
        out = layer(gaussian((8, 5, 10, 10), s))
        assert int((out != 0).sum()) == round(0.02 * out.numel())
    layer.eval()
    with torch.no_grad():
        out = layer(gaussian((64, 5, 10, 10), 99))
    assert abs((out != 0).float().mean().item() - 0.02) < 0.005


@pytest.mark.parametrize(
    "layer",
    [
        SpatialSparsity(3, 0.1),
        SpatialSparsity(3, 0.1, per_channel=False),
        NoBottleneck(3),
        L1Bottleneck(3, 1.0),
        KLBottleneck(3, 1.0),
        TopKBottleneck(3, 0.1),
        BatchTopKBottleneck(3, 0.1),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_every_bottleneck_shares_the_interface(layer):
    for dims in (2, 1):
        if dims == 1:
            layer = type(layer)(3, **_kwargs(layer), spatial_dims=1)
        z = gaussian((4, 3, 16) if dims == 1 else (4, 3, 8, 8), 0)
        out = layer.train()(z)
        assert out.shape == z.shape
        assert layer.penalty(out).dim() == 0
        assert layer.to_head(out).shape == z.shape
        layer.density = 0.25
        assert layer.density == 0.25
        with pytest.raises(ValueError, match="channels"):
            layer(torch.zeros((4, 2, 16) if dims == 1 else (4, 2, 8, 8)))


def _kwargs(layer):
    if isinstance(layer, (L1Bottleneck, KLBottleneck)):
        return {"weight": layer.weight}
    if isinstance(layer, SpatialSparsity):
        return {"per_channel": layer.per_channel}
    return {}


@pytest.mark.parametrize("batchnorm", [True, False])
def test_output_and_gradient_equal_the_out_of_place_formulation(batchnorm):
    layer = SpatialSparsity(4, 0.1, batchnorm=batchnorm).train()
    x = gaussian((8, 4, 10, 10), 3).requires_grad_()
    x_before = x.detach().clone()
    weights = torch.randn(8, 4, 10, 10, generator=torch.Generator().manual_seed(1))
    out = layer(x)
    (out * weights).sum().backward()
    assert torch.equal(x.detach(), x_before)  # the caller's tensor is never modified
    reference_x = x.detach().clone().requires_grad_()
    normed = nn.functional.batch_norm(reference_x, None, None, layer.norm.weight, layer.norm.bias, True) if batchnorm else reference_x
    reference = torch.relu(normed - layer.threshold.view(1, -1, 1, 1))
    (reference * weights).sum().backward()
    assert torch.allclose(out, reference, atol=1e-6)
    assert torch.allclose(x.grad, reference_x.grad, atol=1e-6)
