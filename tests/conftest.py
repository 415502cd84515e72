import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Test tensors are small: torch's intra-op threads cost more than they save here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
