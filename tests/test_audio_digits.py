"""AudioMNISTSequence (issue 5): speaker split, spectrogram, composition, data sources."""

import hashlib
import json
import math

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.stats

from sparling.domains import TEST_SPLIT, VALIDATION_SPLIT, compute_seed
from sparling.domains.audio_digits import (
    SPEED_STREAM,
    change_speed,
    AUDIOMNIST_ENV,
    HOP,
    N_FFT,
    SAMPLE_RATE,
    SPOKEN_DIGITS_PATH,
    TEST_SPEAKERS,
    TRAIN_SPEAKERS,
    AudioDigitsConfig,
    AudioSingleDigitDomain,
    hz_to_mel,
    load_audiomnist,
    load_spoken_digits,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    speaker_folder,
    truncnorm_noise,
)
from sparling.domains.toy import ToySequenceDomain

L, F = 120_000, 642


@pytest.fixture(scope="module")
def domain():
    return AudioDigitsConfig().build()


@pytest.fixture(scope="module")
def silent_domain():
    return AudioDigitsConfig(noise_amplitude=-100).build()


# --------------------------------------------------------------------------- speakers


def test_speaker_split_derivation():
    order = np.random.RandomState(0).permutation(np.arange(1, 61))  # independent of the list shuffle
    assert [speaker_folder(s) for s in range(1, 61)] == order.tolist()
    assert speaker_folder(1) == 27
    test = {speaker_folder(s) for s in TEST_SPEAKERS}
    train = {speaker_folder(s) for s in TRAIN_SPEAKERS}
    assert test == {1, 4, 10, 20, 40, 45, 48, 54, 56}
    assert len(train) == 51 and not train & test and train | test == set(range(1, 61))


def test_samples_draw_speakers_by_split(domain):
    train, test = set(domain.train_folders), set(domain.test_folders)
    for i in range(20):
        assert set(domain.compose(np.random.RandomState(i)).speakers) <= train
        assert set(domain.compose(np.random.RandomState(i), test_speakers=True).speakers) <= test
    for split, wants_test in ((1, False), (VALIDATION_SPLIT, True), (TEST_SPLIT, True)):
        got = domain.sample_at(split, 3)
        want = domain.sample(np.random.RandomState(compute_seed(split, 3)), test_speakers=wants_test)
        np.testing.assert_array_equal(got.x, want.x)
        assert got.y == want.y


# --------------------------------------------------------------------------- mel / spectrogram


def test_htk_mel_formula():
    for f in (0.0, 300.0, 700.0, 1000.0, 4000.0):
        # 2595·log10(1 + f/700) is HTK's 1127·ln(1 + f/700) with 2595 = round(1127·ln 10)
        assert hz_to_mel(f) == pytest.approx(1127.0 * math.log(1 + f / 700.0), rel=1e-5, abs=1e-12)
        assert mel_to_hz(hz_to_mel(f)) == pytest.approx(f, abs=1e-9)
    assert hz_to_mel(700.0) == pytest.approx(2595.0 * math.log10(2.0))
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.02)


def _triangles(n_freqs=188, n_mels=64, f_max=4000.0):
    m_max = 2595.0 * math.log10(1 + f_max / 700.0)
    pts = [700.0 * (10 ** (k * m_max / (n_mels + 1) / 2595.0) - 1) for k in range(n_mels + 2)]
    out = np.zeros((n_freqs, n_mels))
    for i in range(n_freqs):
        f = i * f_max / (n_freqs - 1)
        for m in range(n_mels):
            lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
            if lo <= f <= c:
                out[i, m] = (f - lo) / (c - lo)
            elif c < f <= hi:
                out[i, m] = (hi - f) / (hi - c)
    return out, np.array(pts)


def test_mel_filterbank_against_independent_triangles():
    fb = mel_filterbank()
    assert fb.shape == (188, 64) and not fb.flags.writeable
    want, pts = _triangles()
    np.testing.assert_allclose(fb, want, atol=1e-12)
    bins = np.arange(188) * 4000 / 187
    centres = pts[1:-1]
    # each triangle peaks at one of the two bins around its centre frequency
    peak = fb.argmax(axis=0)
    assert (bins[peak - 1] <= centres).all() and (centres <= bins[peak + 1]).all()
    assert (np.abs(bins[peak] - centres) < 4000 / 187).all()
    assert (fb.max(axis=0) > 0.5).all() and fb.max() <= 1.0
    # Hand-computed row 1 (bin at 4000/187 = 21.3904 Hz): mel step = 2146.0645/65 = 33.01638,
    # mel points 0, 20.8105, 42.2397 Hz, so band 0 falls (42.2397 − 21.3904)/21.4292 and
    # band 1 rises (21.3904 − 20.8105)/21.4292.
    row = np.zeros(64)
    row[0], row[1] = 0.9729407471514956, 0.027059252848504446
    np.testing.assert_allclose(fb[1], row, atol=1e-12)
    assert (fb[0] == 0).all()


def test_spectrogram_matches_numpy_stft():
    rng = np.random.RandomState(0)
    audio = (rng.randn(8000) * 0.1).astype(np.float32)
    pad = np.pad(audio.astype(np.float64), N_FFT // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    n_frames = 1 + len(audio) // HOP
    frames = np.stack([pad[t * HOP : t * HOP + N_FFT] * window for t in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, 188)
    db = 10 * np.log10(np.maximum(power @ _triangles()[0], 1e-10)).T
    db = np.maximum(db, db.max() - 80)
    got = log_mel_spectrogram(audio)
    assert got.shape == (64, n_frames) == (64, 43) and got.dtype == np.float32
    np.testing.assert_allclose(got, db, atol=2e-3)
    batched = log_mel_spectrogram(np.stack([audio, audio * 0.5]))
    np.testing.assert_allclose(batched[0], got, atol=1e-5)


@pytest.mark.parametrize("f0", [150.0, 440.0, 1234.0, 3500.0])
def test_pure_tone_lands_in_nearest_band(f0):
    t = np.arange(8000) / 8000
    spec = log_mel_spectrogram(0.5 * np.sin(2 * np.pi * f0 * t))
    centres = mel_to_hz(np.linspace(0, hz_to_mel(4000.0), 66))[1:-1]
    assert spec.mean(axis=1).argmax() == np.abs(centres - f0).argmin()


def test_spectrogram_shape_and_floor(domain):
    s = domain.sample_at(1, 0)
    assert s.x.shape == (64, F) and s.x.dtype == np.float32
    assert s.x.max() - s.x.min() <= 80 + 1e-4
    assert domain.input_shape == (F,) and domain.in_channels == 64
    x, ys, motifs = domain.batch(1, 0, 3)
    assert x.shape == (3, 64, F)
    np.testing.assert_array_equal(x[0], s.x)
    assert ys[0] == s.y and motifs[0] == s.motifs


def test_one_channel_batch_unchanged():
    toy = ToySequenceDomain()
    x, _, _ = toy.batch(1, 0, 2)
    assert x.shape == (2, 1, *toy.input_shape)
    np.testing.assert_array_equal(x[1, 0], toy.sample_at(1, 1).x)


# --------------------------------------------------------------------------- composition


def test_defaults(domain):
    c = domain.config
    assert (c.clip_samples, c.n_frames, c.min_digits, c.max_digits) == (L, F, 5, 10)
    assert c.noise_scale == 2.0**-10 and c.source == "synthesized"
    assert domain.max_output_length == 12 and domain.symbols == tuple("0123456789")


def test_determinism(domain):
    a, b = domain.sample_at(2, 7), AudioDigitsConfig().build().sample_at(2, 7)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.y == b.y and a.motifs == b.motifs
    assert domain.sample_at(2, 8).y != a.y or not np.array_equal(domain.sample_at(2, 8).x, a.x)


def test_truncnorm_noise_matches_scipy():
    r1, r2 = np.random.RandomState(5), np.random.RandomState(5)
    want = scipy.stats.truncnorm(-1, 1, scale=2.0**-10).rvs(5000, random_state=r1)
    got = truncnorm_noise(r2, 5000, 2.0**-10)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-18)
    assert r1.rand() == r2.rand()  # same stream consumed


def test_composition_follows_spec_call_order(domain):
    """Replay §3.5 literally (scipy's truncnorm included) and compare the audio."""
    for seed in (0, 11):
        rng = np.random.RandomState(seed)
        n = rng.randint(5, 11)
        digits = rng.choice(10, n)
        clips = []
        for d in digits:
            s = rng.choice(list(range(1, 52)))
            options = domain.clips[(speaker_folder(int(s)), int(d))]
            clips.append(options[rng.choice(len(options))])
        while True:
            starts = sorted(rng.choice(L, n))
            ends = starts[1:] + [L]
            if all(e - s >= len(c) for s, e, c in zip(starts, ends, clips)):
                break
        audio = np.zeros(L)
        for s, c in zip(starts, clips):
            audio[s : s + len(c)] = c
        audio += scipy.stats.truncnorm(-1, 1, scale=2.0**-10).rvs(L, random_state=rng)
        comp = domain.compose(np.random.RandomState(seed))
        assert comp.digits == tuple(str(d) for d in digits)
        assert list(comp.starts) == [int(s) for s in starts]
        np.testing.assert_allclose(comp.audio, audio, atol=1e-7)


def test_utterances_do_not_overlap(domain):
    for i in range(40):
        comp = domain.compose(np.random.RandomState(100 + i))
        assert 5 <= len(comp.digits) <= 10
        ends = [s + n for s, n in zip(comp.starts, comp.lengths)]
        assert list(comp.starts) == sorted(comp.starts) and comp.starts[0] >= 0 and ends[-1] <= L
        assert all(e <= s for e, s in zip(ends, comp.starts[1:]))


def test_motifs_cover_the_utterances(silent_domain):
    for i in range(10):
        comp = silent_domain.compose(np.random.RandomState(200 + i))
        sample = silent_domain.to_sample(comp)
        assert sample.y == comp.digits and [m.symbol for m in sample.motifs] == list(comp.digits)
        loud = np.abs(comp.audio) > 1e-6
        covered = np.zeros(L, bool)
        framed = np.zeros(F, bool)
        for m, start, n in zip(sample.motifs, comp.starts, comp.lengths):
            (fp,) = m.footprint
            assert fp.start == start * F // L and fp.stop - fp.start == n * F // L
            nz = np.flatnonzero(loud[start : start + n]) + start
            # the motif's frames span the utterance's audible samples, up to the flooring of
            # start·F/L and length·F/L (≤ 1 frame at the start, ≤ 2 frames at the end)
            assert fp.start * HOP <= nz[0] + HOP and fp.stop * HOP >= nz[-1] - 2 * HOP
            assert fp.start * HOP >= start - HOP and fp.stop * HOP <= start + n + HOP
            covered[start : start + n] = True
            framed[max(0, fp.start - 2) : fp.stop + 4] = True  # + the STFT window's reach
        assert not (loud & ~covered).any()  # all audio belongs to some utterance
        floor = sample.x.min()
        assert (sample.x[:, ~framed] == floor).all()  # silence away from motifs
        for m in sample.motifs:
            assert sample.x[:, m.footprint[0]].max() > floor + 40


def test_single_digit_variant():
    d = AudioSingleDigitDomain()
    assert d.config.clip_samples == 24_000 and d.input_shape == (129,) and d.max_output_length == 3
    for i in range(5):
        comp = d.compose(np.random.RandomState(i))
        assert len(comp.digits) == 1 and comp.starts[0] == (24_000 - comp.lengths[0]) // 2
    s = d.sample_at(TEST_SPLIT, 0)
    assert s.x.shape == (64, 129) and len(s.y) == 1 and len(s.motifs) == 1
    with pytest.raises(ValueError, match="min_digits = max_digits = 1"):
        AudioSingleDigitDomain(AudioDigitsConfig())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"source": "wav"}, "source"),
        ({"min_digits": 6, "max_digits": 5}, "min_digits"),
        ({"clip_seconds": 1.00001}, "whole number of samples"),
        ({"audiomnist_path": "/x"}, "only used with source='audiomnist'"),
        ({"noise_amplitude": float("nan")}, "finite"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AudioDigitsConfig(**kwargs)


# --------------------------------------------------------------------------- AudioMNIST loader

RATE_IN = 48_000


def _tone_hz(folder: int, digit: int, rep: int) -> float:
    return 250.0 + 25.0 * digit + 5.0 * (folder % 7) + 500.0 * rep


@pytest.fixture(scope="module")
def audiomnist(tmp_path_factory):
    """A tiny AudioMNIST clone: data/NN/{digit}_{NN}_{rep}.wav, 48 kHz int16 tones of 60 ms."""
    root = tmp_path_factory.mktemp("AudioMNIST")
    t = np.arange(int(0.06 * RATE_IN)) / RATE_IN
    for folder in range(1, 61):
        d = root / "data" / f"{folder:02d}"
        d.mkdir(parents=True)
        for digit in range(10):
            for rep in range(2):
                x = 0.3 * np.sin(2 * np.pi * _tone_hz(folder, digit, rep) * t)
                scipy.io.wavfile.write(d / f"{digit}_{folder:02d}_{rep}.wav", RATE_IN, (x * 32767).astype(np.int16))
    return root


def test_audiomnist_loader(audiomnist):
    clips = load_audiomnist(audiomnist)
    assert clips is load_audiomnist(audiomnist / "data")  # repository root or its data/; cached
    assert len(clips) == 600 and all(len(v) == 2 for v in clips.values())
    for key in [(1, 0), (27, 9), (60, 4)]:
        for rep, clip in enumerate(clips[key]):
            assert clip.dtype == np.float32 and len(clip) == 480  # 60 ms at 8 kHz
            spectrum = np.abs(np.fft.rfft(clip.astype(np.float64) * np.hanning(480), n=8000))
            assert spectrum.argmax() == pytest.approx(_tone_hz(*key, rep), abs=2)
            assert np.abs(clip[100:-100]).max() == pytest.approx(0.3, abs=0.01)  # full scale ±1


def test_audiomnist_domain_from_env(audiomnist, monkeypatch):
    monkeypatch.setenv(AUDIOMNIST_ENV, str(audiomnist))
    d = AudioDigitsConfig(source="audiomnist").build()
    comp = d.compose(np.random.RandomState(0), test_speakers=True)
    assert set(comp.speakers) <= {1, 4, 10, 20, 40, 45, 48, 54, 56}
    assert set(comp.lengths) == {480}
    assert d.sample_at(TEST_SPLIT, 0).x.shape == (64, F)


def test_audiomnist_missing_folder_is_a_clear_error(tmp_path, monkeypatch, audiomnist):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match="AudioMNIST folder not found: .*nowhere"):
        AudioDigitsConfig(source="audiomnist", audiomnist_path=str(missing)).build()
    monkeypatch.delenv(AUDIOMNIST_ENV, raising=False)
    with pytest.raises(ValueError, match=AUDIOMNIST_ENV):
        AudioDigitsConfig(source="audiomnist").build()
    monkeypatch.setenv(AUDIOMNIST_ENV, str(missing))
    with pytest.raises(ValueError, match="nowhere"):
        AudioDigitsConfig(source="audiomnist").build()
    partial = tmp_path / "partial"
    (partial / "01").mkdir(parents=True)
    with pytest.raises(ValueError, match="lacks speaker folder 02"):
        load_audiomnist(partial)


# --------------------------------------------------------------------------- shipped data


def test_shipped_spoken_digits_match_manifest():
    manifest = json.loads((SPOKEN_DIGITS_PATH / "manifest.json").read_text())
    npz = SPOKEN_DIGITS_PATH / manifest["npz"]["file"]
    assert hashlib.sha256(npz.read_bytes()).hexdigest() == manifest["npz"]["sha256"]
    assert sum(p.stat().st_size for p in SPOKEN_DIGITS_PATH.iterdir()) < 6.5e6
    assert manifest["sample_rate"] == 8000 and manifest["n_speakers"] >= 60 and manifest["reps"] >= 2
    assert set(manifest["speakers"]) == {str(s) for s in range(1, manifest["n_speakers"] + 1)}
    assert len({s["voice"] for s in manifest["speakers"].values()}) == manifest["n_speakers"]
    with np.load(npz) as data:
        assert data["samples"].dtype == np.int16
        assert len(data["samples"]) == data["offsets"][-1] == manifest["n_samples"]
        assert len(data["speaker"]) == manifest["n_clips"] == manifest["n_speakers"] * 10 * manifest["reps"]
    clips = load_spoken_digits()
    assert set(clips) == {(s, d) for s in range(1, 61) for d in range(10)}
    for key, reps in clips.items():
        assert len(reps) == manifest["reps"]
        assert all(c.dtype == np.float32 and 800 <= len(c) <= 16_000 for c in reps)  # 0.1..2 s
        assert not np.array_equal(reps[0], reps[1]), key  # repetitions differ


def test_synthesized_words_get_their_silence_back():
    trimmed = AudioDigitsConfig(synthesized_silence_seconds=0).build().clips
    padded = AudioDigitsConfig(synthesized_silence_seconds=0.05).build().clips
    pad = round(0.05 * SAMPLE_RATE)
    for key in list(trimmed)[:5]:
        for t, p in zip(trimmed[key], padded[key]):
            assert len(p) == len(t) + 2 * pad
            assert not p[:pad].any() and not p[-pad:].any()
            np.testing.assert_array_equal(p[pad:-pad], t)
    with pytest.raises(ValueError, match="synthesized_silence_seconds must be >= 0"):
        AudioDigitsConfig(synthesized_silence_seconds=-0.1)


def test_change_speed_scales_length_and_pitch():
    t = np.arange(8000) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    for factor in (0.85, 1.1):
        fast = change_speed(tone, factor)
        assert fast.dtype == np.float32
        assert abs(len(fast) - len(tone) / factor) <= 1
        spectrum = np.abs(np.fft.rfft(fast * np.hanning(len(fast))))
        peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(fast)
        assert abs(peak_hz - 500 * factor) < 5
    assert change_speed(tone, 1.0) is tone


def test_speed_perturbation_only_touches_the_train_streams():
    plain = AudioDigitsConfig().build()
    faster = AudioDigitsConfig(train_speed_factors=(1.15,)).build()
    for split in (VALIDATION_SPLIT, TEST_SPLIT):  # evaluation streams: the spec's clips, bit for bit
        np.testing.assert_array_equal(faster.sample_at(split, 4).x, plain.sample_at(split, 4).x)
    for index in range(3):
        rng = np.random.RandomState(compute_seed(1, index))
        base = plain.compose(rng)
        seed = compute_seed(1, index)
        comp = faster.compose(np.random.RandomState(seed), speed_rng=np.random.default_rng([seed, SPEED_STREAM]))
        assert comp.digits == base.digits and comp.speakers == base.speakers  # the §3.5 draws are unchanged
        for short, long in zip(comp.lengths, base.lengths):
            assert abs(short - long / 1.15) <= 1
        sample = faster.sample_at(1, index)  # sample_at perturbs the train stream, deterministically
        assert [m.footprint for m in sample.motifs] == [m.footprint for m in faster.to_sample(comp).motifs]
        np.testing.assert_array_equal(sample.x, faster.sample_at(1, index).x)
    for bad in ((3.0,), (float("nan"),), [1.1]):
        with pytest.raises(ValueError, match="train_speed_factors"):
            AudioDigitsConfig(train_speed_factors=bad)
