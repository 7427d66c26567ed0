"""Torch CPU threads: one by default for vector observations; --torch-threads overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prefrl.config import ConfigError, TrainConfig
from prefrl.training import _Run


@pytest.mark.parametrize(("requested", "expected"), [(None, 1), (0, 3), (2, 2)])
def test_a_run_sets_torch_threads(tmp_path: Path, requested: int | None, expected: int) -> None:
    before = torch.get_num_threads()
    cfg = TrainConfig(env="Pendulum", reward="true", steps=200, n_envs=1, progress=False,
                      tensorboard=False, torch_threads=requested, run_dir=tmp_path / "run")
    run = _Run(cfg.resolve(), None)
    try:
        torch.set_num_threads(3)  # 0 keeps what the process had
        run.build(resuming=False)
        assert torch.get_num_threads() == expected
    finally:
        run.close()
        torch.set_num_threads(before)


def test_negative_thread_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--torch-threads must be >= 0"):
        TrainConfig(torch_threads=-1).resolve()
