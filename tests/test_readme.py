"""The README's quick start runs: its commands and Python snippets, scaled down.

The code blocks of the README's top and of its "Using it" section are read; ``prefrl`` commands
run as ``python -m prefrl.cli`` and snippets as ``python -c``, in a temporary folder, with big
step and label counts replaced by tiny ones and placeholders (``RUN_DIR``, a run folder under
``results/runs/``) by a run the first ``prefrl train`` command made. The first train command,
``--resume``, ``export``, ``presets``, ``--help`` and the reward-learning snippet run by default;
the rest are marked slow.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTIONS = (None, "Using it")  # the top (before the first "##") and the usage section
TINY_TRAIN = ["--pretrain-clips", "12", "--pretrain-epochs", "2", "--update-epochs", "1",
              "--n-envs", "1", "--no-progress", "--no-tensorboard", "--torch-threads", "1"]
TINY_EXTRA = {"bench reward": ["--epochs", "1"]}
TINY_CONFIG = ("pretrain_clips=12, pretrain_epochs=2, update_epochs=1, n_envs=1, "
               "progress=False, tensorboard=False, torch_threads=1, ")
FAST = ("train --resume", "train --help", "export", "presets", "PreferenceLearner")
NOT_RUN = ("make test",)  # the suite itself


@dataclass(frozen=True)
class Example:
    """A README command (``kind == "sh"``) or Python snippet (``"py"``)."""

    kind: str
    text: str

    @property
    def fast(self) -> bool:
        return any(key in self.text for key in FAST) or self.text == first_train_command()


def sections(markdown: str) -> dict[str | None, str]:
    """``{heading: body}`` of the ``##`` sections; the text before the first under None."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.M)
    out: dict[str | None, str] = {None: parts[0]}
    out.update({parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)})
    return out


def examples(markdown: str) -> list[Example]:
    found = []
    by_heading = sections(markdown)
    for heading in SECTIONS:
        for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", by_heading[heading], re.M | re.S):
            if lang == "python":
                found.append(Example("py", body))
                continue
            for line in body.splitlines():
                command = re.split(r"\s#\s|\s{2,}#", line)[0].strip()
                if command.startswith(("prefrl ", "make ")) and command not in NOT_RUN:
                    found.append(Example("sh", command))
    return found


def tiny_number(match: re.Match[str]) -> str:
    value = int(match.group(0).replace("_", ""))
    return "600" if value >= 10_000 else "30" if value >= 100 else match.group(0)


def scale_down(text: str) -> str:
    """Step counts (>= 10,000) become 600, other counts >= 100 become 30."""
    return re.sub(r"(?<![\w.])\d[\d_]*(?![\w.])", tiny_number, text)


README_EXAMPLES = examples(README.read_text())


def first_train_command() -> str:
    return next(e.text for e in README_EXAMPLES if e.text.startswith("prefrl train --env"))


def test_readme_has_a_quick_start() -> None:
    kinds = [e.kind for e in README_EXAMPLES]
    assert kinds.count("sh") >= 5 and kinds.count("py") >= 2
    assert any(e.text.startswith("prefrl train --env") for e in README_EXAMPLES)
    assert scale_down("--steps 1000000 --labels 1_400 --seed 0 clip_len=25") == \
        "--steps 600 --labels 30 --seed 0 clip_len=25"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MUJOCO_GL="disable", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    return r


def command_args(command: str, work: Path, first_run: Path | None) -> list[str]:
    """The README command as arguments of ``python -m prefrl.cli``, scaled down."""
    words = shlex.split(scale_down(command))
    if words[:2] == ["make", "demo"]:
        words = ["prefrl", "demo", "--steps", "600", "--labels", "30", "--out", str(work / "demo")]
    words = words[1:]
    for i, w in enumerate(words):
        if w == "RUN_DIR" or w.startswith("results/runs/"):
            assert first_run is not None
            words[i] = str(first_run)
        elif re.fullmatch(r"[A-Z][A-Z_]+", w):
            raise AssertionError(f"README command {command!r}: no stand-in for {w!r} in this test")
    if words[0] == "train" and not {"--resume", "--help"} & set(words):
        words += [*TINY_TRAIN, "--run-dir", str(work / f"run-{len(list(work.iterdir()))}")]
        if "--steps" not in words:  # the preset's budget: millions of steps
            words += ["--steps", "600"]
    for key, extra in TINY_EXTRA.items():
        if " ".join(words).startswith(key):
            words += extra
    return ["-m", "prefrl.cli", *words]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's first ``prefrl train`` command, scaled down: a finished run."""
    command = first_train_command()
    work = tmp_path_factory.mktemp("readme-first-run")
    args = command_args(command, work, None)
    run(args, work)
    run_dir = Path(args[args.index("--run-dir") + 1])
    assert (run_dir / "result.json").is_file()
    return run_dir


def params() -> list:
    out = []
    for e in README_EXAMPLES:
        marks = [] if e.fast else [pytest.mark.slow]
        name = e.text if e.kind == "sh" else e.text.strip().splitlines()[-1][:40]
        out.append(pytest.param(e, marks=marks, id=f"{e.kind}: {name}"))
    return out


@pytest.mark.parametrize("example", params())
def test_readme_example_runs(example: Example, first_run: Path, tmp_path: Path) -> None:
    if example.kind == "py":
        code = scale_down(example.text).replace("TrainConfig(", "TrainConfig(" + TINY_CONFIG)
        run(["-c", code], tmp_path)
        return
    if example.text == first_train_command():
        assert (first_run / "result.json").is_file()  # the fixture ran it
        return
    run(command_args(example.text, tmp_path, first_run), tmp_path)
