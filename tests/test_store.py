"""The content-addressed run store: keys, atomic checkpoints, corruption, mismatches, locking."""

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import sparling.store as store_mod
from sparling.store import CorruptCheckpointError, RunLockedError, RunStore, StoreError, run_key


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class Config:
    width: int = 8
    optim: Optim = field(default_factory=Optim)


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# --- keys ---------------------------------------------------------------------------------------


def test_key_is_stable_16_hex_chars():
    key = run_key("digits", Config(), 0)
    assert key == run_key("digits", Config(width=8, optim=Optim()), 0)
    assert len(key) == 16 and int(key, 16) >= 0


def test_key_changes_with_any_input():
    base = run_key("digits", Config(), 0)
    others = [
        run_key("digits", Config(optim=Optim(lr=2e-3)), 0),
        run_key("digits", Config(optim=Optim(betas=(0.9, 0.99))), 0),
        run_key("digits", Config(width=9), 0),
        run_key("audio", Config(), 0),
        run_key("digits", Config(), 1),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_key_is_canonical_for_float_spelling_and_tuples():
    assert run_key("e", Optim(lr=1e-5), 0) == run_key("e", Optim(lr=0.00001), 0)
    assert run_key("e", Optim(betas=(0.9, 0.999)), 0) == run_key("e", Optim(betas=[0.9, 0.999]), 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [True, 1.0, "1", None])
def test_seed_must_be_an_int(seed):
    with pytest.raises(ValueError, match="seed"):
        run_key("e", Config(), seed)


def test_config_must_be_a_dataclass_and_experiment_a_path_component():
    with pytest.raises(TypeError):
        run_key("e", {"width": 8}, 0)
    for bad in ["", "a/b", "..", ".hidden", 3]:
        with pytest.raises(ValueError, match="experiment"):
            run_key(bad, Config(), 0)


# --- layout, manifest, json ---------------------------------------------------------------------


def test_run_creates_nothing_until_written(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 3)
    assert run.path == tmp_path / "digits" / f"3-{run.key}"
    assert list(tmp_path.iterdir()) == []
    assert run.checkpoint_names() == [] and not run.is_complete and not run.has_checkpoint("last")
    run.write_manifest()
    manifest = run.path / "run.json"
    assert manifest.is_file()
    assert run.manifest == {
        "experiment": "digits",
        "seed": 3,
        "key": run.key,
        "schema_version": store_mod.SCHEMA_VERSION,
        "config": {"type": "Config", "width": 8, "optim": {"type": "Optim", "lr": 1e-3, "betas": [0.9, 0.999]}},
    }
    run.write_manifest()  # idempotent for the same run


def test_mismatched_manifest_is_never_overwritten(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    run.write_manifest()
    manifest = run.path / "run.json"
    tampered = manifest.read_text().replace('"width": 8', '"width": 9')
    manifest.write_text(tampered)
    for write in [run.write_manifest, lambda: run.save_checkpoint("last", {}), lambda: run.write_json("h", [])]:
        with pytest.raises(StoreError, match="mismatched run"):
            write()
    assert manifest.read_text() == tampered
    assert run.checkpoint_names() == []


def test_json_round_trip_and_errors(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    run.write_json("history", [{"step": 1, "loss": 0.5}])
    assert run.read_json("history") == [{"step": 1, "loss": 0.5}]
    assert (run.path / "run.json").is_file()
    with pytest.raises(ValueError, match="reserved"):
        run.write_json("run", {})
    with pytest.raises(FileNotFoundError):
        run.read_json("absent")
    (run.path / "broken.json").write_text("{not json")
    with pytest.raises(StoreError, match="broken.json"):
        run.read_json("broken")


def test_mark_complete(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    assert not run.is_complete
    run.mark_complete()
    assert run.is_complete and (run.path / "run.json").is_file()


# --- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    model = torch.nn.Linear(3, 2)
    run.save_checkpoint("step-10", {"model": model.state_dict(), "step": 10, "history": [0.5, 0.25]})
    run.save_checkpoint("last", {"step": 10})
    loaded = run.load_checkpoint("step-10")
    assert set(loaded) == {"model", "step", "history"}
    assert loaded["step"] == 10 and loaded["history"] == [0.5, 0.25]
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded["model"][name], tensor)
    assert run.checkpoint_names() == ["last", "step-10"]
    assert run.has_checkpoint("last") and not run.has_checkpoint("first")
    raw = torch.load(run.path / "checkpoints" / "last.pt", weights_only=True)
    assert raw["run_key"] == run.key and raw["schema_version"] == store_mod.SCHEMA_VERSION


def test_checkpoint_payload_and_name_are_checked(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    with pytest.raises(ValueError, match="run_key"):
        run.save_checkpoint("last", {"run_key": "x"})
    with pytest.raises(ValueError, match="checkpoint name"):
        run.save_checkpoint("../escape", {})


def test_missing_checkpoint_names_the_path(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    with pytest.raises(FileNotFoundError, match="last.pt"):
        run.load_checkpoint("last")


def fail_replace(*args, **kwargs):
    raise OSError("disk full")


def fail_save_midway(obj, f, *args, **kwargs):
    f.write(b"PK\x03\x04 half a checkpoint")
    raise OSError("disk full")


@pytest.mark.parametrize("target, failure", [(os, fail_replace), (torch, fail_save_midway)])
def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch, target, failure):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    run.save_checkpoint("last", {"step": 1})
    before = files_under(run.path)
    monkeypatch.setattr(target, "replace" if target is os else "save", failure)
    with pytest.raises(OSError, match="disk full"):
        run.save_checkpoint("last", {"step": 2})
    monkeypatch.undo()
    assert files_under(run.path) == before  # no temp file left behind
    assert run.load_checkpoint("last") == {"step": 1}


def test_temp_files_are_not_checkpoints(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    run.save_checkpoint("last", {"step": 1})
    (run.path / "checkpoints" / ".last.pt.abc123.tmp").write_bytes(b"partial")
    assert run.checkpoint_names() == ["last"]


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"\x00garbage\xff" * 10,
        lambda data: b"",
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_corrupt_checkpoint_is_reported_and_left_alone(tmp_path, corrupt):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    run.save_checkpoint("last", {"model": torch.nn.Linear(4, 4).state_dict()})
    path = run.path / "checkpoints" / "last.pt"
    path.write_bytes(corrupt(path.read_bytes()))
    before = files_under(run.path)
    with pytest.raises(CorruptCheckpointError, match="delete") as info:
        run.load_checkpoint("last")
    assert str(path) in str(info.value)
    assert files_under(run.path) == before


def test_non_dict_checkpoint_is_corrupt(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    run.save_checkpoint("last", {})
    torch.save([1, 2], run.path / "checkpoints" / "last.pt")
    with pytest.raises(CorruptCheckpointError, match="expected a dict"):
        run.load_checkpoint("last")


def test_checkpoint_from_another_run_is_rejected(tmp_path):
    store = RunStore(tmp_path)
    mine, other = store.run("digits", Config(), 0), store.run("digits", Config(), 1)
    mine.save_checkpoint("last", {"step": 1})
    other.save_checkpoint("last", {"step": 99})
    (mine.path / "checkpoints" / "last.pt").write_bytes((other.path / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(StoreError, match=f"mismatched checkpoint .* belongs to run {other.key}") as info:
        mine.load_checkpoint("last")
    assert not isinstance(info.value, CorruptCheckpointError)


def test_checkpoint_from_another_schema_is_rejected(tmp_path, monkeypatch):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    run.save_checkpoint("last", {"step": 1})
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", store_mod.SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="mismatched checkpoint"):
        run.load_checkpoint("last")


# --- locking ------------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    if sys.argv[2] == "stdin":
        sys.stdin.readline()
    else:
        time.sleep(float(sys.argv[2]))
    """
)


def hold_lock(run, until: str) -> subprocess.Popen:
    run.path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run.path / ".lock"), until],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def test_lock_held_by_another_process(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    proc = hold_lock(run, "stdin")
    try:
        with pytest.raises(RunLockedError, match=str(run.path)):
            with run.lock():
                pass
    finally:
        proc.communicate("\n", timeout=10)
    with run.lock() as locked:
        assert locked is run
        with pytest.raises(RunLockedError):  # a second holder, even in-process, is refused
            with run.lock():
                pass
    with run.lock():  # released on exit
        pass


def test_lock_released_when_holder_dies(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    proc = hold_lock(run, "stdin")
    proc.kill()
    proc.wait(timeout=10)
    with run.lock():
        pass


def test_lock_can_wait_for_the_holder(tmp_path):
    run = RunStore(tmp_path).run("digits", Config(), 0)
    proc = hold_lock(run, "0.5")
    start = time.monotonic()
    with run.lock(wait=True):
        assert time.monotonic() - start > 0.3  # only acquired once the holder exited
    proc.wait(timeout=10)


# --- listing and root ---------------------------------------------------------------------------


def test_runs_lists_written_runs(tmp_path):
    store = RunStore(tmp_path)
    assert store.runs() == []
    a, b, c = store.run("digits", Config(), 1), store.run("digits", Config(), 0), store.run("audio", Config(), 0)
    a.save_checkpoint("s1", {})
    a.save_checkpoint("s2", {})
    a.mark_complete()
    b.write_json("history", [])
    c.write_manifest()
    with store.run("digits", Config(), 2).lock():  # a locked run without a manifest is not listed
        pass
    infos = store.runs()
    assert [(i.experiment, i.seed, i.key, i.path, i.checkpoints, i.complete) for i in infos] == [
        ("audio", 0, c.key, c.path, 0, False),
        ("digits", 0, b.key, b.path, 0, False),
        ("digits", 1, a.key, a.path, 2, True),
    ]


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARLING_STORE", str(tmp_path))
    assert RunStore().root == tmp_path
    monkeypatch.delenv("SPARLING_STORE")
    assert RunStore().root == Path(store_mod.__file__).resolve().parent.parent / "runs"
    assert RunStore(str(tmp_path)).root == tmp_path


def test_configs_with_equal_fields_but_different_classes_get_different_keys():
    @dataclass(frozen=True)
    class A:
        pass

    @dataclass(frozen=True)
    class B:
        pass

    assert run_key("exp", A(), 1) != run_key("exp", B(), 1)
