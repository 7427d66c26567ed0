"""The learned reward as a file: a versioned model folder, saved and loaded without pickle.

Format ``prefrl-reward-model``, version :data:`MODEL_VERSION`; one folder holding:

* ``model.json``: ``{"format": "prefrl-reward-model", "version": 1, "env_id", "clip_len",
  "observation_space", "action_space", "obs_transform", "members": [net config, ...],
  "weights": "weights.pt", "normalisation": {"out_mean": [...], "out_std": [...]},
  "trainer": {...}, "training": {...}, "source": {...}, "provenance": {...}}``. A space is
  ``{"type": "Box", "shape", "dtype", "low", "high"}`` (bounds as nested lists, or one number
  when uniform; infinities as ``"inf"``/``"-inf"``) or ``{"type": "Discrete", "n", "start"}``.
  ``members`` are the nets' constructor arguments (:meth:`RewardNet.config`);
  ``obs_transform`` is null or ``"atari_score_mask"`` (what the model saw of an observation).
* ``weights.pt``: the ensemble's ``state_dict`` (every member's weights and input
  standardisation, plus the per-member output normalisation ``out_mean``/``out_std``), written
  by ``torch.save`` and read with ``torch.load(weights_only=True)``: tensors only, no pickle.
* ``reference.npz`` (optional, named by ``"reference"`` in ``model.json``): a sample of the
  labelled clips the model was trained on, arrays ``obs`` ``(n, clip_len, *obs_shape)``,
  ``acts`` ``(n, clip_len, *act_shape)`` and ``true_return`` ``(n,)``, read without pickle.
  The reward-hacking guard of a run on the frozen model measures against them
  (:class:`ReferenceClips`).

The reward of one step is the mean over members of their normalised outputs, as in a run.
Loading checks the format and version; :meth:`RewardModel.check_env` refuses an env whose id or
spaces differ from the model's, with a one-line :class:`RewardModelError`.

>>> import gymnasium as gym, numpy as np, tempfile
>>> from prefrl.reward.ensemble import RewardEnsemble
>>> env = gym.make("Pendulum-v1")
>>> ens = RewardEnsemble.from_spaces(env.observation_space, env.action_space, device="cpu")
>>> model = RewardModel(ens, env.observation_space, env.action_space, "Pendulum-v1", 25)
>>> with tempfile.TemporaryDirectory() as d:
...     _ = model.save(f"{d}/m")
...     back = load_reward(f"{d}/m", device="cpu")
>>> obs, acts = np.zeros((3, 3), np.float32), np.zeros((3, 1), np.float32)
>>> bool(np.array_equal(back(obs, acts), model(obs, acts))), back.env_id
(True, 'Pendulum-v1')
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from prefrl.reward.ensemble import RewardEnsemble

MODEL_FORMAT = "prefrl-reward-model"
MODEL_VERSION = 1
WEIGHTS_FILE = "weights.pt"
REFERENCE_FILE = "reference.npz"
OBS_TRANSFORMS = (None, "atari_score_mask")


class RewardModelError(ValueError):
    """A reward model that cannot be read, or does not fit the env it is used with."""


# ---------------------------------------------------------------------- spaces as JSON
def _bound(a: np.ndarray) -> Any:
    flat = np.asarray(a, np.float64)
    if flat.size and np.all(flat == flat.reshape(-1)[0]):
        flat = flat.reshape(-1)[:1]
        return _num(float(flat[0]))
    return [_num(float(x)) for x in flat.reshape(-1)]


def _num(x: float) -> float | str:
    return x if np.isfinite(x) else ("inf" if x > 0 else "-inf")


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """Describe a Box or Discrete space as plain JSON."""
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bound(space.low), "high": _bound(space.high)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise RewardModelError(f"cannot describe space {space} (only Box and Discrete)")


def space_from_json(doc: dict[str, Any]) -> gym.Space:
    """Inverse of :func:`space_to_json`."""
    try:
        if doc["type"] == "Discrete":
            return gym.spaces.Discrete(int(doc["n"]), start=int(doc.get("start", 0)))
        if doc["type"] == "Box":
            shape = tuple(int(s) for s in doc["shape"])

            def arr(v: Any) -> np.ndarray:
                a = np.array(v if isinstance(v, list) else [v], dtype=np.float64)
                return np.broadcast_to(a, shape) if a.size == 1 else a.reshape(shape)

            dtype = np.dtype(doc["dtype"])
            return gym.spaces.Box(arr(doc["low"]).astype(dtype), arr(doc["high"]).astype(dtype),
                                  shape, dtype)
    except (KeyError, TypeError, ValueError) as e:
        raise RewardModelError(f"bad space description {doc!r}: {e}") from None
    raise RewardModelError(f"unknown space type {doc.get('type')!r}")


def space_mismatch(want: gym.Space, got: gym.Space) -> str | None:
    """Why ``got`` differs from ``want`` (type, shape, dtype or bounds), or None."""
    if type(want) is not type(got):
        return f"{type(got).__name__} instead of {type(want).__name__}"
    if isinstance(want, gym.spaces.Discrete):
        assert isinstance(got, gym.spaces.Discrete)
        if (want.n, want.start) != (got.n, got.start):
            return f"Discrete({got.n}, start={got.start}) instead of Discrete({want.n}, " \
                   f"start={want.start})"
        return None
    assert isinstance(want, gym.spaces.Box) and isinstance(got, gym.spaces.Box)
    if want.shape != got.shape:
        return f"shape {got.shape} instead of {want.shape}"
    if want.dtype != got.dtype:
        return f"dtype {got.dtype} instead of {want.dtype}"
    for name in ("low", "high"):
        a, b = getattr(want, name), getattr(got, name)
        if not np.allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True):
            return f"{name} bound {_short(b)} instead of {_short(a)}"
    return None


def _short(a: np.ndarray) -> str:
    flat = np.asarray(a).reshape(-1)
    return np.array2string(flat[:6], precision=3) + (" ..." if flat.size > 6 else "")


# ---------------------------------------------------------------------- the model
@dataclass(frozen=True)
class ReferenceClips:
    """Labelled clips a model was trained on (a sample), for the guard of frozen runs."""

    obs: np.ndarray
    """``(n, clip_len, *obs_shape)``"""
    acts: np.ndarray
    """``(n, clip_len, *act_shape)``"""
    true_return: np.ndarray
    """``(n,)``: each clip's true return (the env's reward)."""

    def __len__(self) -> int:
        return len(self.true_return)

    def check(self, observation_space: gym.Space, action_space: gym.Space,
              clip_len: int) -> str | None:
        """Why these clips do not fit the model's spaces and clip length, or None."""
        n = len(self.true_return)
        want_obs = (n, clip_len, *observation_space.shape)  # type: ignore[misc]
        want_acts = (n, clip_len, *action_space.shape)  # type: ignore[misc]
        if self.true_return.ndim != 1 or n < 1:
            return f"true_return has shape {self.true_return.shape}, want (n,) with n >= 1"
        if self.obs.shape != want_obs:
            return f"obs has shape {self.obs.shape}, want {want_obs}"
        if self.acts.shape != want_acts:
            return f"acts has shape {self.acts.shape}, want {want_acts}"
        for name, a in (("obs", self.obs), ("acts", self.acts)):
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
                return f"{name} has dtype {a.dtype}, want numbers"
        # integer arrays (Atari frames) are finite by type: no float copy of them
        floats = [a for a in (self.true_return, self.obs)
                  if np.issubdtype(a.dtype, np.inexact)]
        if not all(np.isfinite(a).all() for a in floats):
            return "it holds NaN or infinite values"
        return None


class RewardModel:
    """A trained reward ensemble with what it was trained for: env id, spaces, clip length.

    Call it on a batch of steps: ``model(obs (N, *obs_shape), acts (N, *act_shape)) -> (N,)``
    rewards (the members' mean normalised reward); :meth:`predict` also gives the spread.
    """

    def __init__(self, ensemble: RewardEnsemble, observation_space: gym.Space,
                 action_space: gym.Space, env_id: str, clip_len: int, *,
                 obs_transform: str | None = None, meta: dict[str, Any] | None = None,
                 reference: ReferenceClips | None = None) -> None:
        if obs_transform not in OBS_TRANSFORMS:
            raise RewardModelError(f"unknown obs_transform {obs_transform!r}")
        self.ensemble = ensemble
        self.observation_space, self.action_space = observation_space, action_space
        self.env_id, self.clip_len, self.obs_transform = env_id, int(clip_len), obs_transform
        self.meta: dict[str, Any] = dict(meta or {})
        """Everything else in ``model.json``: trainer settings, training stats, source."""
        self.reference = reference
        """A sample of the labelled clips it was trained on (None: not known)."""
        self._transform = None
        if obs_transform == "atari_score_mask":
            from prefrl.atari import reward_observation_fn

            self._transform = reward_observation_fn(env_id)

    def reward_obs(self, obs: np.ndarray) -> np.ndarray:
        """What the model sees of observations (Atari: the score masked), ``(N, ...)``."""
        return obs if self._transform is None else self._transform(obs)

    def predict(self, obs: np.ndarray, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-step ``(reward, spread across members)``, both ``(N,)`` float32."""
        obs, acts = np.asarray(obs), np.asarray(acts)
        if len(obs) != len(acts):
            raise ValueError(f"{len(obs)} observations but {len(acts)} actions")
        return self.ensemble.predict(self.reward_obs(obs), acts)

    def __call__(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        """Per-step rewards ``(N,)``."""
        return self.predict(obs, acts)[0]

    def check_env(self, env: gym.Env | Any, *, check_id: bool = True) -> None:
        """Refuse an env (or VecEnv) whose id (when it has a spec) or spaces are not the model's.

        ``check_id=False`` accepts another env id when the spaces agree.
        """
        spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", None), "spec",
                                                     None)
        env_id = getattr(spec, "id", None) if check_id else None
        self.check(env_id, env.observation_space, env.action_space)

    def check(self, env_id: str | None, observation_space: gym.Space,
              action_space: gym.Space) -> None:
        """Refuse an env id (None: not checked) or spaces that are not the model's."""
        if env_id is not None and env_id != self.env_id:
            raise RewardModelError(f"reward model is for {self.env_id}, not {env_id}")
        self.check_spaces(observation_space, action_space)

    def check_spaces(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Refuse spaces that differ from the model's (one-line :class:`RewardModelError`)."""
        for what, want, got in (("observation", self.observation_space, observation_space),
                                ("action", self.action_space, action_space)):
            why = space_mismatch(want, got)
            if why is not None:
                raise RewardModelError(
                    f"reward model for {self.env_id} does not fit this env: {what} space has "
                    f"{why}")

    # ------------------------------------------------------------------ files
    def to_json(self) -> dict[str, Any]:
        """The ``model.json`` document."""
        ens = self.ensemble
        return {
            **self.meta, "format": MODEL_FORMAT, "version": MODEL_VERSION,
            "env_id": self.env_id, "clip_len": self.clip_len,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "obs_transform": self.obs_transform, "members": ens.member_configs(),
            "weights": WEIGHTS_FILE,
            "normalisation": {"out_mean": ens.out_mean.tolist(), "out_std": ens.out_std.tolist()},
            "reference": None if self.reference is None else {
                "file": REFERENCE_FILE, "clips": len(self.reference)},
        }

    def save(self, path: str | Path) -> Path:
        """Write the model folder (replaced as a whole; a crash leaves the old one)."""
        out = Path(path)
        if out.exists() and not (out / "model.json").is_file():
            raise RewardModelError(f"{out} exists and is not a reward model; not overwriting it")
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        state = {k: v.detach().cpu() for k, v in self.ensemble.state_dict().items()}
        torch.save(state, tmp / WEIGHTS_FILE)
        if self.reference is not None:
            ref = self.reference
            np.savez(tmp / REFERENCE_FILE, obs=ref.obs, acts=ref.acts, true_return=ref.true_return)
        (tmp / "model.json").write_text(json.dumps(self.to_json(), indent=2, default=str))
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return out


def load_reward(path: str | Path, device: torch.device | str | None = None) -> RewardModel:
    """Read a reward model folder (see the module docstring); ``device`` default: CUDA if any."""
    folder = Path(path)
    doc_path = folder / "model.json" if folder.is_dir() else folder
    if not doc_path.is_file():
        raise RewardModelError(f"no reward model at {path} (expected a folder with model.json)")
    folder = doc_path.parent
    try:
        doc = json.loads(doc_path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RewardModelError(f"cannot read {doc_path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise RewardModelError(f"{doc_path} is not a prefrl reward model")
    version = doc.get("version")
    if not isinstance(version, int) or version > MODEL_VERSION:
        raise RewardModelError(f"{doc_path} has format version {version!r}; this prefrl reads "
                               f"<= {MODEL_VERSION} (upgrade prefrl)")
    try:
        configs, env_id, clip_len = doc["members"], str(doc["env_id"]), int(doc["clip_len"])
        weights = folder / str(doc.get("weights", WEIGHTS_FILE))
        obs_space = space_from_json(doc["observation_space"])
        act_space = space_from_json(doc["action_space"])
        transform = doc.get("obs_transform")
    except (KeyError, TypeError, ValueError) as e:
        raise RewardModelError(f"{doc_path}: missing or bad field {e}") from None
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as e:
        raise RewardModelError(f"cannot read weights {weights}: {e}") from None
    try:
        ens = RewardEnsemble.from_checkpoint(configs, state, device)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RewardModelError(f"weights {weights} do not match model.json: {msg}") from None
    known = {"format", "version", "env_id", "clip_len", "observation_space", "action_space",
             "obs_transform", "members", "weights", "normalisation", "reference"}
    meta = {k: v for k, v in doc.items() if k not in known}
    reference = _load_reference(folder, doc.get("reference"), obs_space, act_space, clip_len)
    return RewardModel(ens, obs_space, act_space, env_id, clip_len, obs_transform=transform,
                       meta=meta, reference=reference)


def _load_reference(folder: Path, entry: Any, obs_space: gym.Space, act_space: gym.Space,
                    clip_len: int) -> ReferenceClips | None:
    """The model's reference clips (``model.json`` ``"reference"``), checked; None if none."""
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise RewardModelError(f"{folder}/model.json: bad field 'reference' {entry!r}")
    path = folder / Path(entry["file"]).name  # never outside the model folder
    try:
        with np.load(path, allow_pickle=False) as z:
            ref = ReferenceClips(np.asarray(z["obs"]), np.asarray(z["acts"]),
                                 np.asarray(z["true_return"], np.float64))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise RewardModelError(f"cannot read reference clips {path}: {e}") from None
    why = ref.check(obs_space, act_space, clip_len)
    if why:
        raise RewardModelError(f"reference clips {path} do not fit the model: {why}")
    return ref
