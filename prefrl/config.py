"""The typed configuration of a training run; the ``prefrl train`` CLI is generated from it.

>>> cfg = TrainConfig(env="Pendulum", labels=100, steps=5000)
>>> resolved = cfg.resolve()
>>> resolved.env_id, resolved.labels, resolved.algo
('Pendulum-v1', 100, 'ppo')
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefrl.envs import ALGOS, EnvPreset, load_preset
from prefrl.oracles import TEACHER_PRESETS
from prefrl.presets import PREFERENCE_CHOICES, PREFERENCE_DEFAULTS, preset_from_json
from prefrl.query import SELECTORS

FORMAT = "prefrl-run-config"
VERSION = 1


class ConfigError(ValueError):
    """A run configuration that cannot work (message is one line, meant for users)."""


@dataclass
class TrainConfig:
    """Train an agent on a reward learned from clip comparisons (or on the true reward)."""

    env: str = "Pendulum"
    """Preset name (HalfCheetah, Hopper, ...), Gymnasium id, or path to a preset .toml file."""
    labels: int | None = None
    """Label budget (default: the preset's)."""
    steps: int | None = None
    """Environment steps (default: the preset's)."""
    seed: int = 0
    """Seed of everything (env, policy, reward model, teacher, query choice)."""
    algo: Literal["ppo", "a2c", "trpo", "sac"] | None = None
    """RL algorithm (default: the preset's, PPO for MuJoCo). sac: off-policy, the replay buffer
    is relabelled after every reward update, PEBBLE pre-training and feedback sessions."""
    oracle: str = "paper"
    """Synthetic teacher: perfect, paper (10% random answers), noisy, mistake, myopic, equal,
    skip; or human (questions wait in the label store for the GUI)."""
    reward: Literal["learned", "true"] = "learned"
    """Train on the learned reward, or on the true reward (the baseline, same pipeline)."""
    run_dir: Path | None = None
    """Where the run lives (default: results/runs/<env>-<seed>-<time>)."""
    n_envs: int | None = None
    """Parallel environments (default: what the preset's hyper-parameters assume)."""
    selector: Literal["disagreement", "entropy", "random", "kcenter-disagreement"] = "disagreement"
    """How pairs are chosen among the oversampled candidates."""
    oversample: int | None = None
    """Candidates drawn per label asked (default 10)."""
    pretrain_frac: float | None = None
    """Share of the label budget asked on random-policy clips before RL starts (default: the
    preset's, else 0.25)."""
    pretrain_clips: int | None = None
    """Random-policy clips collected for the pre-training labels (default 400)."""
    pool_clips: int | None = None
    """Query candidates kept: the newest this many clips (default: the preset's, else 3000).
    One clip is cut per window of 2 clip lengths, so the pool spans about
    ``pool_clips * 2 * clip_len`` env steps of the agent's history."""
    ensemble_size: int | None = None
    """Reward-model ensemble members (default 3)."""
    update_every: int | None = None
    """Environment steps between reward-model updates (default: steps / 40)."""
    update_epochs: int | None = None
    """Epochs per reward-model update (default 10)."""
    pretrain_epochs: int | None = None
    """Epochs of the reward-model pre-training on the first labels (default 100)."""
    reward_training: Literal["inline", "background"] | None = None
    """inline: train the reward model between rollouts (bit-reproducible); background: in a
    thread on a copy while RL goes on, off the critical path. Default: the preset's (background
    for Atari, inline otherwise)."""
    on_hack: Literal["ask", "none"] = "ask"
    """When the reward-hacking guard's alarm trips (prefrl.guard): ask, bring labels forward
    from the schedule and ask them about the agent's newest clips; none, only warn."""
    reward_pessimism: float = 0.0
    """K: the agent gets mean - K * std of the ensemble members' rewards (0: off)."""
    reward_schedule: Literal["fast", "full"] | None = None
    """fast: each reward update trains on the new labels plus a replayed share of the old,
    stopping when validation loss stops falling; full: every label for every epoch (the
    paper's fixed schedule). Default: the preset's algorithm table (e.g. [sac]), else its
    [preference], else fast.
    On HalfCheetah and Swimmer (2 seeds each, 300k steps, 700 labels) fast cut reward fitting
    3-5x with held-out accuracy and final return within seed noise (results/overhead, "Fast vs
    full on RL runs")."""
    reward_l2: Literal["adaptive", "off"] | None = None
    """The reward nets' weight decay: adaptive, the paper's (raised or lowered after each epoch
    to keep validation loss 1.1-1.5x training loss); off, none. Default: the preset's
    algorithm table, else its [preference], else adaptive."""
    reward_val_frac: float | None = None
    """Share of the labels held out from reward training, for adaptive L2, early stopping and
    the held-out metrics (a stable hash split). 0 trains on every label, as PEBBLE does; it
    needs --reward-l2 off and --reward-schedule full, and leaves reward_val_acc empty.
    Default: the preset's algorithm table, else its [preference], else 1/e (the paper's)."""
    reward_norm: Literal["recent", "labelled"] | None = None
    """What the learned reward is standardised on (zero mean, unit std) after each update:
    recent, the agent's newest clips; labelled, those and the labelled clips together.
    Default: the preset's [preference] reward_norm, else recent. The agent's newest clips can
    be nearly all alike (a balanced pole), and a spread fit on them alone can shrink towards
    zero and blow the reward up (results/falls/ablation-ip-reward-inputs)."""
    unsup_steps: int | None = None
    """SAC: steps of PEBBLE's unsupervised pre-training on state entropy before the first
    labels (default: the preset's [sac] unsup_steps, at most steps / 5; 0 = off)."""
    feedback_every: int | None = None
    """SAC: steps between feedback sessions (default: the preset's [sac] feedback_every, at
    most (steps - unsup_steps) / 10)."""
    reset_critic: bool = True
    """SAC: re-initialise the critic when the reward switches from state entropy to learned."""
    reset_actor: bool = False
    """SAC: at that switch also re-initialise the actor and the entropy coefficient, so the agent
    starts afresh on the learned reward; the replay buffer keeps the pre-training steps. PEBBLE
    keeps the actor; on HalfCheetah its state-entropy actor spends most steps on its back."""
    pool_mb: int = 1024
    """Memory cap of the pool of candidate clips, in MiB (oldest clips are evicted)."""
    checkpoint_every: int | None = None
    """Environment steps between checkpoints (default: steps / 10)."""
    log_every: int | None = None
    """Environment steps between metric rows (default: steps / 100)."""
    device: str = "auto"
    """Torch device of the reward model: auto (CUDA if present), cpu or cuda."""
    torch_threads: int | None = None
    """Torch CPU threads (default: 1 for vector observations, where more threads only wait on
    each other; torch's choice for images; 0: torch's choice)."""
    gui_host: str = "127.0.0.1"
    """With --oracle human: where the labelling GUI listens (started with the run)."""
    gui_port: int = 8765
    """With --oracle human: the labelling GUI's port."""
    question: str | None = None
    """With --oracle human: what the labelling page asks people, e.g. 'Which robot runs
    backward better?' (default: 'Which clip does the task better?')."""
    wait: bool = True
    """With --oracle human: wait for people to answer the pre-training questions before RL
    starts (--no-wait: start RL at once, on an untrained reward model)."""
    progress: bool = True
    """Show a live progress bar."""
    tensorboard: bool = True
    """Write TensorBoard event files into the run directory."""
    reward_model: Path | None = None
    """Start from a trained reward model folder (``prefrl reward train`` or ``export``), then
    fine-tune it with the label budget; with --reward-model-frozen, keep it fixed."""
    reward_model_frozen: bool = False
    """With --reward-model: keep its weights fixed and ask no labels; its output normalisation
    is refit on the agent's recent steps every --update-every steps, as after a run's update."""

    def resolve(self, preset: EnvPreset | None = None) -> ResolvedConfig:
        """Merge with the env preset and check everything; raise :class:`ConfigError`.

        ``preset``: use this one instead of loading ``env`` (a run's stored preset, see
        :func:`resolve_run`).
        """
        if preset is None:
            try:
                preset = load_preset(self.env)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        algo = self.algo or preset.algo
        if algo not in ALGOS:
            raise ConfigError(f"unknown algo {algo!r}; known: {', '.join(ALGOS)}")
        if self.oracle != "human" and self.oracle not in TEACHER_PRESETS:
            known = ", ".join([*TEACHER_PRESETS, "human"])
            raise ConfigError(f"unknown oracle {self.oracle!r}; known: {known}")
        if self.selector not in SELECTORS:
            raise ConfigError(f"unknown selector {self.selector!r}; known: {', '.join(SELECTORS)}")
        if self.selector == "kcenter-disagreement" and preset.env_id.startswith("ALE/"):
            raise ConfigError(f"--selector kcenter-disagreement needs vector observations; "
                              f"{preset.name} has image frames")
        pref = dict(PREFERENCE_DEFAULTS)
        pref.update(preset.preference)
        pref.update({k: v for k, v in preset.algo_overrides.get(algo, {}).items() if k in pref})
        pref.update({k: getattr(self, k) for k in pref
                     if getattr(self, k, None) is not None})
        if self.reward_training is not None:
            pref["background_reward"] = self.reward_training == "background"
        frozen = self._check_reward_model()
        labels = 0 if frozen else preset.labels if self.labels is None else self.labels
        steps = preset.steps if self.steps is None else self.steps
        n_envs = self.n_envs or preset.n_envs_for(algo)
        if steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {steps}")
        if labels < 0:
            raise ConfigError(f"--labels must be >= 0, got {labels}")
        asks = self.reward == "learned" and not frozen
        if asks and labels < 2:
            raise ConfigError(f"--labels {labels} is too few to learn a reward (need >= 2)")
        for key, choices in PREFERENCE_CHOICES.items():
            if pref[key] not in choices:
                raise ConfigError(f"{key} must be {' or '.join(choices)}, got {pref[key]!r}")
        if not 0.0 <= pref["reward_val_frac"] < 1.0:
            raise ConfigError(f"--reward-val-frac must be in [0, 1), got {pref['reward_val_frac']}")
        if pref["reward_val_frac"] == 0 and (pref["reward_l2"], pref["reward_schedule"]) != (
                "off", "full"):
            raise ConfigError("--reward-val-frac 0 holds no labels out, which adaptive L2 and the "
                              "fast schedule's early stopping need: add --reward-l2 off "
                              "--reward-schedule full, or a --reward-val-frac above 0")
        if not 0.0 <= pref["pretrain_frac"] <= 1.0:
            raise ConfigError(f"--pretrain-frac must be in [0, 1], got {pref['pretrain_frac']}")
        if self.on_hack not in ("ask", "none"):
            raise ConfigError(f"--on-hack must be ask or none, got {self.on_hack!r}")
        if not self.reward_pessimism >= 0:
            raise ConfigError(f"--reward-pessimism must be >= 0, got {self.reward_pessimism}")
        if self.question is not None and not 0 < len(self.question.strip()) <= 500:
            raise ConfigError("--question must be 1-500 characters")
        if self.torch_threads is not None and self.torch_threads < 0:
            raise ConfigError(f"--torch-threads must be >= 0, got {self.torch_threads}")
        if self.pool_mb < 1:
            raise ConfigError(f"--pool-mb must be >= 1, got {self.pool_mb}")
        if min(pref["ensemble_size"], pref["oversample"], n_envs) < 1:
            raise ConfigError("--ensemble-size, --oversample and --n-envs must be >= 1")
        if min(pref["update_epochs"], pref["pretrain_epochs"]) < 0:
            raise ConfigError("--update-epochs and --pretrain-epochs must be >= 0")
        clip_pairs = steps // preset.clip_len + pref["pretrain_clips"]
        if asks and labels > clip_pairs * (clip_pairs - 1) // 2:
            raise ConfigError(
                f"--labels {labels} is impossible with {steps} steps: too few distinct clip pairs"
            )
        if pref["pool_clips"] < 2:
            raise ConfigError(f"--pool-clips must be >= 2, got {pref['pool_clips']}")
        if asks and pref["pretrain_frac"] > 0 and pref["pretrain_clips"] < 2:
            raise ConfigError("--pretrain-clips must be >= 2 when --pretrain-frac > 0")
        sac = _resolve_sac(self, preset, algo, steps) if algo == "sac" else {}
        run_dir = self.run_dir or Path("results/runs") / (
            f"{preset.name}-{self.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        return ResolvedConfig(
            train=dataclasses.replace(self, run_dir=run_dir),
            preset=preset, env_id=preset.env_id, algo=algo, labels=labels, steps=steps,
            n_envs=n_envs, run_dir=Path(run_dir),
            update_every=self.update_every or sac.get("feedback_every") or max(1, steps // 40),
            checkpoint_every=self.checkpoint_every or max(1, steps // 10),
            log_every=self.log_every or max(1, steps // 100),
            **pref, **sac,
        )

    def _check_reward_model(self) -> bool:
        """Check the --reward-model options; return whether the model stays frozen."""
        if self.reward_model is None:
            if self.reward_model_frozen:
                raise ConfigError("--reward-model-frozen needs --reward-model MODEL")
            return False
        if self.reward == "true":
            raise ConfigError("--reward-model is for a learned-reward run, not --reward true")
        if not (Path(self.reward_model) / "model.json").is_file():
            raise ConfigError(f"--reward-model {self.reward_model}: no model.json there "
                              "(make one with prefrl reward train or prefrl reward export)")
        return self.reward_model_frozen


def _resolve_sac(cfg: TrainConfig, preset: EnvPreset, algo: str, steps: int) -> dict[str, Any]:
    """PEBBLE settings of a SAC run: CLI, else the preset's [sac] table, capped to the run."""
    if preset.env_id.startswith("ALE/"):
        raise ConfigError(f"--algo sac needs continuous actions; {preset.name} has discrete ones")
    ov = preset.algo_overrides.get(algo, {})
    unsup = cfg.unsup_steps
    if unsup is None:
        unsup = min(int(ov.get("unsup_steps", 0)), steps // 5) if cfg.reward == "learned" else 0
    if not 0 <= unsup < steps:
        raise ConfigError(f"--unsup-steps must be in [0, steps={steps}), got {unsup}")
    every = cfg.feedback_every
    if every is None:
        every = min(int(ov.get("feedback_every", steps)), max(1, (steps - unsup) // 10))
    if every < 1:
        raise ConfigError(f"--feedback-every must be >= 1, got {every}")
    return {"unsup_steps": unsup, "feedback_every": every}


@dataclass(frozen=True)
class ResolvedConfig:
    """A :class:`TrainConfig` merged with its preset: every value the run uses."""

    train: TrainConfig
    preset: EnvPreset
    env_id: str
    algo: str
    labels: int
    steps: int
    n_envs: int
    run_dir: Path
    update_every: int
    checkpoint_every: int
    log_every: int
    oversample: int
    pretrain_frac: float
    pretrain_clips: int
    ensemble_size: int
    update_epochs: int
    pretrain_epochs: int
    background_reward: bool
    reward_schedule: str = "fast"
    reward_norm: str = "recent"
    reward_l2: str = "adaptive"
    reward_val_frac: float = 1.0 / math.e
    pool_clips: int = 3000
    unsup_steps: int = 0
    """SAC: PEBBLE pre-training steps (0 for other algorithms)."""
    feedback_every: int = 0
    """SAC: steps between feedback sessions (0: the on-policy label schedule)."""

    def to_json(self) -> dict[str, Any]:
        """What ``config.json`` holds (the CLI config plus the preset as used)."""
        train = {k: (str(v) if isinstance(v, Path) else v)
                 for k, v in dataclasses.asdict(self.train).items()}
        preset = {k: (str(v) if isinstance(v, Path) else v)
                  for k, v in dataclasses.asdict(self.preset).items()}
        return {
            "format": FORMAT, "version": VERSION, "train": train, "preset": preset,
            "resolved": {
                "env_id": self.env_id, "algo": self.algo, "labels": self.labels,
                "steps": self.steps, "n_envs": self.n_envs, "update_every": self.update_every,
                "checkpoint_every": self.checkpoint_every, "log_every": self.log_every,
                **{k: getattr(self, k) for k in PREFERENCE_DEFAULTS},
                "unsup_steps": self.unsup_steps, "feedback_every": self.feedback_every,
                "algo_kwargs": self.preset.algo_kwargs_for(self.algo, resolve=False),
            },
        }


def _read_run_doc(run_dir: Path) -> dict[str, Any]:
    """``run_dir/config.json``, checked to be a run config this prefrl can read."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a prefrl run directory (no config.json)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a prefrl run config")
    if int(doc.get("version", 0)) > VERSION:
        raise ConfigError(f"{path} was written by a newer prefrl (version {doc['version']})")
    return doc


def _train_config(doc: dict[str, Any]) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = {k: v for k, v in doc["train"].items() if k in fields}
    if kw.get("run_dir") is not None:
        kw["run_dir"] = Path(kw["run_dir"])
    if kw.get("reward_model") is not None:
        kw["reward_model"] = Path(kw["reward_model"])
    return TrainConfig(**kw)


def _stored_preset(doc: dict[str, Any], run_dir: Path) -> EnvPreset | None:
    stored = doc.get("preset")
    if not isinstance(stored, dict):
        return None
    try:
        return preset_from_json(stored)
    except ValueError as e:
        raise ConfigError(f"{Path(run_dir) / 'config.json'}: {e}") from None


def load_run_config(run_dir: Path) -> TrainConfig:
    """Read ``run_dir/config.json`` back into a :class:`TrainConfig` (for ``--resume``)."""
    return _train_config(_read_run_doc(run_dir))


def load_run_preset(run_dir: Path) -> EnvPreset | None:
    """The preset a run ran with, from its ``config.json`` (None if it stored none)."""
    return _stored_preset(_read_run_doc(run_dir), run_dir)


def resolve_run(path: Path, **changes: Any) -> ResolvedConfig:
    """A run's config resolved with the preset it ran with, not today's ``envs/*.toml``.

    ``changes`` replace fields of its :class:`TrainConfig` first (e.g. ``run_dir``). Resuming,
    evaluating and exporting a run use this, so an edited preset file cannot change the env,
    the true reward or the horizon of a run that was made before the edit.
    """
    doc = _read_run_doc(path)  # read once for both the config and its preset
    cfg = _train_config(doc)
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    return cfg.resolve(preset=_stored_preset(doc, path))
