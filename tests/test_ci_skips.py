"""Under CI=true a skip for a missing system package is a failure (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

INNER = '''
import pytest

@pytest.mark.skipif(True, reason="chromium is not installed (apt-get install chromium)")
def test_browser():
    pass

def test_render():
    pytest.skip("OSMesa is not installed (apt-get install libosmesa6)")

@pytest.mark.skipif(True, reason="no CUDA device on this machine")
def test_cuda():
    pass
'''


@pytest.mark.parametrize("ci", ["true", ""])
def test_system_package_skips_fail_on_ci(pytester: pytest.Pytester, monkeypatch, ci: str) -> None:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest("-p", "no:cacheprovider")
    if ci:
        # a skipif mark fails at setup (an error), pytest.skip in the test body a failure;
        # CUDA is no system package: still a skip
        result.assert_outcomes(failed=1, errors=1, skipped=1)
        assert result.ret != 0
        result.stdout.fnmatch_lines(["*CI=true and a system package is missing*apt-get install*"])
    else:
        result.assert_outcomes(skipped=3)
        assert result.ret == 0
