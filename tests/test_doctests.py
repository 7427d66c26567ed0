"""Every module's docstring examples run (they are the documentation users copy from)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import prefrl

MODULES = sorted(m.name for m in pkgutil.walk_packages(prefrl.__path__, "prefrl."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
