"""Suite-wide hooks: under ``CI=true`` a test skipped for a missing system package fails.

A test that needs a system package skips with a reason naming its install command
(``apt-get install libosmesa6``); on a developer's machine that stays a skip, on CI (where
``make test`` installs the packages) it is a failure, so a green CI has run every rendering and
browser test.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

SYSTEM_PACKAGE_MARK = "apt-get install"
"""Skip reasons containing this are skips for a missing system package."""


def skip_reason(report: pytest.TestReport) -> str:
    """The reason of a skipped report ('' when there is none)."""
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


def is_system_package_skip(report: pytest.TestReport) -> bool:
    return report.skipped and SYSTEM_PACKAGE_MARK in skip_reason(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if os.environ.get("CI", "").lower() == "true" and is_system_package_skip(report):
        report.outcome = "failed"
        report.longrepr = (f"CI=true and a system package is missing ({skip_reason(report)}); "
                           "`make test` installs it (sysdeps)")


@pytest.fixture
def one_thread():
    """One torch thread for the test (MLP work on these CPUs), restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
