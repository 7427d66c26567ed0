"""Build hook: the presets, kept in ``envs/`` at the top of the repository, go into the wheel.

``envs/*.toml`` is copied to ``prefrl/preset_files/`` of the build (where
:func:`prefrl.presets.preset_dir` finds it once installed); an editable install reads
``envs/`` in place. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ENVS = Path(__file__).resolve().parent / "envs"


class BuildPyWithPresets(build_py):
    """``build_py`` that also copies the preset files into the package."""

    def run(self) -> None:
        """Build the package, then copy the presets (not for an editable install)."""
        super().run()
        if getattr(self, "editable_mode", False):
            return
        presets = sorted(ENVS.glob("*.toml"))
        if not presets:
            raise RuntimeError(f"no presets in {ENVS}: the wheel would have none")
        target = Path(self.build_lib) / "prefrl" / "preset_files"
        self.mkpath(str(target))
        for src in presets:
            self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildPyWithPresets})
