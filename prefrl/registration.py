"""The presets' fixed-horizon envs, registered with Gymnasium as ``prefrl/<preset>-v0``.

``import prefrl`` registers them, so other libraries can use the benchmark envs by id: each is
:func:`prefrl.envs.make_env` of the preset (exactly ``horizon`` steps, early terminations as a
penalty, no Gymnasium time limit on top).

>>> import gymnasium, prefrl
>>> env = gymnasium.make("prefrl/Pendulum-v0")
>>> env.spec.id, env.spec.max_episode_steps
('prefrl/Pendulum-v0', None)
>>> "prefrl/Hopper-v0" in env_ids()
True
"""

from __future__ import annotations

import logging
from typing import Any

NAMESPACE = "prefrl"
VERSION = 0
_log = logging.getLogger(__name__)


def env_id(preset_name: str) -> str:
    """Gymnasium id of a preset: ``"Hopper"`` -> ``"prefrl/Hopper-v0"``."""
    return f"{NAMESPACE}/{preset_name}-v{VERSION}"


def make_preset_env(preset: str, seed: int | None = None,
                    render_mode: str | None = None) -> Any:
    """Entry point of the registered ids: the preset's env from :func:`prefrl.envs.make_env`."""
    from prefrl.envs import load_preset, make_env

    return make_env(load_preset(preset), seed=seed, render_mode=render_mode)


def register_envs() -> list[str]:
    """Register every preset of :func:`prefrl.presets.preset_dir` not registered yet; the ids."""
    import gymnasium

    from prefrl.presets import list_presets

    ids = []
    for name in list_presets():
        gid = env_id(name)
        if gid not in gymnasium.registry:
            gymnasium.register(id=gid, entry_point=f"{__name__}:make_preset_env",
                               kwargs={"preset": name}, max_episode_steps=None)
        ids.append(gid)
    return ids


def env_ids() -> list[str]:
    """The ``prefrl/`` ids in Gymnasium's registry."""
    import gymnasium

    return sorted(k for k in gymnasium.registry if k.startswith(f"{NAMESPACE}/"))


def register_quietly() -> None:
    """:func:`register_envs` for ``import prefrl``: a failure is logged, never raised."""
    try:
        register_envs()
    except Exception:  # noqa: BLE001 - no gymnasium or no presets must not break `import prefrl`
        _log.debug("registering the prefrl envs with Gymnasium failed", exc_info=True)
