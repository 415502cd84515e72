"""Synthesize the spoken-digit corpus behind the AudioMNISTSequence domain (issue 5).

AudioMNIST (60 speakers × 10 digits × 50 repetitions) is not redistributable through a package
registry, so the default data source of ``sparling.domains.audio_digits`` is this synthetic
stand-in: the words "zero" .. "nine" spoken by 60 synthetic speakers of Debian's ``espeak-ng``
(formant synthesis, no mbrola voices), with a few repetitions per (speaker, digit) that differ by
a small deterministic pitch and speed jitter.

Requirements (only to *regenerate* the data; the package never calls espeak at run time):

    apt-get install -y espeak-ng        # Debian/Ubuntu; tested with eSpeak NG 1.51

Usage (from the repository root):

    .venv/bin/python scripts/make_spoken_digits.py [--reps 2] [--out data/spoken_digits]

What a speaker is: one English accent (en-us, en-gb, en-gb-x-rp, en-gb-scotland, en-gb-x-gbclan,
en-gb-x-gbcwmd, en-029, en-us-nyc) combined with one voice variant (``+m1`` .. ``+m8``,
``+f1`` .. ``+f5``, the Klatt variants, named variants such as ``+Andy``; each variant is used by
one speaker only), a base pitch (``-p``) and speed (``-s``, words per minute), and a recording
level: every utterance is synthesized at ``-a 40`` (no espeak-internal clipping) and each
speaker's clips are then scaled together so that their RMS over all of the speaker's audio is
the speaker's level (uniform in -38..-26 dBFS, peaks capped at 0.9 of full scale). Speakers are numbered 1..60 like AudioMNIST's folders, so the domain's speaker split
(``order = RandomState(0).permutation(1..60)``, train = order[:51], test = order[51:]) applies
unchanged. Repetition r of (speaker, digit) adds a pitch offset and a speed offset, drawn
without replacement per (speaker, digit) so that the repetitions differ.

Processing of each utterance: ``espeak-ng -w tmp.wav`` (22,050 Hz, 16-bit mono), read with
``scipy.io.wavfile``, resampled to 8 kHz with ``scipy.signal.resample_poly`` (160/441), leading
and trailing silence trimmed (10 ms frames more than 40 dB below the loudest frame), rounded
to int16.

Output (deterministic: running the script twice gives byte-identical files):

- ``spoken_digits.npz`` (zip with fixed timestamps, deflate level 9):
  ``samples`` int16 (all clips concatenated), ``offsets`` int64 (n_clips + 1; clip i is
  ``samples[offsets[i]:offsets[i+1]]``), ``speaker`` int16 (1..60), ``digit`` int8, ``rep`` int8,
  ``pitch`` int16 and ``speed`` int16 (the espeak settings of each clip); clips sorted by
  (speaker, digit, rep).
- ``manifest.json``: script version, espeak-ng version, sample rate, counts, the npz's sha256,
  and speaker id → espeak settings (voice, base pitch, base speed, level in dBFS).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.io.wavfile
import scipy.signal

SCRIPT_VERSION = 1
SAMPLE_RATE = 8000
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
N_SPEAKERS = 60
SEED = 20230203  # arXiv 2302.01976
ACCENTS = (
    "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland",
    "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)
# Human-sounding variants (robotic, whispering and novelty variants left out); one per speaker.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Gene", "Henrique", "Hugo",
    "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "adam", "anika", "antonio",
    "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "grandma",
    "grandpa", "gustave", "iven", "john", "linda", "max", "michel", "miguel", "norbert",
    "pablo", "paul", "pedro",
)
PITCH_RANGE = (30, 70)  # base pitch (espeak -p, 0..99, default 50), inclusive
SPEED_RANGE = (140, 200)  # base speed in words per minute (espeak -s, default 175), inclusive
AMPLITUDE = 40  # espeak -a (0..200, default 100); some variants clip internally above ~50
LEVEL_RANGE = (-38.0, -26.0)  # each speaker's RMS in dBFS (int16 full scale = 32768)
PEAK_CAP = 0.9  # a speaker's gain is lowered if needed so no sample exceeds this × full scale
PITCH_JITTER = tuple(range(-8, 9, 2))  # per-repetition offsets, drawn without replacement
SPEED_JITTER = tuple(range(-15, 16, 5))
TRIM_TOP_DB = 40.0
TRIM_FRAME = 80  # 10 ms at 8 kHz
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "spoken_digits"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def speakers() -> list[dict]:
    """The 60 speakers' espeak settings (speaker id = position + 1), drawn once from SEED."""
    assert len(VARIANTS) == N_SPEAKERS and len(set(VARIANTS)) == N_SPEAKERS
    rng = np.random.RandomState(SEED)
    out = []
    for k, variant in enumerate(VARIANTS):
        accent = ACCENTS[k % len(ACCENTS)] if k < len(ACCENTS) else ACCENTS[rng.randint(len(ACCENTS))]
        out.append(
            {
                "voice": f"{accent}+{variant}",
                "pitch": int(rng.randint(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                "speed": int(rng.randint(SPEED_RANGE[0], SPEED_RANGE[1] + 1)),
                "level_dbfs": round(float(rng.uniform(*LEVEL_RANGE)), 2),
            }
        )
    return out


def jitter(speaker: int, digit: int, reps: int) -> list[tuple[int, int]]:
    """(pitch offset, speed offset) of each repetition of (speaker, digit); pairwise distinct."""
    rng = np.random.RandomState([SEED, speaker, digit])
    pitch = rng.choice(PITCH_JITTER, reps, replace=False)
    speed = rng.choice(SPEED_JITTER, reps, replace=len(SPEED_JITTER) < reps)
    return [(int(p), int(s)) for p, s in zip(pitch, speed)]


def trim(y: np.ndarray, top_db: float = TRIM_TOP_DB, frame: int = TRIM_FRAME) -> np.ndarray:
    """Drop leading/trailing frames more than ``top_db`` below the loudest frame."""
    n = -(-len(y) // frame)
    padded = np.zeros(n * frame)
    padded[: len(y)] = y
    rms = np.sqrt(np.mean(padded.reshape(n, frame) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-12))
    loud = np.flatnonzero(db > db.max() - top_db)
    return y[loud[0] * frame : min(len(y), (loud[-1] + 1) * frame)]


def synthesize(word: str, voice: str, pitch: int, speed: int, wav: Path) -> np.ndarray:
    """One utterance at 8 kHz (float64 in int16 units), silence trimmed."""
    subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(AMPLITUDE),
         "-w", str(wav), word],
        check=True, capture_output=True,
    )
    rate, x = scipy.io.wavfile.read(wav)
    if x.ndim != 1 or x.dtype != np.int16:
        raise RuntimeError(f"espeak-ng wrote {x.dtype} {x.shape}; expected 16-bit mono")
    ratio = Fraction(SAMPLE_RATE, rate)
    y = scipy.signal.resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator)
    return trim(y)


def to_level(clips: list[np.ndarray], level_dbfs: float) -> list[np.ndarray]:
    """Scale a speaker's clips by one gain to RMS ``level_dbfs`` (peak-capped) and round to int16."""
    rms = np.sqrt(np.mean(np.concatenate(clips) ** 2))
    peak = max(np.abs(c).max() for c in clips)
    gain = min(32768 * 10 ** (level_dbfs / 20) / rms, PEAK_CAP * 32767 / peak)
    return [np.clip(np.round(c * gain), -32768, 32767).astype(np.int16) for c in clips]


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but byte-reproducible (fixed member timestamps and order)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout
    return out.split("Data at")[0].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2, help="repetitions per (speaker, digit), >= 2")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not 2 <= args.reps <= len(PITCH_JITTER):
        parser.error(f"--reps must be in 2..{len(PITCH_JITTER)}")
    if shutil.which("espeak-ng") is None:
        print("espeak-ng not found: apt-get install -y espeak-ng", file=sys.stderr)
        return 1

    start = time.perf_counter()
    table = speakers()
    clips: list[np.ndarray] = []
    meta: dict[str, list[int]] = {k: [] for k in ("speaker", "digit", "rep", "pitch", "speed")}
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "utterance.wav"
        for sid, spk in enumerate(table, 1):
            raw: list[np.ndarray] = []
            for digit, word in enumerate(WORDS):
                for rep, (dp, ds) in enumerate(jitter(sid, digit, args.reps)):
                    pitch, speed = spk["pitch"] + dp, spk["speed"] + ds
                    raw.append(synthesize(word, spk["voice"], pitch, speed, wav))
                    for key, value in zip(meta, (sid, digit, rep, pitch, speed)):
                        meta[key].append(value)
            leveled = to_level(raw, spk["level_dbfs"])
            for digit in range(len(WORDS)):
                reps = leveled[digit * args.reps : (digit + 1) * args.reps]
                for i, a in enumerate(reps):
                    if any(len(a) == len(b) and np.array_equal(a, b) for b in reps[:i]):
                        raise RuntimeError(f"speaker {sid} digit {digit}: repetition {i} repeats an earlier one")
            clips.extend(leveled)
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    arrays = {
        "samples": np.concatenate(clips),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "speaker": np.array(meta["speaker"], dtype=np.int16),
        "digit": np.array(meta["digit"], dtype=np.int8),
        "rep": np.array(meta["rep"], dtype=np.int8),
        "pitch": np.array(meta["pitch"], dtype=np.int16),
        "speed": np.array(meta["speed"], dtype=np.int16),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    npz = args.out / "spoken_digits.npz"
    save_npz(npz, arrays)
    manifest = {
        "script": "scripts/make_spoken_digits.py",
        "script_version": SCRIPT_VERSION,
        "espeak_ng": espeak_version(),
        "sample_rate": SAMPLE_RATE,
        "dtype": "int16",
        "words": list(WORDS),
        "n_speakers": len(table),
        "n_digits": len(WORDS),
        "reps": args.reps,
        "n_clips": len(clips),
        "n_samples": int(lengths.sum()),
        "clip_seconds": {
            "min": round(float(lengths.min()) / SAMPLE_RATE, 4),
            "mean": round(float(lengths.mean()) / SAMPLE_RATE, 4),
            "max": round(float(lengths.max()) / SAMPLE_RATE, 4),
        },
        "seed": SEED,
        "espeak_amplitude": AMPLITUDE,
        "peak_cap": PEAK_CAP,
        "pitch_jitter": list(PITCH_JITTER),
        "speed_jitter": list(SPEED_JITTER),
        "trim": {"top_db": TRIM_TOP_DB, "frame": TRIM_FRAME},
        "npz": {"file": npz.name, "sha256": hashlib.sha256(npz.read_bytes()).hexdigest()},
        "speakers": {str(sid): spk for sid, spk in enumerate(table, 1)},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(
        f"wrote {len(clips)} clips ({len(table)} speakers × {len(WORDS)} digits × {args.reps} reps, "
        f"{lengths.sum() / SAMPLE_RATE:.0f} s of audio) to {args.out}: {size / 1e6:.2f} MB "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
