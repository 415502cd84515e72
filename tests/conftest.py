import os

import pytest
import torch

import sparling.training
from sparling.domains.latex_ocr import RENDER_CACHE_ENV
from sparling.experiments import get_or_train


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Test tensors are small: torch's intra-op threads cost more than they save here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def no_render_cache_from_the_shell():
    """A user's ``$SPARLING_RENDER_CACHE`` must not leak into the tests (they count renders)."""
    saved = os.environ.pop(RENDER_CACHE_ENV, None)
    yield
    if saved is not None:
        os.environ[RENDER_CACHE_ENV] = saved


@pytest.fixture
def interrupt_at_validation(monkeypatch):
    """``arm(k)``: from now on, the k-th validation of training raises KeyboardInterrupt
    (``monkeypatch.undo()`` disarms it)."""

    def arm(k: int) -> None:
        real, calls = sparling.training.validation_accuracy, []

        def validate(*args, **kwargs):
            calls.append(1)
            if len(calls) == k:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(sparling.training, "validation_accuracy", validate)

    return arm


@pytest.fixture
def interrupt_at_third_validation(interrupt_at_validation, monkeypatch):
    """``interrupt(experiment, store)``: train ``experiment`` (seed 1) in ``store`` until a
    KeyboardInterrupt at its third validation (its latest checkpoint is then the second's)."""

    def interrupt(experiment, store) -> None:
        interrupt_at_validation(3)
        with pytest.raises(KeyboardInterrupt):
            get_or_train(experiment, 1, store, device="cpu", progress=False)
        monkeypatch.undo()

    return interrupt
