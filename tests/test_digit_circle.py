"""DigitCircle generator (REPRODUCTION_SPEC §3.1, §3.2, §2.4)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from sparling.domains import (
    TEST_SPLIT,
    VALIDATION_SPLIT,
    BaseDomain,
    Domain,
    Motif,
    compute_seed,
)
from sparling.domains.digit_circle import (
    DigitCircleConfig,
    DigitCircleDomain,
    DigitCircleSingleDigitDomain,
    canonicalize,
    load_stamps,
    stamp_mean_fill,
    theoretical_min_density,
)

WIDTHS = {"0": 9, "1": 7, "2": 8, "3": 9, "4": 8, "5": 9, "6": 8, "7": 8, "8": 7, "9": 8}
INK = {"0": 30, "1": 16, "2": 21, "3": 23, "4": 25, "5": 26, "6": 28, "7": 16, "8": 27, "9": 31}
STAMPS_SHA256 = "9b751c3c8786773faa5bad4c459d85debb3489fe65527c920c93789168070148"


@pytest.fixture(scope="module")
def domain() -> DigitCircleDomain:
    return DigitCircleDomain()


@pytest.fixture(scope="module")
def clean_domain() -> DigitCircleDomain:
    return DigitCircleDomain(DigitCircleConfig().clean())


def centre(m: Motif) -> tuple[int, int]:
    """The shifted stamp ``point`` = top-left + (h//2, w//2)."""
    rows, cols = m.footprint
    return rows.start + (rows.stop - rows.start) // 2, cols.start + (cols.stop - cols.start) // 2


def reference_sample(rng: np.random.RandomState, stamps, pre_noise=0.5, post_noise=0.05):
    """§3.1 step by step, unvectorised (one randint(-3, 4, size=2) per digit)."""
    bg = np.mean([s.mean() for s in stamps.values()])
    image = np.zeros((100, 100), bool)
    mask = rng.rand(100, 100) < bg * pre_noise
    image[mask] = ~image[mask]
    radius = rng.randint(20, 50 - 15)
    center = [rng.randint(radius + 15, 100 - radius - 15) for _ in range(2)]
    n = rng.randint(3, 7)
    symbols = rng.choice(list("0123456789"), n, replace=False)
    while True:
        g = rng.rand(n)
        g /= g.sum()
        if (g >= 1 / (2 * n)).all():
            break
    angles = 2 * np.pi * (np.cumsum(g) + rng.rand())
    placed = []
    for sym, a in zip(symbols, angles):
        point = np.round(np.array(center) + radius * np.array([np.cos(a), np.sin(a)]))
        point = point.astype(int) + rng.randint(-3, 4, size=2)
        h, w = stamps[sym].shape
        top, left = point - [h // 2, w // 2]
        image[top : top + h, left : left + w] = stamps[sym]
        placed.append((str(sym), (int(point[0]), int(point[1]))))
    mask = rng.rand(100, 100) < post_noise
    image[mask] = ~image[mask]
    k = int(np.argmin(symbols))
    y = tuple(str(s) for s in list(symbols[k:]) + list(symbols[:k]))
    return image.astype(np.float32), y, placed


# --------------------------------------------------------------------------- stamps


def test_stamp_file_content():
    stamps = load_stamps()
    assert sorted(stamps) == list("0123456789")
    for d, s in stamps.items():
        assert s.dtype == bool
        assert s.shape == (12, WIDTHS[d])
        assert not s[0].any() and not s[-1].any() and not s[:, 0].any() and not s[:, -1].any()
        assert int(s.sum()) == INK[d]
        # ink touches each side of the 1-px border (crop = ink bbox + 1 px)
        assert s[1].any() and s[-2].any() and s[:, 1].any() and s[:, -2].any()
    h = hashlib.sha256()
    for d in sorted(stamps):
        h.update(d.encode())
        h.update(np.array(stamps[d].shape, dtype=np.int64).tobytes())
        h.update(np.packbits(stamps[d]).tobytes())
    assert h.hexdigest() == STAMPS_SHA256
    assert round(stamp_mean_fill(stamps), 4) == 0.2504
    assert stamp_mean_fill(stamps) == pytest.approx(np.mean([INK[d] / (12 * WIDTHS[d]) for d in INK]))


def test_stamp_specific_rows():
    stamps = load_stamps()
    as_text = lambda s: ["".join("#" if v else "." for v in row) for row in s]  # noqa: E731
    assert as_text(stamps["1"])[1:4] == ["...#...", "..##...", ".#.#..."]
    assert as_text(stamps["4"])[8] == ".######."
    assert as_text(stamps["9"])[10] == ".####..."


def test_load_stamps_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="stamp file not found"):
        load_stamps(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("# 0\n" + ".x.\n" * 12)
    with pytest.raises(ValueError, match="only"):
        load_stamps(bad)
    short = tmp_path / "short.txt"
    short.write_text("".join(f"# {d}\n" + "...\n" * 11 for d in "0123456789"))
    with pytest.raises(ValueError, match="12 rows"):
        load_stamps(short)


def test_stamps_are_read_only():
    s = load_stamps()["0"]
    with pytest.raises(ValueError):
        s[0, 0] = True


# --------------------------------------------------------------------------- regression


def test_figure1_regression(domain):
    first6 = next(i for i in range(100) if len(domain.sample(np.random.RandomState(i)).y) == 6)
    assert first6 == 6
    s = domain.sample(np.random.RandomState(6))
    assert s.y == ("0", "7", "2", "6", "3", "4")
    placed = [(m.symbol, centre(m)) for m in s.motifs]
    assert placed == [
        ("4", (44, 18)),
        ("0", (79, 34)),
        ("7", (75, 72)),
        ("2", (51, 84)),
        ("6", (22, 72)),
        ("3", (14, 51)),
    ]
    rows, cols = s.motifs[0].footprint
    assert (rows, cols) == (slice(38, 50), slice(14, 22))  # '4' is 12×8, point − (6, 4)


def test_demo_titles_regression(domain):
    # examples-of-domains-with-motifs.ipynb: RandomState(0), (1) → "376", "27946"
    assert "".join(domain.sample(np.random.RandomState(0)).y) == "376"
    assert "".join(domain.sample(np.random.RandomState(1)).y) == "27946"


def test_matches_unvectorised_reference(domain):
    stamps = load_stamps()
    for i in range(150):
        s = domain.sample(np.random.RandomState(i))
        x, y, placed = reference_sample(np.random.RandomState(i), stamps)
        assert s.y == y
        assert [(m.symbol, centre(m)) for m in s.motifs] == placed
        np.testing.assert_array_equal(s.x, x)


def test_theoretical_min_density(domain):
    assert theoretical_min_density(domain) == pytest.approx(4.492e-05, abs=5e-8)


def test_clean_ink_per_image(clean_domain):
    # spec §2.4 "pixels_per_char_wo_noise = 1.0895e-03" = mean clean fill / 10
    fill = np.mean([clean_domain.sample(np.random.RandomState(i)).x.mean() for i in range(1000)])
    assert fill / 10 == pytest.approx(1.0895e-03, abs=5e-8)


def test_noisy_mean_pixel(domain):
    x, _, _ = domain.batch(1, 0, 300)
    assert x.mean() == pytest.approx(0.168, abs=0.005)


# --------------------------------------------------------------------------- streams


def test_compute_seed():
    assert compute_seed(1, 0) == 3993328244
    assert compute_seed(-2, 7) == 1067956843
    digest = hashlib.sha256(str((5, 123)).encode()).hexdigest()
    assert compute_seed(5, 123) == int(digest, 16) % 2**32
    assert (VALIDATION_SPLIT, TEST_SPLIT) == (-1, -2)


def test_sample_at_deterministic(domain):
    a, b = domain.sample_at(1, 17), domain.sample_at(1, 17)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.y == b.y and a.motifs == b.motifs
    ref = domain.sample(np.random.RandomState(compute_seed(1, 17)))
    np.testing.assert_array_equal(a.x, ref.x)
    assert a.y == ref.y and a.motifs == ref.motifs
    c = domain.sample_at(1, 18)
    assert not np.array_equal(a.x, c.x)


def test_splits_differ(domain):
    xs = {split: domain.batch(split, 0, 20)[0] for split in (1, 2, VALIDATION_SPLIT, TEST_SPLIT)}
    splits = list(xs)
    for i, s in enumerate(splits):
        for t in splits[i + 1 :]:
            assert not np.array_equal(xs[s], xs[t])


def test_batch(domain):
    x, ys, motifs = domain.batch(TEST_SPLIT, 5, 4)
    assert x.shape == (4, 1, 100, 100) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0}
    for k in range(4):
        s = domain.sample_at(TEST_SPLIT, 5 + k)
        np.testing.assert_array_equal(x[k, 0], s.x)
        assert ys[k] == s.y and motifs[k] == s.motifs


def test_domain_attributes(domain):
    assert isinstance(domain, Domain) and isinstance(domain, BaseDomain)
    assert domain.symbols == tuple("0123456789")
    assert domain.input_shape == (100, 100)
    assert domain.max_output_length == 8


def test_sample_invariants(domain, clean_domain):
    stamps = load_stamps()
    counts = set()
    for i in range(200):
        s = domain.sample_at(3, i)
        c = clean_domain.sample_at(3, i)
        assert s.x.shape == (100, 100) and s.x.dtype == np.float32
        assert s.y == c.y and s.motifs == c.motifs  # noise does not change the stream
        order = [m.symbol for m in s.motifs]
        assert len(order) == len(set(order)) and 3 <= len(order) <= 6
        counts.add(len(order))
        assert s.y == canonicalize(order) and s.y[0] == min(order)
        k = order.index(s.y[0])
        assert list(s.y) == order[k:] + order[:k]
        covered = np.zeros((100, 100), bool)
        for m in reversed(s.motifs):  # later stamps overwrite earlier ones
            rows, cols = m.footprint
            assert 0 <= rows.start < rows.stop <= 100 and 0 <= cols.start < cols.stop <= 100
            stamp = stamps[m.symbol]
            assert (rows.stop - rows.start, cols.stop - cols.start) == stamp.shape
            visible = ~covered[m.footprint]
            np.testing.assert_array_equal(c.x[m.footprint][visible], stamp[visible])
            assert c.x[m.footprint][visible & stamp].sum() > 0  # contains ink of its stamp
            # noisy image: only post-noise (5 %) flips a visible stamp pixel
            assert (s.x[m.footprint][visible] == stamp[visible]).mean() > 0.75
            covered[m.footprint] = True
        assert not c.x[~covered].any()  # clean image = stamps only
    assert counts == {3, 4, 5, 6}


def test_canonicalize():
    assert canonicalize(["7", "2", "9", "0", "4"]) == ("0", "4", "7", "2", "9")
    assert canonicalize(("1",)) == ("1",)
    assert canonicalize(()) == ()


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"size": 40}, "min_radius"),
        ({"min_radius": 40}, "min_radius"),
        ({"min_radius": 0}, "min_radius"),
        ({"random_shift": -1}, "random_shift"),
        ({"max_syms": 2}, "max_syms"),
        ({"max_syms": 11}, "max_syms"),
        ({"pre_noise": -0.1}, "pre_noise"),
        ({"pre_noise": 1.5}, "pre_noise"),
        ({"post_noise": 2.0}, "post_noise"),
        ({"post_noise": float("nan")}, "post_noise"),
        ({"size": 100.0}, "size"),
        ({"max_syms": True}, "max_syms"),
    ],
)
def test_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DigitCircleConfig(**kwargs)


def test_config_defaults_and_clean():
    cfg = DigitCircleConfig()
    assert (cfg.size, cfg.min_radius, cfg.random_shift, cfg.max_syms) == (100, 20, 3, 6)
    assert (cfg.pre_noise, cfg.post_noise) == (0.5, 0.05)
    assert not cfg.is_clean and cfg.clean().is_clean
    assert DigitCircleDomain(DigitCircleConfig(max_syms=4)).max_output_length == 6


# --------------------------------------------------------------------------- single digit


def test_single_digit_domain():
    stamps = load_stamps()
    dom = DigitCircleSingleDigitDomain()
    clean = DigitCircleSingleDigitDomain(pre_noise=0, post_noise=0)
    assert dom.input_shape == (32, 32) and dom.symbols == tuple("0123456789")
    seen = set()
    for i in range(100):
        s, c = dom.sample_at(1, i), clean.sample_at(1, i)
        assert s.x.shape == (32, 32) and s.x.dtype == np.float32
        assert len(s.y) == 1 and len(s.motifs) == 1 and s.y == c.y
        (m,) = s.motifs
        assert m.symbol == s.y[0]
        assert centre(m) == (16, 16)
        np.testing.assert_array_equal(c.x[m.footprint], stamps[m.symbol])
        assert c.x.sum() == stamps[m.symbol].sum()
        seen.add(s.y[0])
    assert seen == set("0123456789")
    x, ys, _ = dom.batch(VALIDATION_SPLIT, 0, 3)
    assert x.shape == (3, 1, 32, 32)
    with pytest.raises(ValueError, match="size"):
        DigitCircleSingleDigitDomain(size=8)
    with pytest.raises(ValueError, match="pre_noise"):
        DigitCircleSingleDigitDomain(pre_noise=-1)


def test_motif_evaluation_stream_is_random_state_i_for_digit_circle_and_the_test_split_elsewhere():
    from sparling.domains import TEST_SPLIT
    from sparling.domains.toy import ToySequenceDomain

    domain = DigitCircleDomain()
    x, ys, motifs = domain.motif_evaluation_batch(3, 2)
    for k, i in enumerate((3, 4)):
        sample = domain.sample(np.random.RandomState(i))
        assert np.array_equal(x[k, 0], sample.x) and ys[k] == sample.y and motifs[k] == sample.motifs
    toy = ToySequenceDomain()
    x, ys, motifs = toy.motif_evaluation_batch(0, 3)
    expected = toy.batch(TEST_SPLIT, 0, 3)
    assert np.array_equal(x, expected[0]) and ys == expected[1] and motifs == expected[2]
    assert toy.motif_symbols == toy.symbols


# --------------------------------------------------------------------------- warm-up


def test_warmup_changes_only_the_first_train_samples(domain):
    warm = DigitCircleDomain(DigitCircleConfig(warmup_samples=50, warmup_max_syms=2))
    counts = [len(warm.sample_at(3, i).y) for i in range(50)]
    assert set(counts) == {1, 2}
    assert min(len(warm.sample_at(3, i).y) for i in range(50, 150)) == 3  # the plain stream again
    for split, index in [(3, 50), (3, 77), (-1, 0), (-2, 10)]:  # after the warm-up, validation, test
        a, b = warm.sample_at(split, index), domain.sample_at(split, index)
        assert np.array_equal(a.x, b.x) and a.y == b.y
    again = warm.sample_at(3, 7)
    assert np.array_equal(again.x, warm.sample_at(3, 7).x)
    assert [m.symbol for m in again.motifs] and sorted(m.symbol for m in again.motifs) == sorted(again.y)


@pytest.mark.parametrize("kwargs", [{"warmup_samples": 10}, {"warmup_max_syms": 2}, {"warmup_samples": 0, "warmup_max_syms": 2},
                                    {"warmup_samples": 10, "warmup_max_syms": 7}])
def test_bad_warmup_is_rejected(kwargs):
    with pytest.raises(ValueError, match="warmup"):
        DigitCircleConfig(**kwargs)
