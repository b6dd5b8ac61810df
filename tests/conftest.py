"""Fixtures shared by the whole suite."""

import pytest
import torch


@pytest.fixture
def single_thread():
    """Run a test with one intra-op thread, restored afterwards.

    Tests use tiny tensors: one thread is faster than two for them, and it does not suffer when
    the two cores of a test machine are shared with other jobs.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
