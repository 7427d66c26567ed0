"""How the label store turns a clip into bytes and back (one compressed ``.npz`` blob a clip).

The blob holds ``obs``, ``acts``, ``true_rews`` and the render state as ``rs_<key>``; no object
arrays, loaded with ``allow_pickle=False``. Decoding checks that the clip hashes to the hash it
is stored under, so a corrupt or swapped blob is a :class:`StoreError`, never a wrong clip.

>>> import numpy as np
>>> from prefrl.types import Clip
>>> c = Clip(obs=np.zeros((3, 2), np.float32), acts=np.ones((3, 1), np.float32),
...          true_rews=np.arange(3, dtype=np.float32), env_id="demo")
>>> decode_clip(encode_clip(c), ("demo", "", 0), c.hash, "here").hash == c.hash
True
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

from prefrl.store_schema import StoreError
from prefrl.types import Clip

_DECODE_ERRORS = (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile,
                  zlib.error)


def clip_arrays(clip: Clip) -> dict[str, np.ndarray]:
    """The clip's arrays by stored name; ValueError for object arrays (they cannot be stored)."""
    arrays = {"obs": clip.obs, "acts": clip.acts, "true_rews": clip.true_rews}
    arrays.update({f"rs_{k}": v for k, v in clip.render_state.items()})
    for k, a in arrays.items():
        if a.dtype.hasobject:
            raise ValueError(f"clip {clip.hash}: array {k!r} has object dtype; cannot store it")
    return arrays


def encode_clip(clip: Clip) -> bytes:
    """The clip's arrays as one compressed ``.npz`` blob."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **clip_arrays(clip))  # type: ignore[arg-type]
    return buf.getvalue()


def clip_from_arrays(arrays: Mapping[str, np.ndarray], env_id: str, source_run: str,
                     step: int) -> Clip:
    """Inverse of :func:`clip_arrays`: the clip with these stored arrays and metadata."""
    return Clip(obs=arrays["obs"], acts=arrays["acts"], true_rews=arrays["true_rews"],
                env_id=env_id, source_run=source_run, step=step,
                render_state={k[3:]: v for k, v in arrays.items() if k.startswith("rs_")})


def decode_clip(blob: bytes, meta: tuple[str, str, int], expect: str, where: str,
                render_state: bool = True) -> Clip:
    """Inverse of :func:`encode_clip` (``render_state=False`` skips it); StoreError if corrupt."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if render_state or not k.startswith("rs_")}
        clip = clip_from_arrays(arrays, str(meta[0]), str(meta[1]), int(meta[2]))
        if clip.hash != expect:
            raise StoreError(
                f"clip {expect} in {where} is corrupt (its content hashes to {clip.hash})")
        return clip
    except _DECODE_ERRORS as e:
        raise StoreError(f"clip {expect} in {where} is corrupt: {e!r}") from e
