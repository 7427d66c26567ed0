"""Atari: the preprocessed ALE envs of the paper's seven games, and score masking.

:func:`make_atari_env` builds an ``ALE/<Game>-v5`` env with the standard preprocessing (84x84
grey frames, frame skip 4 with max-pooling of the last two frames, up to 30 no-ops at reset,
4 stacked frames as one uint8 ``(4, 84, 84)`` observation) inside
:class:`~prefrl.envs.FixedHorizon`: neither a lost life nor game over ends an episode (the game
is reset in place, as in Christiano et al. 2017), and ``info["inner_episode"]`` reports each
game's score.

The reward model must not read the score off the screen, so :func:`reward_observation_fn` gives
a function that blacks out :data:`SCORE_REGIONS` in what the reward model sees and in recorded
clips (the policy still sees whole frames).

>>> import numpy as np
>>> hide = reward_observation_fn("ALE/Pong-v5")
>>> obs = np.full((4, 84, 84), 200, np.uint8)
>>> masked = hide(obs)
>>> int(masked[:, 0:9].max()), int(masked[:, 9:].min()), int(obs.min())  # a copy
(0, 200, 200)
>>> reward_observation_fn("Pendulum-v1") is None
True
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import gymnasium
import numpy as np

if TYPE_CHECKING:
    from prefrl.envs import EnvPreset

_log = logging.getLogger(__name__)

ATARI_FPS = 60
"""Frames per second of the emulated console (NTSC)."""
FRAME_SKIP = 4
"""Emulator frames per agent step (the action is repeated; the last two frames max-pooled)."""
SCREEN_SIZE = 84
"""Height and width of a preprocessed frame."""
FRAME_STACK = 4
"""Frames stacked into one observation (channel-first)."""
NOOP_MAX = 30
"""At most this many no-op steps after each reset (random start states)."""

GAMES = ("BeamRider", "Breakout", "Enduro", "Pong", "Qbert", "Seaquest", "SpaceInvaders")
"""The paper's seven Atari games (each has a preset in ``envs/``)."""

Box = tuple[int, int, int, int]

SCORE_REGIONS: dict[str, list[Box]] = {
    # (row0, row1, col0, col1), half-open, in the 84x84 preprocessed frame. Measured by writing
    # scores into the game's RAM (SCORE_RAM) and diffing the frames that follow, plus a pixel
    # of margin; checked visually on saved frames (see tests/test_atari.py).
    "Pong": [(0, 9, 0, 84)],  # both players' scores, above the top wall (digits rows 0-8)
    "Breakout": [(1, 6, 16, 44)],  # 3 digits at rows 2-5, cols 18-41; lives stay visible
    "BeamRider": [
        (3, 8, 30, 59),  # 6 digits at rows 4-7, cols 32-56; "SECTOR nn" below stays visible
        (11, 16, 8, 19),  # enemies left in this sector: counts down with every reward
    ],
    "Enduro": [(63, 78, 24, 60)],  # the dashboard: odometer, day, cars left to pass (the score)
    "Qbert": [(1, 6, 12, 40)],  # digits at rows 2-5, cols 17-37; lives icons below stay visible
    "Seaquest": [(2, 8, 28, 58)],  # digits at rows 3-6, cols 30-55; lives below stay visible
    "SpaceInvaders": [(3, 9, 0, 36)],  # player 1's score, rows 4-7, cols 2-33
}
"""Per game, boxes of the preprocessed frame that show the score (or a counter of rewards)."""

SCORE_RAM: dict[str, tuple[int, ...]] = {
    "Pong": (13, 14),  # computer's and player's points, binary (0-20; 21 ends the game)
    "Breakout": (76, 77),
    "BeamRider": (11, 10, 9),
    "Enduro": (44, 43),  # cars left to pass today (the reward counts cars passed)
    "Qbert": (89, 90, 91),
    "Seaquest": (56, 57, 58),
    "SpaceInvaders": (102, 104),
}
"""RAM bytes holding each game's score, most significant first, two decimal digits (BCD) per
byte except Pong. Found by probing: writing one makes ALE report a reward. Used to render
frames at chosen scores, to measure and test :data:`SCORE_REGIONS`."""


def game_name(env_id: str) -> str:
    """The game of an ALE id: ``"ALE/Pong-v5"`` -> ``"Pong"`` (also ``PongNoFrameskip-v4``).

    >>> game_name("ALE/SpaceInvaders-v5"), game_name("BreakoutNoFrameskip-v4")
    ('SpaceInvaders', 'Breakout')
    """
    name = env_id.split("/", 1)[-1].split("-", 1)[0]
    for suffix in ("NoFrameskip", "Deterministic"):
        name = name.removesuffix(suffix)
    return name


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` is an ALE id (``ALE/...``)."""
    return env_id.startswith("ALE/")


def score_mask(env_id: str) -> np.ndarray:
    """Bool ``(84, 84)``: True where :data:`SCORE_REGIONS` hides pixels; unknown game -> error.

    >>> m = score_mask("ALE/Breakout-v5")
    >>> m.shape, int(m.sum()), bool(m[3, 20]), bool(m[40, 40])
    ((84, 84), 140, True, False)
    """
    game = game_name(env_id)
    if game not in SCORE_REGIONS:
        raise ValueError(f"no score region measured for {env_id!r}; known: {', '.join(GAMES)}")
    mask = np.zeros((SCREEN_SIZE, SCREEN_SIZE), bool)
    for r0, r1, c0, c1 in SCORE_REGIONS[game]:
        mask[r0:r1, c0:c1] = True
    return mask


def mask_score(obs: np.ndarray, env_id: str) -> np.ndarray:
    """A copy of ``obs`` (``(..., 84, 84)``: a frame, a stack, a batch) with the score set to 0."""
    obs = np.asarray(obs)
    if obs.shape[-2:] != (SCREEN_SIZE, SCREEN_SIZE):
        raise ValueError(f"expected frames of shape (..., 84, 84), got {obs.shape}")
    out = obs.copy()
    for r0, r1, c0, c1 in SCORE_REGIONS[game_name(env_id)]:
        out[..., r0:r1, c0:c1] = 0
    return out


def reward_observation_fn(env_id: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """What the reward model sees of an observation: Atari frames with the score blacked out.

    Returns a function taking ``(4, 84, 84)`` or ``(N, 4, 84, 84)`` (any ``(..., 84, 84)``)
    uint8 observations and returning masked copies; None for non-Atari ids (use observations
    as they are), and for Atari games without a measured score region (with a warning).
    """
    if not is_atari(env_id):
        return None
    game = game_name(env_id)
    if game not in SCORE_REGIONS:
        _log.warning("no score region measured for %s: the reward model sees the score", env_id)
        return None
    return functools.partial(mask_score, env_id=env_id)  # picklable, unlike a closure


def write_score_ram(env: gymnasium.Env, values: Sequence[int]) -> None:
    """Write one value per :data:`SCORE_RAM` byte (0-99, Pong 0-20) into the emulator's RAM.

    The next step draws that score (and reports the change as reward).
    """
    spec = env.spec or env.unwrapped.spec
    if spec is None:
        raise ValueError("the env has no spec: cannot tell which game it is")
    game = game_name(spec.id)
    ram = SCORE_RAM[game]
    if len(values) != len(ram):
        raise ValueError(f"{game} keeps its score in {len(ram)} bytes, got {len(values)} values")
    ale = env.unwrapped.ale  # type: ignore[attr-defined]
    for addr, v in zip(ram, values, strict=True):
        if not 0 <= v <= (20 if game == "Pong" else 99):
            raise ValueError(f"score byte value {v} out of range for {game}")
        ale.setRAM(addr, v if game == "Pong" else (v // 10) * 16 + v % 10)


def make_atari_env(
    preset: EnvPreset, *, seed: int | None = None, render_mode: str | None = None
) -> gymnasium.Env:
    """Build ``preset``'s Atari env, preprocessed and wrapped in ``FixedHorizon``.

    ALE with ``frameskip=1`` (the preprocessing skips frames), ``repeat_action_probability =
    preset.sticky_actions`` (ALE's default 0.25 when unset) and the minimal action set; then
    ``AtariPreprocessing`` (no-op reset up to 30, frame skip 4, 84x84 grey, uint8, no terminal
    on life loss), ``FrameStackObservation(4)`` and ``FixedHorizon(preset.horizon,
    preset.termination_penalty)``. Needs ``opencv-python-headless`` (for the resize).
    """
    from prefrl.envs import FixedHorizon, _make_inner

    kwargs: dict = {"frameskip": 1, "full_action_space": False}
    if preset.sticky_actions is not None:
        kwargs["repeat_action_probability"] = float(preset.sticky_actions)
    env = _make_inner(preset.env_id, render_mode, **kwargs)
    try:
        env = gymnasium.wrappers.AtariPreprocessing(
            env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=SCREEN_SIZE,
            terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False,
        )
    except gymnasium.error.DependencyNotInstalled as e:
        env.close()
        raise ValueError(f"cannot make {preset.env_id!r}: {e} (pip install "
                         "opencv-python-headless)") from e
    env = gymnasium.wrappers.FrameStackObservation(env, stack_size=FRAME_STACK)
    env = FixedHorizon(env, preset.horizon, preset.termination_penalty,
                       termination=preset.termination, seed=seed)
    if seed is not None:
        env.action_space.seed(seed)
        env.observation_space.seed(seed)
    return env
