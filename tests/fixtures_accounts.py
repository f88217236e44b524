"""The test-only scrypt cost: accounts made inside the test process hash at ``TEST_SCRYPT_N``.

Production hashes at ``localdb.accounts.SCRYPT_N`` (2**17: 128 MiB and about half a second a
hash); a suite that creates and signs in dozens of accounts would spend minutes on it. Every test
therefore runs with ``SCRYPT_N`` lowered to ``TEST_SCRYPT_N``, except a test that asks for the
``production_scrypt`` fixture: those check that the production cost is at least 2**17 and that
an old 2**14 hash is replaced by a 2**17 one at sign-in, for real. Programs the tests start as
subprocesses (``main.py``) always run at the production cost; hashes made here at the lower cost
verify there (a hash carries its own parameters) and are rehashed at the first sign-in.
"""
from __future__ import annotations

import pytest

TEST_SCRYPT_N = 2 ** 10


@pytest.fixture
def production_scrypt():
    """Ask for this to run a test at the production scrypt cost (the real ``SCRYPT_N``)."""
    import localdb.accounts
    return localdb.accounts.SCRYPT_N


@pytest.fixture(autouse=True)
def _test_scrypt_cost(request, monkeypatch):
    if "production_scrypt" in request.fixturenames:
        yield
        return
    import localdb.accounts
    monkeypatch.setattr(localdb.accounts, "SCRYPT_N", TEST_SCRYPT_N)
    yield
