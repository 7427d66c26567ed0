"""The SB3 callback that runs the preference side of the loop between rollouts.

After every rollout it asks the labels the schedule says are due, retrains the reward model
every ``update_every`` environment steps when new labels have arrived (from the synthetic
teacher or from people in the GUI), writes a metrics row every ``log_every`` steps and a
checkpoint every ``checkpoint_every`` steps. Reward training runs between rollouts (inline), or
in a background thread on a copy of the model (``background`` learners): then RL goes on and
the new model goes live at the first rollout end after it is done. Either way every rollout is
scored by one fixed reward model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from prefrl.guard import HackGuard
from prefrl.learner import PreferenceLearner
from prefrl.memory import release_free_memory, rss_mb
from prefrl.rundir import MetricsLog
from prefrl.sb3.deferred import DeferredRewards
from prefrl.sb3.reward_wrapper import LearnedRewardVecEnv

_log = logging.getLogger(__name__)


class PreferenceCallback(BaseCallback):
    """Ask, retrain, log and checkpoint on a step schedule (see module docstring)."""

    def __init__(
        self,
        *,
        learner: PreferenceLearner | None,
        reward_env: LearnedRewardVecEnv,
        metrics: MetricsLog,
        total_steps: int,
        update_every: int,
        log_every: int,
        checkpoint_every: int,
        save_checkpoint: Callable[[dict[str, Any]], None],
        state: dict[str, Any],
        progress: bool = False,
        guard: HackGuard | None = None,
    ) -> None:
        super().__init__()
        self.learner, self.reward_env, self.metrics = learner, reward_env, metrics
        self.total_steps = total_steps
        self.update_every, self.log_every, self.checkpoint_every = (
            update_every, log_every, checkpoint_every)
        self.save_checkpoint = save_checkpoint
        self.state = state  # counters that survive a resume (saved with every checkpoint)
        self.state.setdefault("last_update", 0)
        self.state.setdefault("last_log", 0)
        self.state.setdefault("last_checkpoint", 0)
        self.state.setdefault("wall_s", 0.0)
        self.state.setdefault("cpu_s", 0.0)
        self.state.setdefault("reward_train_s", 0.0)
        self.progress = progress
        self.guard = guard  # reward-hacking readings, alarms and response (prefrl.guard)
        # on-policy runs score each rollout in one batch at its end (prefrl.sb3.deferred)
        self.deferred = (DeferredRewards(reward_env) if getattr(reward_env, "deferred", False)
                         else None)
        if guard is not None:
            guard.load_state_dict(self.state.get("guard"))
        self._update_now = False  # the guard asked labels: retrain at the next rollout end
        self._guard_row: dict[str, Any] = {}
        self._true: list[float] = []
        self._learned: list[float] = []
        self._game: list[float] = []
        self._falls: list[int] = []
        self._unhealthy: list[float] = []
        self.all_true_returns: list[float] = []
        self.last_reward_metrics: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._wall0 = float(self.state["wall_s"])
        self._cpu_t0 = time.process_time()
        self._cpu0 = float(self.state["cpu_s"])
        self._pbar: Any = None
        self._steps_at_log = 0
        self._time_at_log = time.perf_counter()

    # ------------------------------------------------------------------ helpers
    def wall_s(self) -> float:
        """Wall time of the run so far, resumed segments included."""
        return self._wall0 + time.perf_counter() - self._t0

    def cpu_s(self) -> float:
        """CPU seconds of the run so far (every thread), resumed segments included.

        Load moves it much less than :meth:`wall_s` (other processes sharing the cores), so
        learned / true ratios of runs made under different loads are more comparable.
        """
        return self._cpu0 + time.process_time() - self._cpu_t0

    def _labels(self) -> int:
        return 0 if self.learner is None else self.learner.store.n_labels()

    def _set_progress(self) -> None:
        if self._pbar is None:
            return
        self._pbar.n = min(self.num_timesteps, self.total_steps)
        post: dict[str, Any] = {"labels": self._labels()}
        if self.all_true_returns:
            post["true"] = f"{np.mean(self.all_true_returns[-10:]):.1f}"
        if self.reward_env.learned_returns and self.learner is not None:
            post["learned"] = f"{np.mean(list(self.reward_env.learned_returns)[-10:]):.1f}"
        if self._guard_row.get("hack_ood") is not None:
            post["ood"] = f"{self._guard_row['hack_ood']:.2f}"
        if self._guard_row.get("hack_alarm"):
            post["HACK?"] = self._guard_row["hack_alarm"]
        self._pbar.set_postfix(post, refresh=False)
        self._pbar.refresh()

    # ------------------------------------------------------------------ SB3 hooks
    def _on_training_start(self) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            self._pbar = tqdm(total=self.total_steps, initial=self.num_timesteps,
                              unit="step", dynamic_ncols=True, mininterval=0.5)
        self._steps_at_log = self.num_timesteps

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            inner = info.get("inner_episode")
            if inner is not None and inner.get("ended", True):  # whole games only
                self._game.append(float(inner["r"]))
            ep = info.get("episode")
            if ep is not None:
                if "n_falls" in info:  # FixedHorizon's counts for the episode just finished
                    self._falls.append(int(info["n_falls"]))
                    self._unhealthy.append(int(info["n_unhealthy_steps"]) / max(ep["l"], 1))
                self._true.append(float(ep["r"]))
                self.all_true_returns.append(float(ep["r"]))
                if "episode_learned_return" in info:
                    self._learned.append(float(info["episode_learned_return"]))
        if self._pbar is not None and self.n_calls % 256 == 0:
            self._set_progress()
        return True

    def _on_rollout_start(self) -> None:
        if self.deferred is not None:
            self.deferred.rollout_start(self.training_env)

    def _on_rollout_end(self) -> None:
        if self.deferred is not None:  # first: scored by the model that was live all rollout
            self._learned += self.deferred.rollout_end(self.model, self.training_env,
                                                       self.locals)
        t = self.num_timesteps
        s = self.state
        final = t >= self.total_steps
        if self.learner is not None:
            self._take_update(wait=False)  # a background update that finished goes live now
            self.learner.ask(t)
            due = t - s["last_update"] >= self.update_every or final or self._update_now
            if due and not self.learner.updating and self._labels() != self.learner.trained_on:
                t0 = time.perf_counter()
                self.learner.start_update()  # inline: trains here; background: starts a thread
                s["reward_train_s"] += time.perf_counter() - t0
                s["last_update"] = t
                self._update_now = False
                self._take_update(wait=final)
        if t - s["last_log"] >= self.log_every or final:
            self.log_row()
        if t - s["last_checkpoint"] >= self.checkpoint_every and not final:
            self.checkpoint()
        self._set_progress()

    def _take_update(self, wait: bool) -> None:
        """Make a finished reward update live and record its metrics (``wait``: block for it).

        ``reward_train_s`` counts the time RL waited for reward training.
        """
        assert self.learner is not None
        t0 = time.perf_counter()
        metrics = self.learner.finish_update(wait)
        self.state["reward_train_s"] += time.perf_counter() - t0
        if metrics is None:
            return
        release_free_memory()  # the update's temporaries go back to the OS
        self.last_reward_metrics = metrics
        for k, v in metrics.items():
            self.logger.record(k, v)

    def _on_training_end(self) -> None:
        if self.learner is not None:
            self._take_update(wait=True)
        if self._pbar is not None:
            self._set_progress()
            self._pbar.close()

    # ------------------------------------------------------------------ outputs
    def log_row(self) -> dict[str, Any]:
        """Write one metrics row (episodes finished since the last row)."""
        t = self.num_timesteps
        now = time.perf_counter()
        fps = (t - self._steps_at_log) / max(now - self._time_at_log, 1e-9)
        m = self.last_reward_metrics
        row = {
            "step": t, "wall_s": self.wall_s(),
            "true_return": float(np.mean(self._true)) if self._true else None,
            "learned_return": float(np.mean(self._learned)) if self._learned else None,
            "game_score": float(np.mean(self._game)) if self._game else None,
            "episodes": len(self._true), "labels": self._labels(),
            "falls": float(np.mean(self._falls)) if self._falls else None,
            "unhealthy_frac": float(np.mean(self._unhealthy)) if self._unhealthy else None,
            "queries": 0 if self.learner is None else self.learner.store.n_queries(),
            "reward_val_acc": m.get("reward/val_acc"),
            "reward_train_acc": m.get("reward/train_acc"),
            "reward_val_loss": m.get("reward/val_loss"), "reward_l2": m.get("reward/l2"),
            "corr_pearson": m.get("reward/corr_pearson"),
            "corr_spearman": m.get("reward/corr_spearman"),
            "fps": fps, "reward_infer_s": self.reward_env.reward_seconds,
            "reward_train_s": self.state["reward_train_s"], "rss_mb": rss_mb(),
            "reward_data_mb": m.get("reward/data_mb"),
            "pool_mb": None if self.learner is None else self.learner.buffer.nbytes / 2**20,
            "record_s": self.reward_env.record_seconds,
            "reward_epochs": m.get("reward/epochs"),
            **({} if self.learner is None else dict(self.learner.timers)),
        }
        row.update(self._watch(t))
        self.metrics.append(row)
        if row["true_return"] is not None:
            self.logger.record("rollout/true_ep_return", row["true_return"])
        if row["learned_return"] is not None:
            self.logger.record("rollout/learned_ep_return", row["learned_return"])
        self.logger.record("prefrl/labels", row["labels"])
        if row["falls"] is not None:
            self.logger.record("rollout/falls_per_ep", row["falls"])
            self.logger.record("rollout/unhealthy_frac", row["unhealthy_frac"])
        self._true, self._learned, self._game = [], [], []
        self._falls, self._unhealthy = [], []
        self._steps_at_log, self._time_at_log = t, now
        self.state["last_log"] = t
        return row

    def _watch(self, t: int) -> dict[str, Any]:
        """The guard's readings for a metrics row; warn and respond when an alarm trips."""
        if self.guard is None:
            return {}
        t0 = time.perf_counter()
        try:
            return self._observe_and_respond(t)
        finally:
            self.state["guard_s"] = self.state.get("guard_s", 0.0) + time.perf_counter() - t0

    def _observe_and_respond(self, t: int) -> dict[str, Any]:
        assert self.guard is not None
        row, tripped = self.guard.observe(t)
        self._guard_row = row
        for k, v in row.items():
            if v is not None and k != "hack_alarm":
                self.logger.record(f"hack/{k.removeprefix('hack_')}", v)
        asked = self.guard.respond(t, tripped)
        if asked:
            self._update_now = True
        if tripped:
            what = ", ".join(f"{a['kind']} {a['value']:.3g} (threshold {a['threshold']:g})"
                             for a in tripped)
            done = (f"asked {asked} labels about the agent's newest clips" if asked
                    else "frozen reward model: no labels to ask" if self.guard.learner is None
                    else "no labels left to ask" if self.guard.config.on_hack == "ask"
                    else "on_hack=none")
            self._warn(f"prefrl: WARNING reward hacking? step {t}: {what}; {done}")
        return row

    def _warn(self, msg: str) -> None:
        if self._pbar is not None:
            self._pbar.write(msg)
        else:
            _log.warning(msg)

    def checkpoint(self) -> None:
        """Save everything needed to resume from this step."""
        if self.guard is not None:
            self.state["guard"] = self.guard.state_dict()
        t0 = time.perf_counter()
        self.state["last_checkpoint"] = self.num_timesteps
        self.state["wall_s"] = self.wall_s()
        self.state["cpu_s"] = self.cpu_s()
        self.save_checkpoint(self.state)
        self.state["checkpoint_s"] = self.state.get("checkpoint_s", 0.0) + (
            time.perf_counter() - t0)
