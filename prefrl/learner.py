"""The preference-learning core, independent of any RL library.

:class:`PreferenceLearner` owns one round of the loop: choose pairs from the candidate pool
where the ensemble is unsure (per the label schedule), put them to the oracle, store the
answers, and retrain the reward ensemble on everything in the label store. With a human oracle
(``oracle=None``) questions are only queued in the store; answers arrive there from the GUI
and are picked up at the next :meth:`PreferenceLearner.update`.

>>> import gymnasium as gym, numpy as np, tempfile
>>> from prefrl.rollouts import collect_clips
>>> rng = np.random.default_rng(0)
>>> env = gym.make("Pendulum-v1")
>>> with tempfile.TemporaryDirectory() as d:
...     learner = PreferenceLearner.create(env.observation_space, env.action_space,
...         LearnerConfig(labels=20, total_steps=1000), f"{d}/labels.sqlite", oracle="perfect",
...         clip_len=10, seed=0)
...     for c in collect_clips(env, 40, 10, rng):
...         _ = learner.buffer.add_clip(c)
...     asked = learner.ask(env_step=0)
...     metrics = learner.update(epochs=2)
...     learner.store.close()
>>> asked, metrics["labels"]
(5, 5.0)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.oracles import SyntheticOracle
from prefrl.query import LabelSchedule, PairSource, QuerySelector, clip_returns, make_selector
from prefrl.reward import RewardEnsemble, RewardTrainer, TrainerConfig, return_correlation
from prefrl.reward.dataset import LabelledPairs
from prefrl.reward.trainer import TrainingCancelled, TrainStats
from prefrl.segments import SegmentBuffer
from prefrl.store import LabelStore
from prefrl.types import Clip

_Result = tuple[dict[str, float], TrainStats | None, int]  # metrics, stats, labels trained on

TIMERS = ("query_score_s", "query_store_s", "label_sync_s", "reward_fit_s", "reward_norm_s",
          "reward_agreement_s", "pretrain_collect_s", "pretrain_s")
"""Timed parts: choosing pairs (pool sampling, scoring); storing queries and the teacher's
answers; syncing the labelled pairs from the store; trainer.train; output normalisation on
pool clips; learned/true agreement; collecting random-policy clips; the whole pre-training."""


@dataclass
class LearnerConfig:
    """Settings of the preference-learning side of a run."""

    labels: int
    total_steps: int
    pretrain_frac: float = 0.25
    schedule_tau: float = 2e6
    selector: str = "disagreement"
    oversample: int = 10
    ensemble_size: int = 3
    net_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrain_epochs: int = 100
    update_epochs: int = 10
    pool_capacity: int = 3000
    pool_max_bytes: int = 1 << 30
    norm_clips: int = 500
    norm_max_bytes: int = 64 << 20
    """At most this many bytes of pool observations normalise the reward after an update."""
    norm_source: str = "recent"
    """What the reward's output is standardised on after an update: ``recent``, the agent's
    newest pool clips; ``labelled``, those and as many labelled clips (spread evenly over the
    labelling history) together."""
    corr_clips: int = 300
    background: bool = False
    """Train the reward model in a thread on a copy while RL goes on (see start_update)."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def __post_init__(self) -> None:
        if self.norm_source not in ("recent", "labelled"):
            raise ValueError(f"norm_source must be 'recent' or 'labelled', "
                             f"got {self.norm_source!r}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able settings."""
        return asdict(self)


class PreferenceLearner:
    """Ask, store, retrain: the reward-learning half of the loop."""

    def __init__(
        self,
        ensemble: RewardEnsemble,
        trainer: RewardTrainer,
        buffer: SegmentBuffer,
        store: LabelStore,
        schedule: LabelSchedule,
        selector: QuerySelector,
        oracle: SyntheticOracle | None,
        config: LearnerConfig,
        rng: np.random.Generator,
    ) -> None:
        self.ensemble, self.trainer, self.buffer, self.store = ensemble, trainer, buffer, store
        self.schedule, self.selector, self.oracle = schedule, selector, oracle
        self.config, self.rng = config, rng
        self.data = LabelledPairs()  # the store's labels with their clips, synced per update
        self._job: Future[_Result] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._trainer_at_start: dict[str, Any] | None = None  # of a background update
        self.last_stats: TrainStats | None = None
        self.n_updates = 0
        self.trained_on = -1  # label count at the last update
        self.timers: dict[str, float] = dict.fromkeys(TIMERS, 0.0)
        """Seconds per part of the preference side (see :data:`TIMERS`); with background
        training the training parts ran in the thread, off RL's critical path."""

    @classmethod
    def create(
        cls,
        obs_space: gym.Space,
        act_space: gym.Space,
        config: LearnerConfig,
        store_path: str | Path,
        *,
        oracle: str | None,
        clip_len: int,
        seed: int,
        device: str | None = None,
        ensemble: RewardEnsemble | None = None,
    ) -> PreferenceLearner:
        """Build every part from settings. ``oracle``: a teacher preset name, or None (human).

        ``ensemble``: start from this (trained) model instead of a fresh one.
        """
        seeds = np.random.SeedSequence(seed).spawn(4)
        if ensemble is None:
            ensemble = RewardEnsemble.from_spaces(
                obs_space, act_space, config.ensemble_size, seed=seed, device=device,
                **config.net_kwargs,
            )
        trained = copy.deepcopy(ensemble) if config.background else ensemble
        trainer = RewardTrainer(trained, config.trainer, rng=np.random.default_rng(seeds[0]))
        buffer = SegmentBuffer(clip_len, capacity=config.pool_capacity,
                               max_bytes=config.pool_max_bytes,
                               rng=np.random.default_rng(seeds[1]))
        schedule = LabelSchedule(config.labels, config.total_steps, config.pretrain_frac,
                                 config.schedule_tau)
        teacher = (None if oracle is None
                   else SyntheticOracle(oracle, rng=np.random.default_rng(seeds[2])))
        return cls(ensemble, trainer, buffer, LabelStore(store_path), schedule,
                   make_selector(config.selector, config.oversample), teacher, config,
                   np.random.default_rng(seeds[3]))

    # ------------------------------------------------------------------ asking
    def ask(self, env_step: int, n: int | None = None, source: PairSource | None = None) -> int:
        """Ask the labels the schedule says are due by ``env_step`` (or ``n``); return count.

        Pairs come from the pool, or from ``source`` (the guard's newest clips).
        """
        due = self.schedule.due(env_step, self.store.n_queries()) if n is None else n
        if due <= 0 or len(self.buffer) < 2:
            return 0
        t0 = time.perf_counter()
        chosen = self.selector.choose(
            self.buffer if source is None else source, due, self.ensemble, self.rng,
            exclude_keys=self.store.asked_keys(),
        )
        t1 = time.perf_counter()
        self.timers["query_score_s"] += t1 - t0
        if chosen:
            hashes = [c.hash for p, _ in chosen for c in (p.left, p.right)]
            self.buffer.update_scores(hashes, [s for _, s in chosen for _ in (0, 1)])
        oracle = self.oracle
        self.store.add_queries(chosen, self.selector.name, env_step, answer=None if oracle is None
                               else lambda pair, qid: oracle.label(pair, query_id=qid))
        self.timers["query_store_s"] += time.perf_counter() - t1
        return len(chosen)

    # ------------------------------------------------------------------ training
    def update(self, epochs: int | None = None) -> dict[str, float]:
        """Retrain on all labels in the store now; return metrics (few if < 2 labels)."""
        self.finish_update(wait=True)
        return self._publish(self._train(*self._snapshot(), epochs))

    def start_update(self, epochs: int | None = None) -> bool:
        """Begin retraining; False if an update is still in flight.

        With ``background=True`` the trainer works on its own copy of the ensemble in a
        thread while RL goes on with the current model, and :meth:`finish_update` makes the new
        model live. Otherwise the update runs here and now.
        """
        if self._job is not None:
            return False
        recent, corr = self._snapshot()
        if self.trainer.ensemble is self.ensemble:  # synchronous
            done: Future[_Result] = Future()
            done.set_result(self._train(recent, corr, epochs))
            self._job = done
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="prefrl-reward")
            self._trainer_at_start = copy.deepcopy(self.trainer.state_dict())
            self._job = self._pool.submit(self._train, recent, corr, epochs)
        return True

    @property
    def updating(self) -> bool:
        """Whether an update was started and its result not yet taken."""
        return self._job is not None

    def finish_update(self, wait: bool = False) -> dict[str, float] | None:
        """Metrics of a finished update, whose model is then live; None if none is ready.

        ``wait=True`` blocks until the update in flight (if any) is done. Errors raised in the
        update are raised here.
        """
        if self._job is None or (not wait and not self._job.done()):
            return None
        job, self._job = self._job, None
        self._trainer_at_start = None
        return self._publish(job.result())

    def close(self) -> None:
        """Cancel an update in flight (its result is dropped) and stop the background thread.

        The store stays open; labels are never lost (they live in the store).
        """
        job, self._job = self._job, None
        self._trainer_at_start = None
        if job is not None and not job.done():
            self.trainer.stop.set()
            try:
                job.result()
            except TrainingCancelled:
                pass
            finally:
                self.trainer.stop.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _snapshot(self) -> tuple[list[Clip], list[Clip]]:
        """Pool clips to normalise on (what the agent does now) and to measure agreement on."""
        n_norm = min(self.config.norm_clips, max(10, 10_000 // self.buffer.clip_len))
        clip_bytes = max(1, self.buffer.recent(1)[0].obs.nbytes) if len(self.buffer) else 1
        n_norm = min(n_norm, max(10, self.config.norm_max_bytes // clip_bytes))
        return self.buffer.recent(n_norm), self.buffer.recent(self.config.corr_clips)

    def _train(self, recent: list[Clip], corr: list[Clip], epochs: int | None) -> _Result:
        """Sync the labelled pairs and train ``trainer.ensemble`` (may run in a thread)."""
        data, tm, t0 = self.data, self.timers, time.perf_counter()
        data.sync(self.store)  # decodes only clips labelled since the last update
        out: dict[str, float] = {"labels": float(self.store.n_labels()),
                                 "reward/data_mb": data.clips.nbytes / 2**20}
        t1 = time.perf_counter()
        tm["label_sync_s"] += t1 - t0
        if len(data) < 2:
            return out, None, len(data)
        ens = self.trainer.ensemble
        stats = self.trainer.train(data, self.config.update_epochs if epochs is None else epochs,
                                   normalise=len(recent) < 10)  # else normalised below
        t2 = time.perf_counter()
        tm["reward_fit_s"] += t2 - t1
        if len(recent) >= 10:
            ens.fit_normalisation(*self._norm_steps(recent))
        t3 = time.perf_counter()
        tm["reward_norm_s"] += t3 - t2
        out.update(stats.summary())
        out.update(self.agreement(corr, ens))
        tm["reward_agreement_s"] += time.perf_counter() - t3
        out["reward/epochs"] = float(stats.epochs)
        return out, stats, len(data)

    def _norm_steps(self, recent: list[Clip]) -> tuple[np.ndarray, np.ndarray]:
        """The ``(obs, acts)`` steps that the reward's output is standardised on."""
        obs, acts = [c.obs for c in recent], [c.acts for c in recent]
        hashes = self.data.clips.hashes() if self.config.norm_source == "labelled" else []
        if hashes:  # deterministic and thread-safe: every k-th labelled clip, oldest first
            lo, la = self.data.clips.gather(hashes[:: max(1, len(hashes) // len(recent))]
                                            [: len(recent)])
            obs.extend(lo)
            acts.extend(la)
        return np.concatenate(obs), np.concatenate(acts)

    def _publish(self, result: _Result) -> dict[str, float]:
        out, stats, n = result
        if stats is not None:
            if self.trainer.ensemble is not self.ensemble:
                self.ensemble.load_state_dict(self.trainer.ensemble.state_dict())
            self.last_stats = stats
            self.n_updates += 1
            self.trained_on = n
        return out

    def agreement(self, clips: list[Clip] | None = None,
                  ensemble: RewardEnsemble | None = None) -> dict[str, float]:
        """Pearson / Spearman correlation of learned vs true returns on fresh clips."""
        clips = self.buffer.recent(self.config.corr_clips) if clips is None else clips
        if len(clips) < 3:
            return {}
        learned = clip_returns(ensemble or self.ensemble, clips).mean(0)
        agr = return_correlation(learned, np.array([c.true_return for c in clips]))
        return {"reward/corr_pearson": agr.pearson, "reward/corr_spearman": agr.spearman}

    def pretrain(self, clips: list[Clip], wait: Callable[[], object] | None = None
                 ) -> dict[str, float]:
        """Add random-policy clips, ask the pre-training share of labels and train on them.

        ``wait`` is called between asking and training (a human oracle: until people answer).
        """
        for c in clips:
            self.buffer.add_clip(c)
        t0 = time.perf_counter()
        outer, self.timers = self.timers, dict.fromkeys(TIMERS, 0.0)  # its parts: kept apart
        try:
            asked = self.ask(env_step=0)
            if wait is not None:  # a human oracle: the pre-training answers come first
                wait()
            metrics = self.update(self.config.pretrain_epochs)
        finally:
            parts, self.timers = self.timers, outer
        metrics["pretrain/asked"] = float(asked)
        metrics["pretrain/seconds"] = time.perf_counter() - t0
        metrics["pretrain/fit_seconds"] = parts["reward_fit_s"]
        self.timers["pretrain_s"] += metrics["pretrain/seconds"]
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (torch tensors and plain data).

        While a background update is in flight this is the state it started from (the live
        model, the optimisers before it), so checkpoints never wait for reward training; a
        resumed run simply retrains on all labels at its next update.
        """
        if self._job is not None and self._trainer_at_start is None:
            raise RuntimeError("a reward update is in flight; finish_update(wait=True) first")
        return {
            "ensemble": self.ensemble.state_dict(),  # the live model
            "ensemble_configs": self.ensemble.member_configs(),
            # a background update in flight is left out: its starting point is saved
            "trainer": self._trainer_at_start or self.trainer.state_dict(),
            "oracle": None if self.oracle is None else self.oracle.state_dict(),
            "rng": self.rng.bit_generator.state,
            "n_updates": self.n_updates,
            "trained_on": self.trained_on,
            "timers": dict(self.timers),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (the buffer is restored separately)."""
        self.ensemble.load_state_dict(state["ensemble"])
        if self.trainer.ensemble is not self.ensemble:
            self.trainer.ensemble.load_state_dict(state["ensemble"])
        self.trainer.load_state_dict(state["trainer"])
        if self.oracle is not None and state["oracle"] is not None:
            self.oracle.load_state_dict(state["oracle"])
        self.rng.bit_generator.state = state["rng"]
        self.n_updates = int(state["n_updates"])
        self.trained_on = int(state["trained_on"])
        self.timers.update({k: float(v) for k, v in state.get("timers", {}).items()})
