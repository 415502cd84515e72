"""AudioMNISTSequence (REPRODUCTION_SPEC §3.5) and its single-digit variant.

A sample is a 15 s clip at 8 kHz holding 5..10 spoken digits at random non-overlapping times,
plus faint truncated-normal noise; the model sees its log-mel spectrogram (64 mel bands as
channels × 642 frames) and outputs the digits in time order. Each digit's ground-truth motif is
the frame interval its utterance occupies.

Data sources (``AudioDigitsConfig.source``):

- ``"synthesized"`` (default): ``data/spoken_digits/`` — 60 synthetic espeak-ng speakers ×
  10 digits × a few repetitions, made by ``scripts/make_spoken_digits.py`` (nothing is
  downloaded, nothing is synthesized at run time).
- ``"audiomnist"``: a local copy of AudioMNIST (``git clone
  https://github.com/soerenab/AudioMNIST``), given as ``audiomnist_path`` or by the
  ``SPARLING_AUDIOMNIST`` environment variable: the repository root or its ``data/`` folder,
  holding ``NN/{digit}_{NN}_{rep}.wav`` for speakers NN = 01..60. Read with
  ``scipy.io.wavfile`` and resampled to 8 kHz with ``scipy.signal.resample_poly`` (the paper
  used librosa/resampy; the resampling filters differ slightly).

Speakers: ``order`` = 1..60 shuffled by ``RandomState(0)``; speaker index s ∈ 1..60 is folder
``order[s - 1]``; train speakers are s ∈ 1..51, test speakers s ∈ 52..60 (test folders
{1, 4, 10, 20, 40, 45, 48, 54, 56}). The synthesized corpus numbers its speakers 1..60 like
AudioMNIST's folders, so the same split applies.

Which speakers a sample draws from follows its split seed: :meth:`AudioDigitsDomain.sample_at`
uses the train speakers for the train streams (run seeds >= 0) and the test speakers for the
validation (-1) and test (-2) streams, so one domain object serves training and evaluation, as
the rest of the package expects. ``sample(rng)`` alone draws from the train speakers;
``sample(rng, test_speakers=True)`` from the test speakers.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.io.wavfile
import scipy.signal
import scipy.special
import torch

from . import BaseDomain, Motif, Sample, check_int, check_number, compute_seed

__all__ = [
    "AUDIOMNIST_ENV",
    "DIGITS",
    "HOP",
    "N_FFT",
    "N_MELS",
    "SAMPLE_RATE",
    "SPOKEN_DIGITS_PATH",
    "TEST_SPEAKERS",
    "TRAIN_SPEAKERS",
    "AudioDigitsConfig",
    "AudioDigitsDomain",
    "AudioSingleDigitDomain",
    "Composition",
    "SINGLE_DIGIT_CONFIG",
    "hz_to_mel",
    "load_audiomnist",
    "load_spoken_digits",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "speaker_folder",
    "speaker_order",
    "truncnorm_noise",
]

DIGITS: tuple[str, ...] = tuple("0123456789")
SAMPLE_RATE = 8000
N_FFT = int(2 * 1.5 * SAMPLE_RATE / 64)  # 375
HOP = N_FFT // 2  # 187
N_MELS = 64
TOP_DB = 80.0
N_SPEAKERS = 60
TRAIN_SPEAKERS: tuple[int, ...] = tuple(range(1, 52))
"""Speaker indices (not folders) of the train streams."""
TEST_SPEAKERS: tuple[int, ...] = tuple(range(52, 61))
"""Speaker indices (not folders) of the validation and test streams."""
SOURCES = ("synthesized", "audiomnist")
AUDIOMNIST_ENV = "SPARLING_AUDIOMNIST"
SPOKEN_DIGITS_PATH = Path(__file__).resolve().parents[2] / "data" / "spoken_digits"

Clips = dict[tuple[int, int], tuple[np.ndarray, ...]]
"""(speaker folder, digit) → that pair's clips (float32 at 8 kHz, full scale ±1), sorted."""


# --------------------------------------------------------------------------- speakers


@functools.lru_cache(maxsize=None)
def speaker_order() -> tuple[int, ...]:
    """AudioMNIST folders 1..60 shuffled with ``RandomState(0)``: speaker index s is folder
    ``speaker_order()[s - 1]``."""
    order = list(range(1, N_SPEAKERS + 1))
    np.random.RandomState(0).shuffle(order)
    return tuple(order)


def speaker_folder(index: int) -> int:
    """The folder (speaker id in the data) of speaker index ``index`` ∈ 1..60."""
    if not 1 <= index <= N_SPEAKERS:
        raise ValueError(f"speaker index must be in 1..{N_SPEAKERS}, got {index}")
    return speaker_order()[index - 1]


# --------------------------------------------------------------------------- spectrogram


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 2595·log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`: 700·(10^(m/2595) − 1)."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=None)
def mel_filterbank(
    n_freqs: int = N_FFT // 2 + 1,
    f_min: float = 0.0,
    f_max: float = SAMPLE_RATE / 2,
    n_mels: int = N_MELS,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """(n_freqs, n_mels) triangular HTK mel filters without normalisation (torchaudio's
    ``melscale_fbanks(..., norm=None, mel_scale="htk")``).

    The STFT bins sit at ``linspace(0, sample_rate // 2, n_freqs)``; band m rises from the mel
    point m to m + 1 and falls to m + 2, the ``n_mels + 2`` points evenly spaced in mel between
    ``f_min`` and ``f_max``. Read-only (cached).
    """
    all_freqs = np.linspace(0, sample_rate // 2, n_freqs)
    f_pts = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    fb.flags.writeable = False
    return fb


@functools.lru_cache(maxsize=None)
def _torch_consts(n_fft: int, n_mels: int, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    window = torch.hann_window(n_fft)  # periodic, as torchaudio's Spectrogram
    fb = torch.from_numpy(
        np.ascontiguousarray(mel_filterbank(n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate).T)
    ).float()
    return window, fb


def log_mel_spectrogram(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    n_mels: int = N_MELS,
    n_fft: int = N_FFT,
    hop: int = HOP,
    top_db: float = TOP_DB,
) -> np.ndarray:
    """Log-mel power spectrogram in dB, (…, n_mels, 1 + len // hop) float32 (§3.5).

    ``torch.stft`` (Hann window of n_fft, centred, reflect padding, onesided), power 2, the HTK
    mel filterbank (0 .. sample_rate/2), ``10·log10(clamp(x, 1e-10))``, floored per clip at its
    maximum − ``top_db``. ``audio`` is (L,) or (B, L).
    """
    x = torch.as_tensor(np.ascontiguousarray(audio, dtype=np.float32))
    if x.ndim not in (1, 2):
        raise ValueError(f"audio must be (L,) or (B, L), got shape {tuple(x.shape)}")
    window, fb = _torch_consts(n_fft, n_mels, sample_rate)
    spec = torch.stft(
        x, n_fft, hop_length=hop, win_length=n_fft, window=window, center=True,
        pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
    ).abs().pow(2)
    db = 10.0 * torch.log10(torch.clamp(fb @ spec, min=1e-10))
    peak = db.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(db, peak - top_db).numpy()


def truncnorm_noise(rng: np.random.RandomState, size: int, scale: float) -> np.ndarray:
    """``scipy.stats.truncnorm(-1, 1, scale=scale).rvs(size, random_state=rng)``, ~15× faster.

    scipy draws ``rng.uniform(size=size)`` and maps it through the truncated normal's ppf; this
    does the same (so ``rng`` ends in the same state) with ``ndtri(Φ(−1) + u·(Φ(1) − Φ(−1)))``,
    equal to scipy's log-space ppf to ~1e-15 relative.
    """
    u = rng.uniform(size=size)
    lo, hi = scipy.special.ndtr(-1.0), scipy.special.ndtr(1.0)
    return scipy.special.ndtri(lo + u * (hi - lo)) * scale


# --------------------------------------------------------------------------- data


def _freeze(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=None)
def _load_spoken_digits_cached(path: str) -> Clips:
    folder = Path(path)
    npz, manifest = folder / "spoken_digits.npz", folder / "manifest.json"
    if not npz.is_file() or not manifest.is_file():
        raise FileNotFoundError(
            f"synthesized spoken digits not found in {folder} (need spoken_digits.npz and "
            "manifest.json; regenerate them with scripts/make_spoken_digits.py)"
        )
    rate = json.loads(manifest.read_text())["sample_rate"]
    if rate != SAMPLE_RATE:
        raise ValueError(f"{manifest}: sample_rate {rate}, expected {SAMPLE_RATE}")
    with np.load(npz) as data:
        samples, offsets = data["samples"], data["offsets"]
        speaker, digit, rep = data["speaker"], data["digit"], data["rep"]
    audio = samples.astype(np.float32) / 32768.0
    grouped: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    for i in range(len(speaker)):
        clip = _freeze(audio[offsets[i] : offsets[i + 1]].copy())
        grouped.setdefault((int(speaker[i]), int(digit[i])), []).append((int(rep[i]), clip))
    return {key: tuple(c for _, c in sorted(v, key=lambda t: t[0])) for key, v in grouped.items()}


def load_spoken_digits(path: str | Path | None = None) -> Clips:
    """The synthesized corpus (cached per process): (speaker 1..60, digit) → clips by rep."""
    return _load_spoken_digits_cached(str(Path(path) if path is not None else SPOKEN_DIGITS_PATH))


def _to_float(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.int16:
        y = x / 32768.0
    elif x.dtype == np.int32:
        y = x / 2.0**31
    elif x.dtype == np.uint8:
        y = (x.astype(np.float64) - 128.0) / 128.0
    else:
        y = x.astype(np.float64)
    return y.mean(axis=1) if y.ndim == 2 else y


def _read_wav(path: Path) -> np.ndarray:
    rate, x = scipy.io.wavfile.read(path)
    y = _to_float(x)
    if rate != SAMPLE_RATE:
        ratio = Fraction(SAMPLE_RATE, int(rate))
        y = scipy.signal.resample_poly(y, ratio.numerator, ratio.denominator)
    return _freeze(y.astype(np.float32))


def _audiomnist_data_dir(path: Path) -> Path:
    """The folder holding 01..60: ``path`` itself or its ``data/``."""
    if not path.is_dir():
        raise ValueError(f"AudioMNIST folder not found: {path}")
    if not (path / "01").is_dir() and (path / "data" / "01").is_dir():
        return path / "data"
    return path


@functools.lru_cache(maxsize=None)
def _load_audiomnist_cached(path: str) -> Clips:
    root = _audiomnist_data_dir(Path(path))
    missing = [f"{k:02d}" for k in range(1, N_SPEAKERS + 1) if not (root / f"{k:02d}").is_dir()]
    if missing:
        raise ValueError(f"AudioMNIST folder {root} lacks speaker folder {', '.join(missing)}")
    clips: Clips = {}
    for folder in range(1, N_SPEAKERS + 1):
        d = root / f"{folder:02d}"
        for digit in range(len(DIGITS)):
            paths = sorted(str(p) for p in d.glob(f"{digit}_{folder:02d}_*.wav"))
            if not paths:
                raise ValueError(f"AudioMNIST folder {d} has no {digit}_{folder:02d}_*.wav")
            clips[(folder, digit)] = tuple(_read_wav(Path(p)) for p in paths)
    return clips


def load_audiomnist(path: str | Path) -> Clips:
    """AudioMNIST at 8 kHz (cached per process): (folder 1..60, digit) → clips in the order of
    their sorted paths."""
    return _load_audiomnist_cached(str(_audiomnist_data_dir(Path(path).expanduser().resolve())))


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class AudioDigitsConfig:
    """AudioMNISTSequence parameters (defaults = the paper's main domain, aum-2ka1).

    ``noise_amplitude`` is the exponent: the noise is truncnorm(−1, 1) with scale
    ``min(2**16, 2**noise_amplitude)`` (−100 ≈ silent). ``audiomnist_path`` is read only with
    ``source="audiomnist"``; when None, the ``SPARLING_AUDIOMNIST`` environment variable gives
    it. The folder is checked when the domain is built (``build()``), before any data is read.

    ``synthesized_silence_seconds``: silence put back before and after each synthesized word.
    The shipped utterances are trimmed to the voiced samples, while an AudioMNIST recording keeps
    the silence around its word, and a motif's footprint is the whole recording's frame interval
    (§3.5). Without it a detector that fires as the word ends (1–2 frames after the last voiced
    frame) lands outside the footprint. Not used with ``source="audiomnist"``.

    ``train_speed_factors``: speed perturbation of the train streams (split seeds >= 0), the
    standard remedy for too few speakers (Ko et al. 2015): each utterance is resampled by a factor
    drawn uniformly from this tuple (1.1 = 10 % faster and higher), which also shifts its
    formants as a shorter or longer vocal tract would. Empty (the spec's domain) = off. The
    validation and test streams are never perturbed; the factors come from a second random
    stream of (split, index), so the §3.5 draws are the same with or without it.
    """

    clip_seconds: float = 15.0
    min_digits: int = 5
    max_digits: int = 10
    noise_amplitude: float = -10.0
    source: str = "synthesized"
    audiomnist_path: str | None = None
    synthesized_silence_seconds: float = 0.05
    train_speed_factors: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.train_speed_factors, tuple):
            raise ValueError(f"train_speed_factors must be a tuple, got {self.train_speed_factors!r}")
        for factor in self.train_speed_factors:
            check_number("train_speed_factors", factor)
            if not 0.5 <= factor <= 2:
                raise ValueError(f"train_speed_factors must be in [0.5, 2], got {self.train_speed_factors}")
        check_number("clip_seconds", self.clip_seconds)
        check_number("synthesized_silence_seconds", self.synthesized_silence_seconds)
        if self.synthesized_silence_seconds < 0:
            raise ValueError(f"synthesized_silence_seconds must be >= 0, got {self.synthesized_silence_seconds}")
        check_number("noise_amplitude", self.noise_amplitude)
        for name in ("min_digits", "max_digits"):
            check_int(name, getattr(self, name))
        if self.clip_seconds <= 0 or self.clip_seconds * SAMPLE_RATE != round(self.clip_seconds * SAMPLE_RATE):
            raise ValueError(
                f"clip_seconds must be positive and a whole number of samples at {SAMPLE_RATE} Hz, "
                f"got {self.clip_seconds}"
            )
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(
                f"need 1 <= min_digits <= max_digits, got {self.min_digits}, {self.max_digits}"
            )
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.audiomnist_path is not None:
            if not isinstance(self.audiomnist_path, str):
                raise ValueError(f"audiomnist_path must be a str or None, got {self.audiomnist_path!r}")
            if self.source != "audiomnist":
                raise ValueError("audiomnist_path is only used with source='audiomnist'")

    @property
    def clip_samples(self) -> int:
        return round(self.clip_seconds * SAMPLE_RATE)

    @property
    def n_frames(self) -> int:
        """Spectrogram frames: 1 + clip_samples // hop (642 for 15 s)."""
        return 1 + self.clip_samples // HOP

    @property
    def noise_scale(self) -> float:
        return min(2.0**16, 2.0**self.noise_amplitude)

    @property
    def mean_digits(self) -> float:
        return (self.min_digits + self.max_digits) / 2

    def resolved_audiomnist_path(self) -> Path:
        """The AudioMNIST folder (explicit, else ``$SPARLING_AUDIOMNIST``); ValueError naming
        the path when it is not set or not a folder."""
        raw = self.audiomnist_path if self.audiomnist_path is not None else os.environ.get(AUDIOMNIST_ENV)
        if not raw:
            raise ValueError(
                f"source='audiomnist' needs audiomnist_path or the {AUDIOMNIST_ENV} environment "
                "variable (a clone of https://github.com/soerenab/AudioMNIST or its data/ folder)"
            )
        path = Path(raw).expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"AudioMNIST folder not found: {path} (from {raw!r})")
        return path

    def build(self) -> "AudioDigitsDomain":
        return AudioDigitsDomain(self)


SINGLE_DIGIT_CONFIG = AudioDigitsConfig(clip_seconds=3.0, min_digits=1, max_digits=1)
"""The single-digit variant's defaults (3 s = 24,000 samples, 129 frames)."""


# --------------------------------------------------------------------------- domains

SPEED_STREAM = 0x5EED
"""Second entropy word of the speed-perturbation stream of a sample: ``default_rng([seed, SPEED_STREAM])``."""


def change_speed(clip: np.ndarray, factor: float) -> np.ndarray:
    """``clip`` played ``factor`` times faster (tempo and pitch together), by polyphase
    resampling: length ≈ len(clip) / factor. float32."""
    if factor == 1:
        return clip
    ratio = Fraction(factor).limit_denominator(100)
    return scipy.signal.resample_poly(clip, ratio.denominator, ratio.numerator).astype(np.float32)


@dataclass(frozen=True)
class Composition:
    """One composed clip before the spectrogram: audio (float32, full scale ±1), and per
    utterance in time order its digit, speaker folder, start sample and length in samples."""

    audio: np.ndarray
    digits: tuple[str, ...]
    speakers: tuple[int, ...]
    starts: tuple[int, ...]
    lengths: tuple[int, ...]


class AudioDigitsDomain(BaseDomain):
    """5..10 spoken digits in a 15 s clip; x = log-mel spectrogram (64 mels × 642 frames)."""

    name = "audio_digits"
    symbols = DIGITS
    in_channels = N_MELS

    def __init__(self, config: AudioDigitsConfig | None = None) -> None:
        self.config = config if config is not None else AudioDigitsConfig()
        if self.config.source == "audiomnist":
            self._data_path = _audiomnist_data_dir(self.config.resolved_audiomnist_path())
        else:
            self._data_path = SPOKEN_DIGITS_PATH
            missing = [n for n in ("spoken_digits.npz", "manifest.json") if not (SPOKEN_DIGITS_PATH / n).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"synthesized spoken digits missing in {SPOKEN_DIGITS_PATH}: {missing} "
                    "(regenerate with scripts/make_spoken_digits.py)"
                )
        self.input_shape = (self.config.n_frames,)
        self.max_output_length = self.config.max_digits + 2
        self.train_folders = tuple(speaker_folder(s) for s in TRAIN_SPEAKERS)
        self.test_folders = tuple(speaker_folder(s) for s in TEST_SPEAKERS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    @cached_property
    def clips(self) -> Clips:
        """(speaker folder, digit) → sorted clips, loaded on first use (cached per process)."""
        if self.config.source == "audiomnist":
            return load_audiomnist(self._data_path)
        pad = round(self.config.synthesized_silence_seconds * SAMPLE_RATE)
        clips = load_spoken_digits(self._data_path)
        if pad == 0:
            return clips
        return {key: tuple(_freeze(np.pad(c, pad)) for c in group) for key, group in clips.items()}

    # --- sampling

    def sample_at(self, split_seed: int, index: int) -> Sample:
        """Sample ``index`` of split ``split_seed``: train speakers for split seeds >= 0, test
        speakers for the validation (-1) and test (-2) streams."""
        seed = compute_seed(split_seed, index)
        rng = np.random.RandomState(seed)
        speed_rng = np.random.default_rng([seed, SPEED_STREAM]) if split_seed >= 0 else None
        return self.sample(rng, test_speakers=split_seed < 0, speed_rng=speed_rng)

    def sample(self, rng: np.random.RandomState, test_speakers: bool = False,
               speed_rng: np.random.Generator | None = None) -> Sample:
        return self.to_sample(self.compose(rng, test_speakers, speed_rng))

    def compose(self, rng: np.random.RandomState, test_speakers: bool = False,
                speed_rng: np.random.Generator | None = None) -> Composition:
        """The clip, consuming ``rng`` in §3.5's order: n, digits, (speaker, clip) per digit,
        the starts, the noise. With ``speed_rng`` and ``train_speed_factors``, each chosen
        utterance is first resampled by a factor drawn from ``speed_rng``."""
        cfg = self.config
        L = cfg.clip_samples
        speaker_set = list(TEST_SPEAKERS if test_speakers else TRAIN_SPEAKERS)
        n = rng.randint(cfg.min_digits, cfg.max_digits + 1)
        digits = rng.choice(len(DIGITS), n)
        folders, chosen = [], []
        for d in digits:
            folder = speaker_folder(int(rng.choice(speaker_set)))
            options = self.clips[(folder, int(d))]
            folders.append(folder)
            take = int(rng.choice(len(options)))
            clip = options[take]
            if speed_rng is not None and cfg.train_speed_factors:
                clip = self._at_speed(folder, int(d), take, float(speed_rng.choice(cfg.train_speed_factors)))
            chosen.append(clip[:L])
        lengths = [len(c) for c in chosen]
        starts = self._place(rng, lengths, L)
        audio = np.zeros(L)
        for s, c in zip(starts, chosen):
            audio[s : s + len(c)] = c
        audio += truncnorm_noise(rng, L, cfg.noise_scale)
        return Composition(
            audio.astype(np.float32),
            tuple(DIGITS[d] for d in digits),
            tuple(folders),
            tuple(starts),
            tuple(lengths),
        )

    def _at_speed(self, folder: int, digit: int, take: int, factor: float) -> np.ndarray:
        """Take ``take`` of (folder, digit) at ``factor``× speed, resampled once per process (the
        train streams reuse ≈ 1,000 takes × a few factors; resampling costs ≈ 1 ms each). At the cpu
        preset's 7 factors the cache holds at most ≈ 7,000 clips, on the order of 100 MB."""
        cache = self.__dict__.setdefault("_speed_cache", {})
        key = (folder, digit, take, factor)
        if key not in cache:
            cache[key] = _freeze(change_speed(self.clips[(folder, digit)][take], factor))
        return cache[key]

    def _place(self, rng: np.random.RandomState, lengths: list[int], L: int) -> list[int]:
        """Rejection-sample sorted starts until every utterance ends before the next starts."""
        if sum(lengths) > L:
            raise ValueError(f"{len(lengths)} utterances ({sum(lengths)} samples) cannot fit {L} samples")
        lengths_arr = np.asarray(lengths)
        while True:
            starts = np.sort(rng.choice(L, len(lengths)))
            gaps = np.diff(np.append(starts, L))
            if (gaps >= lengths_arr).all():
                return [int(s) for s in starts]

    def to_sample(self, comp: Composition) -> Sample:
        """Spectrogram (64, frames) and one motif per utterance: frames
        [start·F//L, start·F//L + length·F//L)."""
        F, L = self.config.n_frames, self.config.clip_samples
        x = log_mel_spectrogram(comp.audio)
        motifs = []
        for digit, start, length in zip(comp.digits, comp.starts, comp.lengths):
            first = start * F // L
            motifs.append(Motif(digit, (slice(first, first + length * F // L),)))
        return Sample(x, comp.digits, tuple(motifs))


class AudioSingleDigitDomain(AudioDigitsDomain):
    """One spoken digit centred in a 3 s clip (§3.5, direct supervision); 129 frames."""

    name = "audio_digits_single_digit"

    def __init__(self, config: AudioDigitsConfig | None = None) -> None:
        config = config if config is not None else SINGLE_DIGIT_CONFIG
        if config.min_digits != 1 or config.max_digits != 1:
            raise ValueError(
                f"the single-digit domain needs min_digits = max_digits = 1, got "
                f"{config.min_digits}, {config.max_digits}"
            )
        super().__init__(config)

    def _place(self, rng: np.random.RandomState, lengths: list[int], L: int) -> list[int]:
        return [(L - length) // 2 for length in lengths]
