"""Every op test runs single-threaded (see tests/conftest.py: single_thread)."""

import pytest


@pytest.fixture(autouse=True)
def _single_thread(single_thread):
    yield
