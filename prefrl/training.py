"""Wire the whole loop together: ``prefrl.train(config) -> RunResult``.

>>> from prefrl import TrainConfig, train                                 # doctest: +SKIP
>>> result = train(TrainConfig(env="Pendulum", labels=200, steps=60_000))  # doctest: +SKIP
>>> result.true_return, result.reward_val_acc, result.run_dir             # doctest: +SKIP

A run directory (see :mod:`prefrl.rundir`) holds everything; ``resume(run_dir)`` continues a
run that was stopped or killed: the label store is the truth for labels and asked pairs, the
latest checkpoint for the policy, reward model, optimisers, RNG states and counters.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from prefrl.config import ResolvedConfig, TrainConfig, resolve_run
from prefrl.envs import make_env
from prefrl.guard import FrozenWatch, GuardConfig, HackGuard
from prefrl.human import finish_run, start_human_run, waiter
from prefrl.learner import LearnerConfig, PreferenceLearner
from prefrl.memory import tame_allocator
from prefrl.provenance import provenance
from prefrl.query import SessionSchedule
from prefrl.reward.model import RewardModel
from prefrl.reward.trainer import TrainerConfig
from prefrl.rollouts import collect_clips
from prefrl.run_setup import (
    algo_class,
    image_observations,
    make_vec_env,
    mmap_threshold_for,
    reward_observation_fn,
    torch_threads_for,
)
from prefrl.rundir import MetricsLog, RunDir, load_npz, save_npz
from prefrl.sb3.callback import PreferenceCallback
from prefrl.sb3.reward_wrapper import LearnedRewardVecEnv
from prefrl.sb3.sac import RelabelReplayBuffer, SACPreferenceCallback, sac_checks
from prefrl.segments import SegmentBuffer


@dataclass
class RunResult:
    """Summary of a finished run (also written to ``<run>/result.json``)."""

    run_dir: str
    env_id: str
    reward: str
    algo: str
    seed: int
    steps: int
    labels: int
    true_return: float
    """Mean true return of the last 10 training episodes."""
    learned_return: float | None
    reward_val_acc: float | None
    corr_spearman: float | None
    corr_pearson: float | None
    wall_s: float
    reward_train_s: float
    reward_infer_s: float
    alarms: list[dict[str, Any]] = field(default_factory=list)
    """Reward-hacking alarms that tripped: ``{step, kind, value, threshold}`` (prefrl.guard)."""
    cpu_s: float = 0.0
    """CPU seconds of the run, every thread, over the same span as ``wall_s`` (resumed
    segments included); on a busy machine much steadier than ``wall_s``."""
    timers: dict[str, float] = dataclasses.field(default_factory=dict)
    """Seconds per part of the preference side (``PreferenceLearner.timers``, ``record_s``)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return dataclasses.asdict(self)


class _Run:
    """One run's objects; built fresh or from a checkpoint."""

    def __init__(self, rc: ResolvedConfig, command: str | None) -> None:
        self.rc, self.cfg = rc, rc.train
        self.rd = RunDir(rc.run_dir)
        self.command = command
        self.wait_for_labels: Any = None  # a human oracle: called before pre-training

    def build(self, resuming: bool) -> None:
        rc, cfg = self.rc, self.cfg
        set_random_seed(cfg.seed)
        venv = make_vec_env(rc, cfg.seed)
        tame_allocator(mmap_threshold_for(venv.observation_space))  # flat RSS (prefrl.memory)
        threads = torch_threads_for(cfg.torch_threads, venv.observation_space)
        if threads:
            torch.set_num_threads(threads)
        self.learner: PreferenceLearner | None = None
        buffer: SegmentBuffer | None = None
        start_model = self._reward_model(venv)
        start = None if start_model is None else start_model.ensemble
        frozen = start if cfg.reward_model_frozen else None
        self.frozen_watch: FrozenWatch | None = None
        if frozen is not None and start_model is not None and start_model.reference is not None:
            # the agent's clips for the guard, measured against the model's reference clips
            self.frozen_watch = FrozenWatch.for_model(
                frozen, start_model.reference, rc.preset.clip_len,
                synthetic=cfg.oracle != "human", max_bytes=cfg.pool_mb << 20, seed=cfg.seed + 3)
            buffer = self.frozen_watch.buffer
        if cfg.reward == "learned" and frozen is None:
            lc = LearnerConfig(
                labels=rc.labels, total_steps=rc.steps, pretrain_frac=rc.pretrain_frac,
                selector=cfg.selector, oversample=rc.oversample,
                ensemble_size=rc.ensemble_size, net_kwargs=dict(rc.preset.reward_model),
                pretrain_epochs=rc.pretrain_epochs, update_epochs=rc.update_epochs,
                pool_capacity=rc.pool_clips, pool_max_bytes=cfg.pool_mb << 20,
                background=bool(rc.background_reward),
                norm_source=rc.reward_norm,
                trainer=TrainerConfig.for_run(rc.reward_schedule, rc.reward_l2,
                                              rc.reward_val_frac),
            )
            self.learner = PreferenceLearner.create(
                venv.observation_space, venv.action_space, lc, self.rd.store_path,
                oracle=None if cfg.oracle == "human" else cfg.oracle,
                clip_len=rc.preset.clip_len, seed=cfg.seed,
                device=None if cfg.device == "auto" else cfg.device, ensemble=start,
            )
            buffer = self.learner.buffer
            if rc.algo == "sac":  # feedback sessions at a fixed interval (PEBBLE)
                self.learner.schedule = SessionSchedule(
                    rc.labels, rc.steps, rc.pretrain_frac, every=rc.feedback_every,
                    start=rc.unsup_steps)
        self.reward_env = LearnedRewardVecEnv(
            venv, frozen if self.learner is None else self.learner.ensemble, buffer,
            env_id=rc.env_id, mode=cfg.reward, source_run=rc.run_dir.name,
            obs_transform=reward_observation_fn(rc.preset), pessimism=cfg.reward_pessimism,
            renormalise_every=rc.update_every if frozen is not None else 0,
            deferred=self.learner is not None and rc.algo != "sac",  # on-policy: batch scoring
        )
        env: VecEnv = self.reward_env
        kwargs = rc.preset.algo_kwargs_for(rc.algo)
        if rc.algo == "sac":
            sac_checks(venv)
            kwargs["replay_buffer_class"] = RelabelReplayBuffer
        if rc.preset.normalize_obs_for(rc.algo):
            env = VecNormalize(env, norm_obs=True, norm_reward=True,
                               gamma=kwargs.get("gamma", 0.99))
        self.env = env
        cls = algo_class(rc.algo)
        ckpt = self.rd.latest_checkpoint() if resuming else None
        tb = str(self.rd.tb_path) if cfg.tensorboard else None
        self.state: dict[str, Any] = {}
        if ckpt is None:
            policy = "CnnPolicy" if image_observations(env.observation_space) else "MlpPolicy"
            self.model = cls(policy, env, seed=cfg.seed, device="cpu", verbose=0,
                             tensorboard_log=tb, **kwargs)
        else:
            self._load(ckpt, cls, tb)

    def _reward_model(self, venv: VecEnv) -> RewardModel | None:
        """The model of ``--reward-model`` (checked against the run's env), or None."""
        if self.cfg.reward_model is None:
            return None
        from prefrl.reward.model import load_reward

        model = load_reward(self.cfg.reward_model,
                            device=None if self.cfg.device == "auto" else self.cfg.device)
        model.check(self.rc.env_id, venv.observation_space, venv.action_space)
        return model

    def _load(self, ckpt: Path, cls: type[BaseAlgorithm], tb: str | None) -> None:
        self.state = json.loads((ckpt / "state.json").read_text())
        extra: dict[str, Any] = (
            {"replay_buffer_class": RelabelReplayBuffer} if self.rc.algo == "sac" else {})
        self.model = cls.load(ckpt / "policy.zip", env=self.env, device="cpu",
                              tensorboard_log=tb, **extra)
        if (ckpt / "replay.npz").exists():
            self.model.replay_buffer.load(ckpt / "replay.npz")  # type: ignore[attr-defined]
        if isinstance(self.env, VecNormalize) and (ckpt / "vecnorm.npz").exists():
            v = load_npz(ckpt / "vecnorm.npz")
            obs_rms: Any = self.env.obs_rms
            obs_rms.mean, obs_rms.var, obs_rms.count = (
                v["obs_mean"], v["obs_var"], float(v["obs_count"]))
            self.env.ret_rms.mean, self.env.ret_rms.var = v["ret_mean"], v["ret_var"]
            self.env.ret_rms.count = float(v["ret_count"])
        if self.learner is not None:
            self.learner.load_state_dict(torch.load(ckpt / "learner.pt", weights_only=True))
            self.learner.buffer.load_state_dict(load_npz(ckpt / "buffer.npz"))
        self.reward_env.resume_at(int(self.state.get("num_timesteps", 0)))
        self.reward_env.reward_seconds = float(self.state.get("reward_infer_s", 0.0))
        self.reward_env.record_seconds = float(self.state.get("record_s", 0.0))

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        tmp = self.rd.begin_checkpoint()
        self.model.save(tmp / "policy.zip")
        if isinstance(self.env, VecNormalize):
            e: Any = self.env
            save_npz(tmp / "vecnorm.npz", {
                "obs_mean": e.obs_rms.mean, "obs_var": e.obs_rms.var, "obs_count": e.obs_rms.count,
                "ret_mean": e.ret_rms.mean, "ret_var": e.ret_rms.var, "ret_count": e.ret_rms.count,
            })
        if self.learner is not None:
            torch.save(self.learner.state_dict(), tmp / "learner.pt")
            save_npz(tmp / "buffer.npz", self.learner.buffer.state_dict())
        replay = getattr(self.model, "replay_buffer", None)
        if isinstance(replay, RelabelReplayBuffer):  # the filled part, npz: size in state.json
            state = dict(state, replay_bytes=replay.save(tmp / "replay.npz"))
            if getattr(self.model, "_logger", None) is not None:
                self.model.logger.record("sac/replay_bytes", state["replay_bytes"])
        state = dict(state, num_timesteps=int(self.model.num_timesteps),
                     reward_infer_s=self.reward_env.reward_seconds,
                     record_s=self.reward_env.record_seconds, time=time.time())
        (tmp / "state.json").write_text(json.dumps(state))
        self.rd.commit_checkpoint(tmp)

    def pretrain(self) -> None:
        """Labels on random-policy clips before RL starts (skipped when already done)."""
        if (self.learner is None or self.rc.pretrain_frac <= 0 or self.state
                or self.rc.unsup_steps > 0):  # SAC's PEBBLE pre-training fills the pool
            return
        t0 = time.perf_counter()
        env = make_env(self.rc.preset, seed=self.cfg.seed + 10_000)
        per_ep = max(4, self.rc.preset.horizon // self.rc.preset.clip_len // 2)
        clips = collect_clips(env, self.rc.pretrain_clips, self.rc.preset.clip_len,
                              np.random.default_rng(self.cfg.seed + 10_000),
                              clips_per_episode=per_ep, source_run=f"{self.rc.run_dir.name}:random",
                              obs_transform=reward_observation_fn(self.rc.preset),
                              episode_steps=2000)
        env.close()
        self.learner.timers["pretrain_collect_s"] += time.perf_counter() - t0
        self.pretrain_metrics = self.learner.pretrain(clips, wait=self.wait_for_labels)

    def run(self) -> RunResult:
        rc = self.rc
        metrics = MetricsLog(self.rd.metrics_path)
        start_step = int(self.state.get("num_timesteps", 0))
        metrics.truncate_after(start_step)  # rows after the checkpoint (or all, if none) go
        if self.cfg.progress:
            what = ("true reward" if self.cfg.reward == "true"
                    else f"{rc.labels} labels from the '{self.cfg.oracle}' teacher")
            print(f"prefrl: {rc.algo.upper()} on {rc.env_id}, {rc.steps} steps, {what}; "
                  f"run directory {self.rd.path}"
                  + (f" (resuming at step {start_step})" if start_step else ""), flush=True)
        t0, cpu0 = time.perf_counter(), time.process_time()
        self.pretrain()
        if not self.state:
            self.state = {"wall_s": time.perf_counter() - t0,
                          "cpu_s": time.process_time() - cpu0}
        sac: dict[str, Any] = {}
        if rc.algo == "sac":
            sac = dict(unsup_steps=rc.unsup_steps, pretrain_epochs=rc.pretrain_epochs,
                       reset_critic=self.cfg.reset_critic, reset_actor=self.cfg.reset_actor)
        self.callback = (SACPreferenceCallback if sac else PreferenceCallback)(
            **sac, learner=self.learner, reward_env=self.reward_env, metrics=metrics,
            total_steps=rc.steps, update_every=rc.update_every, log_every=rc.log_every,
            checkpoint_every=rc.checkpoint_every, save_checkpoint=self.save_checkpoint,
            state=self.state, progress=self.cfg.progress,
            guard=self._guard(),
        )
        if self.learner is not None and self.learner.n_updates:
            self.callback.last_reward_metrics = dict(getattr(self, "pretrain_metrics", {}))
        remaining = rc.steps - start_step
        if remaining > 0:
            self.model.learn(total_timesteps=remaining, callback=self.callback,
                             reset_num_timesteps=start_step == 0, tb_log_name="sb3",
                             progress_bar=False)
        self.callback.checkpoint()
        return self.result()

    def _guard(self) -> HackGuard | None:
        """The reward-hacking guard: on the learner, or on a frozen model with reference clips."""
        config = GuardConfig(on_hack=self.cfg.on_hack)
        if self.learner is not None:
            return HackGuard(self.learner, config)
        if self.frozen_watch is not None:
            return HackGuard(None, config, frozen=self.frozen_watch)
        return None

    def result(self) -> RunResult:
        cb, m = self.callback, self.callback.last_reward_metrics
        true = cb.all_true_returns[-10:]
        learned = list(self.reward_env.learned_returns)[-10:]
        res = RunResult(
            run_dir=str(self.rd.path), env_id=self.rc.env_id, reward=self.cfg.reward,
            algo=self.rc.algo, seed=self.cfg.seed, steps=int(self.model.num_timesteps),
            labels=0 if self.learner is None else self.learner.store.n_labels(),
            true_return=float(np.mean(true)) if true else float("nan"),
            learned_return=(float(np.mean(learned))
                            if learned and self.reward_env.mode == "learned" else None),
            reward_val_acc=m.get("reward/val_acc"), corr_spearman=m.get("reward/corr_spearman"),
            corr_pearson=m.get("reward/corr_pearson"), wall_s=cb.wall_s(),
            reward_train_s=float(self.state.get("reward_train_s", 0.0)),
            reward_infer_s=self.reward_env.reward_seconds,
            alarms=[] if cb.guard is None else list(cb.guard.alarms),
            cpu_s=cb.cpu_s(),
            timers={"record_s": self.reward_env.record_seconds,
                    "guard_s": float(self.state.get("guard_s", 0.0)),
                    "checkpoint_s": float(self.state.get("checkpoint_s", 0.0)),
                    **({} if self.learner is None else self.learner.timers)},
        )
        self.rd.write_json(self.rd.result_path,
                           {**res.as_dict(), "provenance": provenance(self.command)})
        return res

    def close(self) -> None:
        if getattr(self, "env", None) is not None:
            self.env.close()
        if getattr(self, "learner", None) is not None:
            self.learner.close()  # type: ignore[union-attr]
            self.learner.store.close()  # type: ignore[union-attr]
        self.rd.unlock()


def start_gui(rc: ResolvedConfig) -> subprocess.Popen[bytes]:
    """The labelling GUI for a human-oracle run, as its own process (prints the URL)."""
    import sys

    cmd = [sys.executable, "-m", "prefrl.cli", "gui", "--run", str(rc.run_dir),
           "--host", rc.train.gui_host, "--port", str(rc.train.gui_port)]
    print("prefrl: starting the labelling GUI; questions queue up while training goes on",
          flush=True)
    return subprocess.Popen(cmd, start_new_session=True)


def _execute(rc: ResolvedConfig, resuming: bool, command: str | None) -> RunResult:
    run = _Run(rc, command)
    if not resuming:
        run.rd.create()
    run.rd.lock()
    gui, human, end = None, False, "stopped"
    try:
        if not resuming:
            run.rd.write_json(run.rd.config_path,
                              {**rc.to_json(), "provenance": provenance(command)})
        run.build(resuming)
        human = rc.train.oracle == "human" and run.learner is not None
        if human:
            store = run.learner.store  # type: ignore[union-attr]
            start_human_run(store, rc.train.question)
            gui = start_gui(rc)
            if rc.train.wait:
                run.wait_for_labels = waiter(store, rc.train.gui_host, rc.train.gui_port, gui)
        result = run.run()
        end = "finished"
        return result
    finally:
        if human:
            finish_run(run.learner.store, end, gui)  # type: ignore[union-attr]
        if gui is not None:
            gui.terminate()
            gui.wait(10)
        run.close()


def train(config: TrainConfig, command: str | None = None) -> RunResult:
    """Run a new training run to the end and return its summary."""
    return _execute(config.resolve(), resuming=False, command=command)


def resume(run_dir: str | Path, command: str | None = None) -> RunResult:
    """Continue a stopped or killed run from its latest checkpoint (or from its start)."""
    rc = resolve_run(Path(run_dir), run_dir=Path(run_dir))  # with the preset it ran with
    return _execute(rc, resuming=True, command=command)
