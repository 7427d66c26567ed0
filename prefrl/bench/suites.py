"""Benchmark suites as data: a grid of (env x setting x seed) cells, each one training run.

A :class:`Suite` names its envs, its settings (a label budget with the learned reward, or the
true reward) and its seeds; :meth:`Suite.cells` expands it into :class:`Cell` objects, each with
the :class:`~prefrl.config.TrainConfig` arguments of one run and its directory
``<out>/<env>/<setting>/<seed>/``. Suites can also be read from a JSON file
(:meth:`Suite.from_json`), which is how ``<out>/suite.json`` records what was run.

>>> suite = SUITES["mujoco-paper"]
>>> len(suite.cells())
96
>>> cell = suite.cells(envs=["Hopper"], seeds=[1])[0]
>>> cell.key, cell.config["labels"], cell.config["oracle"]
('Hopper/labels-350/1', 350, 'paper')
>>> [s.name for s in SUITES["smoke"].settings]
['labels-200', 'true']
>>> sac = SUITES["sac-pebble"].cells(envs=["HalfCheetah"], seeds=[0])
>>> [(c.setting, c.config["algo"], c.config["steps"]) for c in sac][:2]
[('labels-100', 'sac', 300000), ('labels-250', 'sac', 300000)]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefrl.config import TrainConfig

_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
#: The orders :meth:`Suite.cells` can hand cells out in (``prefrl bench run --order``).
CELL_ORDERS = ("env", "seed")


@dataclass(frozen=True)
class Setting:
    """One column of the grid: a reward source, a label budget and extra config values."""

    name: str
    reward: str = "learned"
    labels: int | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def learned(cls, labels: int, **overrides: Any) -> Setting:
        """``labels-<N>``: the learned reward from ``N`` synthetic labels."""
        return cls(f"labels-{labels}", "learned", labels, dict(overrides))

    @classmethod
    def true(cls, **overrides: Any) -> Setting:
        """``true``: the same pipeline on the environment's true reward (the RL baseline)."""
        return cls("true", "true", None, dict(overrides))


@dataclass(frozen=True)
class Cell:
    """One run of a suite: ``config`` holds :class:`TrainConfig` arguments (no ``run_dir``)."""

    env: str
    setting: str
    seed: int
    config: Mapping[str, Any]

    @property
    def key(self) -> str:
        """``env/setting/seed``: the cell's path relative to the suite's out dir."""
        return f"{self.env}/{self.setting}/{self.seed}"

    def path(self, out: Path) -> Path:
        """The cell's run directory under ``out``."""
        return Path(out) / self.env / self.setting / str(self.seed)

    def train_config(self, out: Path) -> TrainConfig:
        """The :class:`TrainConfig` of this cell, running in :meth:`path`."""
        return TrainConfig(**dict(self.config), run_dir=self.path(out))

    def to_json(self) -> dict[str, Any]:
        """Plain dict (for ``suite.json`` and for sending to workers)."""
        return {"env": self.env, "setting": self.setting, "seed": self.seed,
                "config": dict(self.config)}


@dataclass(frozen=True)
class Suite:
    """A grid of runs: envs x settings x seeds, with shared config values.

    ``steps`` gives per-env step budgets (envs not listed use their preset's); ``common`` holds
    :class:`TrainConfig` values shared by every cell (a setting's ``overrides`` win over them).
    """

    name: str
    envs: tuple[str, ...]
    settings: tuple[Setting, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: Mapping[str, int] = field(default_factory=dict)
    common: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def setting(self, name: str) -> Setting:
        """The setting called ``name`` (``KeyError`` if none)."""
        for s in self.settings:
            if s.name == name:
                return s
        raise KeyError(f"suite {self.name!r} has no setting {name!r}; "
                       f"known: {', '.join(s.name for s in self.settings)}")

    def cells(self, *, envs: Iterable[str] | None = None, settings: Iterable[str] | None = None,
              seeds: Iterable[int] | None = None, steps_scale: float = 1.0,
              order: str = "env") -> list[Cell]:
        """Expand the grid (optionally restricted) in run order.

        ``order="env"``: env, then setting, then seed. ``order="seed"``: seed, then env, then
        setting, so that with as many workers as settings a learned cell runs beside its
        true-reward twin (same env and seed), under the same load.
        ``steps_scale`` multiplies every step budget; it needs the preset's budget for envs
        without an explicit one, so it raises ``ValueError`` for a preset that does not exist.

        >>> [c.key for c in SUITES["smoke"].cells(seeds=[0, 1], order="seed")][:2]
        ['Pendulum/labels-200/0', 'Pendulum/true/0']
        """
        if order not in CELL_ORDERS:
            raise ValueError(f"unknown cell order {order!r}; valid: {', '.join(CELL_ORDERS)}")
        env_list = self._pick(envs, self.envs, "env")
        set_list = [self.setting(s) for s in self._pick(settings,
                                                         [s.name for s in self.settings],
                                                         "setting")]
        seed_list = list(self.seeds if seeds is None else seeds)
        out: list[Cell] = []
        for env in env_list:
            steps = self._steps(env, steps_scale)
            for st in set_list:
                cfg: dict[str, Any] = {**self.common, "env": env, "reward": st.reward}
                if st.labels is not None:
                    cfg["labels"] = st.labels
                if steps is not None:
                    cfg["steps"] = steps
                cfg.update(st.overrides)
                unknown = set(cfg) - _TRAIN_FIELDS - {"run_dir"}
                if unknown:
                    raise ValueError(f"suite {self.name!r}: unknown TrainConfig field(s) "
                                     f"{', '.join(sorted(unknown))}")
                cfg.pop("run_dir", None)
                out.extend(Cell(env, st.name, seed, {**cfg, "seed": seed}) for seed in seed_list)
        if order == "seed":  # a stable sort keeps env, then setting, within each seed
            out.sort(key=lambda c: seed_list.index(c.seed))
        return out

    def _pick(self, wanted: Iterable[str] | None, known: Sequence[str], what: str) -> list[str]:
        if wanted is None:
            return list(known)
        wanted = list(wanted)
        bad = [w for w in wanted if w not in known]
        if bad:
            raise ValueError(f"suite {self.name!r} has no {what} {', '.join(map(repr, bad))}; "
                             f"known: {', '.join(known)}")
        return wanted

    def _steps(self, env: str, scale: float) -> int | None:
        base = self.steps.get(env)
        if scale == 1.0:
            return base
        if base is None:
            from prefrl.envs import load_preset

            base = load_preset(env).steps
        return max(1, int(math.ceil(base * scale)))

    def to_json(self) -> dict[str, Any]:
        """Plain dict; :meth:`from_json` reads it back."""
        return {
            "name": self.name, "description": self.description, "envs": list(self.envs),
            "settings": [{"name": s.name, "reward": s.reward, "labels": s.labels,
                          "overrides": dict(s.overrides)} for s in self.settings],
            "seeds": list(self.seeds), "steps": dict(self.steps), "common": dict(self.common),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Suite:
        """A suite from a dict like :meth:`to_json`'s.

        ``settings`` entries may also be plain names: ``labels-<N>`` or ``true``. An unknown
        key is a ``ValueError``: a misplaced one (``selector`` beside ``name`` instead of in
        ``overrides``) would otherwise run the default without a word.
        """
        _check_keys(doc, _SUITE_KEYS, f"suite {doc.get('name', '?')!r}")
        settings = []
        for s in doc["settings"]:
            if isinstance(s, str):
                settings.append(Setting.true() if s == "true"
                                else Setting.learned(int(s.removeprefix("labels-"))))
            else:
                _check_keys(s, _SETTING_KEYS, f"setting {s.get('name', '?')!r}",
                            hint="; TrainConfig values go in its 'overrides'")
                settings.append(Setting(s["name"], s.get("reward", "learned"), s.get("labels"),
                                        dict(s.get("overrides", {}))))
        return cls(name=doc["name"], envs=tuple(doc["envs"]), settings=tuple(settings),
                   seeds=tuple(doc.get("seeds", (0, 1, 2))), steps=dict(doc.get("steps", {})),
                   common=dict(doc.get("common", {})), description=doc.get("description", ""))


_SUITE_KEYS = ("name", "description", "envs", "settings", "seeds", "steps", "common")
_SETTING_KEYS = ("name", "reward", "labels", "overrides")


def _check_keys(doc: Mapping[str, Any], known: Sequence[str], what: str, hint: str = "") -> None:
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(known)}{hint}")


MUJOCO_ENVS = ("HalfCheetah", "Hopper", "Walker2d", "Swimmer", "Ant", "Reacher",
               "InvertedPendulum", "InvertedDoublePendulum")
"""The paper's eight MuJoCo tasks (Christiano et al. 2017, figure 1)."""

ATARI_ENVS = ("BeamRider", "Breakout", "Enduro", "Pong", "Qbert", "Seaquest", "SpaceInvaders")
"""The paper's seven Atari games (figure 2)."""

_QUIET = {"progress": False, "torch_threads": 1}

SUITES: dict[str, Suite] = {
    "mujoco-paper": Suite(
        name="mujoco-paper", envs=MUJOCO_ENVS,
        settings=(Setting.learned(350), Setting.learned(700), Setting.learned(1400),
                  Setting.true()),
        seeds=(0, 1, 2), common={**_QUIET, "oracle": "paper"},
        description="the paper's MuJoCo grid: 8 tasks x {350, 700, 1400 synthetic labels from "
                    "the 'paper' teacher, true reward} x 3 seeds, preset step budgets",
    ),
    "atari-paper": Suite(
        name="atari-paper", envs=ATARI_ENVS,
        settings=(Setting.learned(5500), Setting.true()),
        seeds=(0, 1, 2), common={**_QUIET, "oracle": "paper"},
        description="the paper's Atari grid: 7 games x {5500 synthetic labels, true reward} x "
                    "3 seeds (needs the Atari presets in envs/)",
    ),
    "falls": Suite(
        name="falls", envs=("InvertedPendulum", "InvertedDoublePendulum", "Hopper", "Walker2d",
                            "Ant"),
        settings=(Setting.learned(700), Setting.true()),
        seeds=(0, 1), steps={"InvertedPendulum": 200_000, "InvertedDoublePendulum": 500_000,
                             "Hopper": 300_000, "Walker2d": 300_000, "Ant": 300_000},
        common={**_QUIET, "oracle": "paper"},
        description="the five MuJoCo tasks that can fall, with termination = continue: "
                    "{700 labels from the 'paper' teacher, true reward} x 2 seeds; 200k steps "
                    "for InvertedPendulum (its preset budget), 500k for InvertedDoublePendulum "
                    "(true-reward PPO still rising at 300k), 300k (0.3 of the preset's) for "
                    "the others",
    ),
    "sac-pebble": Suite(
        name="sac-pebble", envs=("HalfCheetah", "Walker2d", "Hopper"),
        settings=(Setting.learned(100), Setting.learned(250), Setting.learned(500),
                  Setting.true()),
        seeds=(0, 1), steps={"HalfCheetah": 300_000, "Walker2d": 300_000, "Hopper": 300_000},
        common={**_QUIET, "oracle": "paper", "algo": "sac"},
        description="off-policy preference RL (issue 16): SAC with relabelling and PEBBLE "
                    "pre-training on 3 tasks x {100, 250, 500 labels from the 'paper' "
                    "teacher, SAC on the true reward} x 2 seeds, 300k steps",
    ),
    "smoke": Suite(
        name="smoke", envs=("Pendulum", "InvertedPendulum"),
        settings=(Setting.learned(200, pretrain_clips=100, pretrain_epochs=20, update_epochs=3),
                  Setting.true()),
        seeds=(0, 1), steps={"Pendulum": 40_000, "InvertedPendulum": 20_000},
        common={**_QUIET, "oracle": "paper", "tensorboard": False},
        description="a fast end-to-end check (5-10 min on 2 cores): Pendulum and "
                    "InvertedPendulum x {200 labels, true reward} x 2 seeds, small budgets",
    ),
}
"""The built-in suites by name."""


def get_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or one read from a JSON file (``ValueError`` if neither)."""
    if name_or_path in SUITES:
        return SUITES[name_or_path]
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        import json

        doc = json.loads(p.read_text())
        return Suite.from_json(doc.get("definition", doc))
    raise ValueError(f"unknown suite {name_or_path!r}; known: {', '.join(SUITES)} "
                     "(or a suite .json file)")
