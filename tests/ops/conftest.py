"""Op tests use tiny tensors: one intra-op thread is faster than two and does not suffer when
the shared machine is oversubscribed. Restored after each test."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
