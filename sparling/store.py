"""Content-addressed store for training runs.

A run is identified by ``run_key(experiment, config, seed)`` and lives at
``<root>/<experiment>/<seed>-<key>/``::

    run.json              manifest: experiment, seed, key, schema_version, config
    checkpoints/<name>.pt torch checkpoints (plain data + state_dicts), loaded with weights_only=True
    <name>.json           small JSON documents (history, cached evaluations)
    COMPLETE              marker written when training finished
    .lock                 flock target so two processes never train the same run

Every file is written atomically (temp file in the same directory, fsync, ``os.replace``), so a
crash never leaves a half-written file under its final name.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

__all__ = [
    "SCHEMA_VERSION",
    "StoreError",
    "CorruptCheckpointError",
    "RunLockedError",
    "run_key",
    "RunInfo",
    "Run",
    "RunStore",
]

SCHEMA_VERSION = 1  # bump when the checkpoint/run layout changes

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MANIFEST = "run.json"
_COMPLETE = "COMPLETE"
_RESERVED = ("schema_version", "run_key")


class StoreError(Exception):
    """Base class of every run-store error."""


class CorruptCheckpointError(StoreError):
    """A checkpoint file exists but cannot be read."""


class RunLockedError(StoreError):
    """Another process holds the run's lock."""


def check_name(kind: str, value: str) -> str:
    """``value`` if it is a single safe path component (letters, digits, '.', '_', '-'), else a ValueError."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{kind} must match {_NAME.pattern!r} (a single path component), got {value!r}")
    return value


def _plain(value: Any) -> Any:
    """Dataclass → {"type": class name, **fields} (so two configs with equal fields but
    different classes differ), tuples → lists, everything else as is.

    Fields set to None are left out: an optional feature that is off (None) adds nothing to a
    run's key, so adding one to a config keeps the keys of every run stored before."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"type": type(value).__name__, **{k: _plain(v) for k, v in fields.items() if v is not None}}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _config_json(config: object) -> Any:
    """The config as canonical JSON data (dataclass → dict with its class name, tuples → lists,
    floats exact)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    return json.loads(json.dumps(_plain(config), sort_keys=True, allow_nan=False))


def run_key(experiment: str, config: object, seed: int) -> str:
    """16-hex-char sha256 of the canonical JSON of (experiment, config dataclass, seed, schema)."""
    check_name("experiment", experiment)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r} ({type(seed).__name__})")
    doc = {"experiment": experiment, "seed": seed, "schema_version": SCHEMA_VERSION, "config": _config_json(config)}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` via a temp file in the same directory, fsync and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp.name, 0o666 & ~mask)  # temp files are created private; give the usual mode
        os.replace(tmp.name, path)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_json_file(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def _read_json_file(path: Path) -> Any:
    """Parse a JSON file; a missing file raises FileNotFoundError, bad JSON raises StoreError."""
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise StoreError(f"unreadable JSON file {path}: {e}") from e


def _checkpoint_names(run_dir: Path) -> list[str]:
    return sorted(p.stem for p in (run_dir / "checkpoints").glob("*.pt"))


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Summary of a stored run, as listed by ``RunStore.runs``."""

    experiment: str
    seed: int
    key: str
    path: Path
    checkpoints: int
    complete: bool


class Run:
    """One run's directory; nothing is created on disk until something is written."""

    def __init__(self, root: Path, experiment: str, config: object, seed: int) -> None:
        self.experiment = experiment
        self.config = config
        self.seed = seed
        self.key = run_key(experiment, config, seed)
        self.path = Path(root) / experiment / f"{seed}-{self.key}"
        self.manifest: dict[str, Any] = {
            "experiment": experiment,
            "seed": seed,
            "key": self.key,
            "schema_version": SCHEMA_VERSION,
            "config": _config_json(config),
        }

    def write_manifest(self) -> None:
        """Write ``run.json``; if one exists it must match this run (never overwritten)."""
        path = self.path / _MANIFEST
        if path.exists():
            existing = _read_json_file(path)
            if existing != self.manifest:
                raise StoreError(
                    f"mismatched run at {path}: its manifest (key {existing.get('key')!r}) differs from "
                    f"this run's (key {self.key!r}); refusing to overwrite"
                )
            return
        _write_json_file(path, self.manifest)

    def _checkpoint_path(self, name: str) -> Path:
        return self.path / "checkpoints" / f"{check_name('checkpoint name', name)}.pt"

    def save_checkpoint(self, name: str, payload: dict[str, Any]) -> None:
        """Atomically save ``payload`` (plain data + state_dicts) as ``checkpoints/<name>.pt``."""
        path = self._checkpoint_path(name)
        clash = [k for k in _RESERVED if k in payload]
        if clash:
            raise ValueError(f"checkpoint payload may not contain the store's keys {clash}")
        self.write_manifest()
        data = {**payload, "schema_version": SCHEMA_VERSION, "run_key": self.key}
        atomic_write(path, lambda f: torch.save(data, f))

    def load_checkpoint(self, name: str) -> dict[str, Any]:
        """Load ``checkpoints/<name>.pt`` on CPU with ``weights_only=True``; returns the payload."""
        path = self._checkpoint_path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint {name!r} for run {self.path}: {path} does not exist")
        try:
            data = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as e:
            raise CorruptCheckpointError(
                f"corrupt checkpoint {path} ({type(e).__name__}: {e}); delete the file to recompute it"
            ) from e
        if not isinstance(data, dict):
            raise CorruptCheckpointError(
                f"corrupt checkpoint {path}: expected a dict, got {type(data).__name__}; delete the file to recompute it"
            )
        found = (data.get("run_key"), data.get("schema_version"))
        if found != (self.key, SCHEMA_VERSION):
            raise StoreError(
                f"mismatched checkpoint {path}: it belongs to run {found[0]} (schema {found[1]}), "
                f"not {self.key} (schema {SCHEMA_VERSION})"
            )
        return {k: v for k, v in data.items() if k not in _RESERVED}

    def remove_checkpoint(self, name: str) -> None:
        """Delete ``checkpoints/<name>.pt`` (absent: nothing to do)."""
        self._checkpoint_path(name).unlink(missing_ok=True)

    def checkpoint_names(self) -> list[str]:
        """Names of the saved checkpoints, sorted (temp files are ignored)."""
        return _checkpoint_names(self.path)

    def has_checkpoint(self, name: str) -> bool:
        return self._checkpoint_path(name).is_file()

    def _json_path(self, name: str) -> Path:
        if check_name("JSON name", name) == Path(_MANIFEST).stem:
            raise ValueError(f"JSON name {name!r} is reserved for the run manifest")
        return self.path / f"{name}.json"

    def write_json(self, name: str, obj: Any) -> None:
        """Atomically write ``<run>/<name>.json`` (e.g. history, cached evaluations)."""
        path = self._json_path(name)
        self.write_manifest()
        _write_json_file(path, obj)

    def read_json(self, name: str) -> Any:
        """Read ``<run>/<name>.json``; FileNotFoundError if absent, StoreError if unparsable."""
        return _read_json_file(self._json_path(name))

    def mark_complete(self) -> None:
        """Record that training finished."""
        self.write_manifest()
        atomic_write(self.path / _COMPLETE, lambda f: None)

    @property
    def is_complete(self) -> bool:
        return (self.path / _COMPLETE).is_file()

    @contextmanager
    def lock(self, wait: bool = False) -> Iterator[Run]:
        """Hold an exclusive ``flock`` on ``<run>/.lock``; RunLockedError if taken and not ``wait``.

        The lock is released on exit and when the process dies.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as e:
                raise RunLockedError(f"run {self.path} is locked by another process") from e
            yield self
        finally:
            os.close(fd)


class RunStore:
    """Runs under ``root`` (default: ``$SPARLING_STORE``, else ``<repo root>/runs``)."""

    def __init__(self, root: Path | str | None = None) -> None:
        if root is None:
            root = os.environ.get("SPARLING_STORE") or Path(__file__).resolve().parent.parent / "runs"
        self.root = Path(root)

    def run(self, experiment: str, config: object, seed: int) -> Run:
        return Run(self.root, experiment, config, seed)

    def runs(self) -> list[RunInfo]:
        """Every run with a manifest, sorted by (experiment, seed, key)."""
        infos = []
        for manifest in self.root.glob(f"*/*/{_MANIFEST}"):
            m = _read_json_file(manifest)
            run_dir = manifest.parent
            infos.append(
                RunInfo(
                    experiment=m["experiment"],
                    seed=m["seed"],
                    key=m["key"],
                    path=run_dir,
                    checkpoints=len(_checkpoint_names(run_dir)),
                    complete=(run_dir / _COMPLETE).is_file(),
                )
            )
        return sorted(infos, key=lambda i: (i.experiment, i.seed, i.key))
