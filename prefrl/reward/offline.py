"""The reward model without RL: train it from labels, evaluate it, take it out of a run.

:func:`train_offline` trains a fresh ensemble on a label store (``.sqlite``), an export
(``labels.jsonl`` + ``clips.npz``, imported into a temporary store) or a run directory, with the
trainer a run uses (:class:`~prefrl.reward.trainer.RewardTrainer`: misclick-aware loss, the
hash-based validation split, adaptive L2, output normalisation), so its validation labels are
exactly the run's. :func:`evaluate_model` scores a model on labels: accuracy, calibration (ECE
and a reliability table) and, from the clips' true rewards, Pearson and Spearman correlation of
learned vs true clip returns. :func:`export_run_model` writes a run's latest ensemble as a
:class:`~prefrl.reward.model.RewardModel`.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.reward.dataset import LabelledPairs
from prefrl.reward.ensemble import RewardEnsemble, as_tensor
from prefrl.reward.metrics import (
    CalibrationBin,
    calibration,
    preference_accuracy,
    return_correlation,
)
from prefrl.reward.model import ReferenceClips, RewardModel, RewardModelError
from prefrl.reward.trainer import RewardTrainer, TrainerConfig, is_validation
from prefrl.store import LabelStore, StoreError


@dataclass(frozen=True)
class LabelSource:
    """Labels ready to train on, and what the run that made them used (when known)."""

    data: LabelledPairs
    env_id: str
    clip_len: int
    run_dir: Path | None
    """The run directory the labels belong to (its config.json), if any."""
    path: Path
    store: LabelStore
    """The open store (a temporary one for an export); valid inside :func:`open_labels`."""


@contextlib.contextmanager
def open_labels(path: str | Path) -> Iterator[LabelSource]:
    """Open a ``.sqlite`` store, a run directory or an export folder; yield its labels."""
    p = Path(path)
    run_dir: Path | None = None
    with contextlib.ExitStack() as stack:
        if p.is_dir() and (p / "labels.sqlite").is_file():
            run_dir = p if (p / "config.json").is_file() else None
            store = stack.enter_context(LabelStore(p / "labels.sqlite", create=False))
        elif p.is_dir() and (p / "labels.jsonl").is_file():
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="prefrl-labels-"))
            store = stack.enter_context(LabelStore(Path(tmp) / "labels.sqlite"))
            store.import_(p)
        elif p.is_file():
            run_dir = p.parent if (p.parent / "config.json").is_file() else None
            store = stack.enter_context(LabelStore(p, create=False))
        else:
            raise StoreError(f"no labels at {p} (expected a .sqlite label store, a run "
                             "directory, or an export folder with labels.jsonl + clips.npz)")
        data = LabelledPairs()
        data.sync(store)
        if len(data) < 2:
            raise StoreError(f"{p} holds {len(data)} usable labels; training needs >= 2")
        first = store.get_clip(data.left_hashes[0])
        yield LabelSource(data, first.env_id, first.length, run_dir, p, store)


def _run_setup(src: LabelSource, env: str | None) -> tuple[Any, int]:
    """(preset, ensemble size) of the run that made the labels, else of the env's preset."""
    from prefrl.config import resolve_run
    from prefrl.envs import load_preset

    if env is None and src.run_dir is not None:
        rc = resolve_run(src.run_dir)
        return rc.preset, rc.ensemble_size
    preset = load_preset(env or src.env_id)
    size = int(getattr(preset, "preference", {}).get("ensemble_size", 3))
    return preset, size


def spaces_of(preset: Any) -> tuple[Any, Any, str | None]:
    """Observation space, action space and obs transform name of a preset's env."""
    from prefrl.envs import make_env
    from prefrl.run_setup import reward_observation_fn

    env = make_env(preset, seed=0)
    try:
        transform = "atari_score_mask" if reward_observation_fn(preset) is not None else None
        return env.observation_space, env.action_space, transform
    finally:
        env.close()


def labelled_reference(store: LabelStore, n: int = 200,
                       max_bytes: int = 64 << 20) -> ReferenceClips | None:
    """A sample of a store's labelled clips for the model folder (the guard's sample rule).

    At most ``n`` clips and ``max_bytes`` of observations and actions (Atari frames are big);
    None when the store has no labelled clips.
    """
    from prefrl.guard import labelled_sample

    clips = store.get_clips(labelled_sample(store, n), render_state=False)
    if not clips:
        return None
    shape = (clips[0].obs.shape, clips[0].acts.shape)
    clips = [c for c in clips if (c.obs.shape, c.acts.shape) == shape]
    per_clip = max(1, clips[0].obs.nbytes + clips[0].acts.nbytes)
    clips = clips[: max(1, max_bytes // per_clip)]
    return ReferenceClips(np.stack([c.obs for c in clips]), np.stack([c.acts for c in clips]),
                          np.array([c.true_return for c in clips], np.float64))


def train_offline(labels: str | Path, *, env: str | None = None, epochs: int = 100,
                  ensemble_size: int | None = None, seed: int = 0,
                  trainer: TrainerConfig | None = None,
                  device: str | None = None) -> tuple[RewardModel, dict[str, Any]]:
    """Train a fresh ensemble on ``labels``; return the model and its training stats.

    ``env``: a preset name or Gymnasium id (default: the run's config next to the store, else
    the clips' env id). Net settings come from that preset's ``[reward_model]``.
    """
    cfg = trainer or TrainerConfig()
    with open_labels(labels) as src:
        preset, size = _run_setup(src, env)
        if preset.env_id != src.env_id:
            raise RewardModelError(f"labels in {src.path} are of {src.env_id}, not "
                                   f"{preset.env_id}")
        obs_space, act_space, transform = spaces_of(preset)
        ens = RewardEnsemble.from_spaces(obs_space, act_space, ensemble_size or size, seed=seed,
                                         device=device, **dict(preset.reward_model))
        rt = RewardTrainer(ens, cfg, rng=np.random.default_rng(seed))
        stats = rt.train(src.data, epochs)
        training = {k: v for k, v in stats.as_dict().items() if k != "calibration"}
        training.update(labels=len(src.data), epochs=epochs, seed=seed)
        meta = {"trainer": asdict(cfg), "training": training,
                "source": {"kind": "offline", "labels": str(src.path),
                           "run_dir": None if src.run_dir is None else str(src.run_dir)}}
        model = RewardModel(ens, obs_space, act_space, preset.env_id, src.clip_len,
                            obs_transform=transform, meta=meta,
                            reference=labelled_reference(src.store))
    return model, training


@torch.no_grad()
def pair_probabilities(ens: RewardEnsemble, data: LabelledPairs, idx: np.ndarray,
                       chunk: int = 256) -> np.ndarray:
    """Each member's P(right better) ``(K, n)`` of pairs ``idx``, from raw clip returns.

    The same quantity the trainer's validation accuracy and calibration use.
    """
    ens.eval()
    out = []
    for i in range(0, len(idx), chunk):
        lo, la, ro, ra = data.pairs(idx[i:i + chunk])
        rl = ens.member_clip_returns(as_tensor(lo, ens.device), as_tensor(la, ens.device))
        rr = ens.member_clip_returns(as_tensor(ro, ens.device), as_tensor(ra, ens.device))
        out.append(torch.sigmoid(rr - rl).float().cpu().numpy())
    return np.concatenate(out, 1) if out else np.zeros((ens.n_members, 0))


@dataclass
class EvalReport:
    """How well a reward model agrees with labels (and with the true reward, when known)."""

    split: str
    n_pairs: int
    accuracy: float
    member_accuracy: list[float]
    ece: float
    reliability: list[CalibrationBin] = field(default_factory=list)
    pearson: float = float("nan")
    spearman: float = float("nan")
    n_clips: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)

    def table(self) -> str:
        """A short human-readable report with the reliability table."""
        lines = [f"pairs ({self.split}): {self.n_pairs}", f"accuracy: {self.accuracy:.3f} "
                 f"(members {', '.join(f'{a:.3f}' for a in self.member_accuracy)})",
                 f"ECE: {self.ece:.3f}", "reliability: P(right) bin | predicted | observed | n"]
        lines += [f"  [{b.lo:.1f}, {b.hi:.1f}) | {b.mean_predicted:.3f} | {b.observed:.3f} | "
                  f"{b.count}" for b in self.reliability]
        if self.n_clips:
            lines.append(f"learned vs true clip returns ({self.n_clips} clips): Pearson "
                         f"{self.pearson:.3f}, Spearman {self.spearman:.3f}")
        return "\n".join(lines)


def evaluate_model(model: RewardModel, labels: str | Path, *, split: str = "val",
                   bins: int = 10) -> EvalReport:
    """Score ``model`` on ``labels`` (``split``: val, the run's held-out labels; train; all)."""
    if split not in ("val", "train", "all"):
        raise ValueError(f"split must be val, train or all, got {split!r}")
    trainer = model.meta.get("trainer", {})
    val_frac = float(trainer.get("val_frac", TrainerConfig.val_frac))
    eps = float(trainer.get("misclick_eps", TrainerConfig.misclick_eps))
    with open_labels(labels) as src:
        if src.env_id != model.env_id:
            raise RewardModelError(f"reward model is for {model.env_id}, labels in {src.path} "
                                   f"are of {src.env_id}")
        data = src.data
        val = np.array([is_validation(k, val_frac) for k in data.pair_keys], bool)
        keep = {"val": val, "train": ~val, "all": np.ones_like(val)}[split]
        idx = np.flatnonzero(keep)
        if len(idx) == 0:
            raise StoreError(f"{src.path} has no labels in the {split!r} split")
        p = pair_probabilities(model.ensemble, data, idx)
        mu = np.asarray(data.mu, np.float64)[idx]
        p_mean = p.mean(0)
        table, ece = calibration((1 - eps) * p_mean + eps / 2, mu, bins)
        report = EvalReport(split, len(idx), preference_accuracy(p_mean, mu),
                            [preference_accuracy(pm, mu) for pm in p], ece, table)
        hashes = list(dict.fromkeys(h for i in idx for h in (data.left_hashes[i],
                                                               data.right_hashes[i])))
        clips = src.store.get_clips(hashes, render_state=False)
        true = np.array([c.true_return for c in clips], np.float64)
        if np.isfinite(true).all() and np.ptp(true) > 0:
            from prefrl.query import clip_returns

            agr = return_correlation(clip_returns(model.ensemble, clips).mean(0), true)
            report.pearson, report.spearman, report.n_clips = (agr.pearson, agr.spearman,
                                                               agr.n_clips)
    return report


def export_run_model(run_dir: str | Path) -> RewardModel:
    """The latest reward ensemble of a run (its checkpoint) as a :class:`RewardModel`."""
    from prefrl.config import resolve_run
    from prefrl.rundir import RunDir

    rd = RunDir(Path(run_dir))
    rc = resolve_run(rd.path)
    ckpt = rd.latest_checkpoint()
    if rc.train.reward_model_frozen:
        raise RewardModelError(f"{run_dir} ran on a frozen reward model: it is "
                               f"{rc.train.reward_model}")
    if ckpt is None or not (ckpt / "learner.pt").is_file():
        raise RewardModelError(f"{run_dir} has no checkpoint with a reward model "
                               "(a learned-reward run writes one at every checkpoint)")
    state = torch.load(ckpt / "learner.pt", map_location="cpu", weights_only=True)
    ens = RewardEnsemble.from_checkpoint(state["ensemble_configs"], state["ensemble"], "cpu")
    obs_space, act_space, transform = spaces_of(rc.preset)
    step = json.loads((ckpt / "state.json").read_text()).get("num_timesteps")
    meta = {"trainer": asdict(TrainerConfig()),
            "source": {"kind": "run", "run_dir": str(rd.path), "env_step": step,
                       "reward_updates": int(state.get("n_updates", 0)),
                       "labels_trained_on": int(state.get("trained_on", -1))}}
    reference = None
    if rd.store_path.is_file():
        with LabelStore(rd.store_path, create=False) as store:
            reference = labelled_reference(store)
    return RewardModel(ens, obs_space, act_space, rc.env_id, rc.preset.clip_len,
                       obs_transform=transform, meta=meta, reference=reference)
