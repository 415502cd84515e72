import os

import pytest
import torch

from sparling.domains.latex_ocr import RENDER_CACHE_ENV


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
