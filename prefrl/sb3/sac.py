"""SAC in the preference loop: a relabelling replay buffer and PEBBLE's pre-training.

:class:`RelabelReplayBuffer` is SB3's ``ReplayBuffer`` plus the true reward of every
transition (from ``info["true_reward"]``, put there by
:class:`~prefrl.sb3.reward_wrapper.LearnedRewardVecEnv`). Its ``rewards`` column holds the
learned reward the wrapper scored on the way in; :meth:`RelabelReplayBuffer.relabel` rewrites
that column for every stored transition with the live ensemble, in byte-capped chunks on the
ensemble's device. While ``intrinsic`` is set, sampled batches carry PEBBLE's state-entropy
reward (:class:`~prefrl.entropy.StateEntropy`) instead.

The wrapper sits below ``VecNormalize``, and SB3 stores the *original* observations in the
buffer, so the stored observations are exactly what the reward model was trained on. SB3
stores actions scaled to [-1, 1]; relabelling maps them back to the env's action bounds.

:class:`SACPreferenceCallback` drives it: state entropy for the first ``unsup_steps`` steps
(the clips recorded then fill the candidate pool), then the first feedback session, a
reward model trained for ``pretrain_epochs``, optionally a fresh critic (and actor), and a
relabel after every reward update that goes live.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from prefrl.entropy import StateEntropy
from prefrl.reward.ensemble import RewardEnsemble
from prefrl.rundir import load_npz, save_npz
from prefrl.sb3.callback import PreferenceCallback

REPLAY_FORMAT_VERSION = 1
_COLUMNS = ("observations", "next_observations", "actions", "rewards", "true_rewards",
            "dones", "timeouts")


class RelabelReplayBuffer(ReplayBuffer):
    """A replay buffer that keeps the true reward and can be relabelled in place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.optimize_memory_usage:
            raise ValueError("RelabelReplayBuffer does not support optimize_memory_usage")
        self.true_rewards = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self.intrinsic: StateEntropy | None = None
        """When set, sampled rewards are state entropy over the stored observations."""
        self.intrinsic_pool_rows = 100_000
        """The state-entropy pool: the most recent this many stored observations."""

    @property
    def n_filled(self) -> int:
        """Slots (per env) that hold a transition."""
        return self.buffer_size if self.full else self.pos

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray,
            reward: np.ndarray, done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Store a step; the true reward comes from ``info["true_reward"]``."""
        true = [float(info.get("true_reward", r))
                for info, r in zip(infos, np.ravel(reward), strict=True)]
        self.true_rewards[self.pos] = np.asarray(true, np.float32)
        super().add(obs, next_obs, action, reward, done, infos)

    def _get_samples(self, batch_inds: np.ndarray,
                     env: VecNormalize | None = None) -> ReplayBufferSamples:
        if self.intrinsic is None:
            return super()._get_samples(batch_inds, env)
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        raw_next = self.next_observations[batch_inds, env_indices]
        hi = self.n_filled
        lo = max(0, hi - max(1, self.intrinsic_pool_rows // self.n_envs))
        pool = self.observations[lo:hi].reshape(-1, *self.obs_shape)
        reward = self.intrinsic.reward(torch.as_tensor(raw_next), pool).reshape(-1, 1)
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(raw_next, env),
            (self.dones[batch_inds, env_indices]
             * (1 - self.timeouts[batch_inds, env_indices])).reshape(-1, 1),
        )
        out = tuple(map(self.to_torch, data))
        obs, acts, next_obs, dones = out
        return ReplayBufferSamples(obs, acts, next_obs, dones,
                                   reward.to(obs.device, torch.float32))

    # ------------------------------------------------------------------ relabelling
    def env_actions(self, scaled: np.ndarray) -> np.ndarray:
        """Stored (scaled to [-1, 1]) actions as the env and the reward model saw them."""
        if not isinstance(self.action_space, spaces.Box):
            return scaled
        low, high = self.action_space.low, self.action_space.high
        return (low + 0.5 * (scaled + 1.0) * (high - low)).astype(np.float32)

    def relabel(self, ensemble: RewardEnsemble, max_chunk_bytes: int = 64 << 20,
                pessimism: float = 0.0) -> dict[str, float]:
        """Rewrite ``rewards`` of every stored transition with ``ensemble``; return metrics.

        The reward is the wrapper's: the members' mean, less ``pessimism`` times their std.
        Only the filled slots change; observations, actions and true rewards are untouched.
        """
        t0 = time.perf_counter()
        n = self.n_filled * self.n_envs
        obs = self.observations[: self.n_filled].reshape(n, *self.obs_shape)
        acts = self.actions[: self.n_filled].reshape(n, self.action_dim)
        row_bytes = 4 * (int(np.prod(self.obs_shape)) + self.action_dim)
        rows = max(1, max_chunk_bytes // row_bytes)
        flat = self.rewards[: self.n_filled].reshape(n)  # a view: written in place
        for i in range(0, n, rows):
            mean, spread = ensemble.predict(obs[i : i + rows], self.env_actions(acts[i : i + rows]))
            flat[i : i + rows] = mean - pessimism * spread if pessimism else mean
        return {"sac/relabel_rows": float(n), "sac/relabel_s": time.perf_counter() - t0}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, np.ndarray]:
        """The filled part of every column, plus position (for ``np.savez``, no pickle)."""
        n = self.n_filled
        out = {c: getattr(self, c)[:n] for c in _COLUMNS}
        out.update(version=np.int64(REPLAY_FORMAT_VERSION), pos=np.int64(self.pos),
                   full=np.bool_(self.full), buffer_size=np.int64(self.buffer_size),
                   n_envs=np.int64(self.n_envs))
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; the buffer must have the same size and envs."""
        if int(state["version"]) > REPLAY_FORMAT_VERSION:
            raise ValueError("replay buffer checkpoint written by a newer prefrl")
        if (int(state["buffer_size"]), int(state["n_envs"])) != (self.buffer_size, self.n_envs):
            raise ValueError(
                f"replay buffer checkpoint holds {int(state['buffer_size'])} x "
                f"{int(state['n_envs'])} slots, this buffer {self.buffer_size} x {self.n_envs}")
        n = len(state["rewards"])
        for c in _COLUMNS:
            getattr(self, c)[:n] = state[c]
        self.pos, self.full = int(state["pos"]), bool(state["full"])

    def save(self, path: Path) -> int:
        """Write :meth:`state_dict` to ``path`` (npz); return the file's size in bytes."""
        save_npz(path, dict(self.state_dict()))
        return Path(path).stat().st_size

    def load(self, path: Path) -> None:
        """Restore from a file written by :meth:`save`."""
        self.load_state_dict(load_npz(path))


def _reinitialise(net: torch.nn.Module) -> None:
    """Draw fresh initial weights for every layer inside ``net`` (torch's own init)."""
    for m in net.modules():
        reset = getattr(m, "reset_parameters", None)
        if m is not net and callable(reset):
            reset()


def _fresh_optimiser(opt: torch.optim.Optimizer, params: Any) -> torch.optim.Optimizer:
    """An optimiser of ``opt``'s type and settings over ``params``, with no state."""
    return type(opt)(params, **opt.defaults)


def reset_critic(model: Any) -> None:
    """Re-initialise SAC's critic (and its target and optimiser), as PEBBLE does."""
    critic = model.critic
    _reinitialise(critic)
    model.critic_target.load_state_dict(critic.state_dict())
    params = [p for n, p in critic.named_parameters() if "features_extractor" not in n]
    critic.optimizer = _fresh_optimiser(critic.optimizer, params)


def reset_actor(model: Any) -> None:
    """Re-initialise SAC's actor, its optimiser and a learned entropy coefficient.

    The coefficient goes back to SB3's initial value (1, or x for ``ent_coef="auto_x"``); a
    fixed coefficient is left as it is.
    """
    actor = model.actor
    _reinitialise(actor)
    actor.optimizer = _fresh_optimiser(actor.optimizer, actor.parameters())
    if getattr(model, "ent_coef_optimizer", None) is not None:
        spec = str(model.ent_coef)
        init = float(spec.split("_")[1]) if "_" in spec else 1.0
        with torch.no_grad():
            model.log_ent_coef.fill_(math.log(init))
        model.ent_coef_optimizer = _fresh_optimiser(model.ent_coef_optimizer,
                                                    [model.log_ent_coef])


class SACPreferenceCallback(PreferenceCallback):
    """:class:`PreferenceCallback` plus PEBBLE pre-training and replay relabelling."""

    def __init__(self, *, unsup_steps: int = 0, pretrain_epochs: int = 100,
                 reset_critic: bool = True, reset_actor: bool = False, entropy_k: int = 5,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unsup_steps, self.pretrain_epochs = unsup_steps, pretrain_epochs
        self.reset_critic, self.reset_actor = reset_critic, reset_actor
        self.entropy = StateEntropy(entropy_k)
        if "entropy" in self.state:
            self.entropy.load_state_dict(self.state["entropy"])
        self.state.setdefault("relabel_s", 0.0)
        self._relabelled_for = 0  # learner.n_updates at the last relabel

    @property
    def replay(self) -> RelabelReplayBuffer:
        """The model's replay buffer."""
        buf = self.model.replay_buffer  # type: ignore[attr-defined]
        if not isinstance(buf, RelabelReplayBuffer):
            raise TypeError("SAC in the preference loop needs a RelabelReplayBuffer")
        return buf

    @property
    def pretraining(self) -> bool:
        """Whether SAC is still on the state-entropy reward."""
        return self.replay.intrinsic is not None

    def _on_training_start(self) -> None:
        super()._on_training_start()
        if self.learner is None:
            return
        if self.learner.n_updates == 0 and self.unsup_steps > 0:
            self.replay.intrinsic = self.entropy
        elif self.learner.n_updates > 0:  # resumed: make the stored rewards the live model's
            self._relabel()

    def _on_rollout_end(self) -> None:
        learner, t = self.learner, self.num_timesteps
        if (learner is not None and learner.n_updates == 0 and 0 < self.unsup_steps <= t
                and not learner.updating):
            self._first_session(t)
        super()._on_rollout_end()
        if learner is not None and learner.n_updates != self._relabelled_for:
            if self.pretraining:
                self.replay.intrinsic = None
                if self.reset_critic:
                    reset_critic(self.model)
                if self.reset_actor:
                    reset_actor(self.model)
                self.logger.record("sac/switched_at", t)
                self.state["switched_at"] = t
            self._relabel()

    def _first_session(self, t: int) -> None:
        """The first labels after pre-training, and a reward model trained on them at length."""
        assert self.learner is not None
        self.learner.ask(t)
        if self.learner.store.n_labels() < 2:
            return  # e.g. people have not answered yet: stay on state entropy
        t0 = time.perf_counter()
        metrics = self.learner.update(self.pretrain_epochs)
        self.state["reward_train_s"] += time.perf_counter() - t0
        self.state["last_update"] = t
        self.last_reward_metrics = metrics
        for k, v in metrics.items():
            self.logger.record(k, v)

    def _relabel(self) -> None:
        assert self.learner is not None
        m = self.replay.relabel(self.learner.ensemble,
                                max_chunk_bytes=self.learner.ensemble.max_batch_bytes,
                                pessimism=self.reward_env.pessimism)
        self.state["relabel_s"] += m["sac/relabel_s"]
        for k, v in m.items():
            self.logger.record(k, v)
        self._relabelled_for = self.learner.n_updates

    def checkpoint(self) -> None:
        """Save everything, the state-entropy statistics included."""
        self.state["entropy"] = self.entropy.state_dict()
        super().checkpoint()


def sac_checks(venv: Any) -> None:
    """Refuse what SAC cannot run (one-line ``ValueError``)."""
    if not isinstance(venv.action_space, spaces.Box):
        raise ValueError(f"--algo sac needs continuous actions; this env has "
                         f"{type(venv.action_space).__name__} actions")
