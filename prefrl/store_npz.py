"""Read an exported ``clips.npz`` safely: the index, each array's header, then clip by clip.

The archive is read as a zip, never with pickle: each ``.npy`` header's dtype (plain numbers
only) and shape are checked against the member's size before any array is allocated, every
member must be listed in ``__index__`` and every listed array present, and a decoded clip must
hash to its name. Errors are :class:`~prefrl.store_validate.ExportError` naming the member
(``<hash>/obs.npy``) or the index field (``clips[3].step``).
"""

from __future__ import annotations

import lzma
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prefrl.store_codec import clip_from_arrays
from prefrl.store_validate import _HASH, ExportError, _Fields, _json_object
from prefrl.types import FORMAT_VERSION, Clip

MAX_CLIP_BYTES = 1 << 30  # all decoded arrays of one clip; a clip is a few MB at most
MAX_INDEX_BYTES = 1 << 30  # the JSON index, 4 bytes a character (~600 B a clip)
_ZIP_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error,
               lzma.LZMAError, NotImplementedError, RuntimeError)
_INDEX_KEYS = {"hash", "env_id", "source_run", "step", "render_state"}


@dataclass(frozen=True)
class IndexEntry:
    """One clip as listed in ``clips.npz``'s ``__index__``."""

    pos: int
    env_id: str
    source_run: str
    step: int
    render_state: tuple[str, ...]


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype


class ClipArchive:
    """An open ``clips.npz`` whose index and array headers are valid; :meth:`clip` decodes one.

    Opening reads only the index and each member's ``.npy`` header, never array data.
    """

    INDEX = "__index__.npy"

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise ExportError(path, "is missing")
        try:
            self._zf = zipfile.ZipFile(path)
        except _ZIP_ERRORS as e:
            raise ExportError(path, f"is corrupt or not a zip archive ({e})") from e
        try:
            self._members = self._read()
        except BaseException:
            self._zf.close()
            raise

    def __enter__(self) -> ClipArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zf.close()

    def _fail(self, msg: str, member: str | None = None, field: str | None = None) -> ExportError:
        return ExportError(self.path, msg, member=member, field=field)

    def _read(self) -> dict[str, dict[str, _Member]]:
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in self._zf.infolist():
            name = info.filename
            if name in infos:
                raise self._fail("appears twice in the archive", name)
            if info.flag_bits & 1:
                raise self._fail("is encrypted", name)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self._fail(f"uses unsupported compression {info.compress_type}", name)
            infos[name] = info
        if self.INDEX not in infos:
            raise self._fail("is missing: not a prefrl clips file", self.INDEX)
        self.export_id, self.index = self._read_index(infos[self.INDEX])
        members: dict[str, dict[str, _Member]] = {}
        for h, meta in self.index.items():
            arrays: dict[str, _Member] = {}
            for k in ["obs", "acts", "true_rews"] + [f"rs_{n}" for n in meta.render_state]:
                name = f"{h}/{k}.npy"
                if name not in infos:
                    raise self._fail("is missing (its clip is listed in __index__)", name)
                arrays[k] = self._header(infos.pop(name))
            self._check_lengths(h, arrays)
            sizes = {m.info.filename: m.info.file_size for m in arrays.values()}
            if sum(sizes.values()) > MAX_CLIP_BYTES:
                raise self._fail(f"the clip's arrays hold {sum(sizes.values())} bytes, over the "
                                 f"limit of {MAX_CLIP_BYTES} bytes per clip",
                                 max(sizes, key=sizes.__getitem__))
            members[h] = arrays
        for name in infos.keys() - {self.INDEX}:
            raise self._fail("is not listed in __index__", name)
        return members

    def _npy_header(self, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype, int]:
        """(shape, dtype, size of the data) from a member's .npy header; reads no data."""
        try:
            with self._zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"npy format version {version} is not supported")
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
                return tuple(shape), dtype, info.file_size - f.tell()
        except (*_ZIP_ERRORS, TypeError) as e:
            raise self._fail(f"bad .npy header ({e})", info.filename) from e

    def _header(self, info: zipfile.ZipInfo, kinds: str = "biuf") -> _Member:
        """A member's dtype and shape, checked against its size before anything is allocated."""
        limit = MAX_INDEX_BYTES if kinds == "U" else MAX_CLIP_BYTES
        name = info.filename
        shape, dtype, size = self._npy_header(info)
        if dtype.hasobject or dtype.kind not in kinds or dtype.fields or dtype.subdtype:
            raise self._fail(f"dtype {dtype} is not allowed (plain numbers only, no objects)"
                             if kinds == "biuf" else f"dtype {dtype} is not a string", name)
        if any(type(d) is not int or d < 0 for d in shape):
            raise self._fail(f"bad shape {shape}", name)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > limit:
            raise self._fail(f"header declares shape {shape} {dtype} ({nbytes} bytes), over the "
                             f"limit of {limit} bytes", name)
        if nbytes != size:
            raise self._fail(f"header declares shape {shape} {dtype} ({nbytes} bytes) but the "
                             f"member holds {size} bytes of data", name)
        return _Member(info, shape, dtype)

    def _check_lengths(self, h: str, arrays: dict[str, _Member]) -> None:
        t = arrays["obs"].shape[0] if arrays["obs"].shape else 0
        for k, m in arrays.items():
            want = (t,) if k == "true_rews" else None
            if t < 1 or not m.shape or m.shape[0] != t or (want and m.shape != want):
                raise self._fail(f"shape {m.shape} does not fit the clip (obs has {t} >= 1 steps;"
                                 f" every array needs that leading length, true_rews is 1-D)",
                                 m.info.filename)

    def _read_member(self, m: _Member) -> np.ndarray:
        try:
            with self._zf.open(m.info) as f:
                a = np.lib.format.read_array(f, allow_pickle=False)
                if f.read(1):  # reading to the end also checks the CRC
                    raise ValueError("data after the array")
        except (*_ZIP_ERRORS, TypeError) as e:
            raise self._fail(f"cannot read the array ({e})", m.info.filename) from e
        return a

    def _read_index(self, info: zipfile.ZipInfo) -> tuple[str | None, dict[str, IndexEntry]]:
        m = self._header(info, kinds="U")
        if m.shape != ():
            raise self._fail(f"must be a 0-d string array, got shape {m.shape}", info.filename)
        return _parse_index(self.path, str(self._read_member(m)[()]))

    def clip(self, h: str) -> Clip:
        """Decode clip ``h`` and check its arrays (finite numbers) and its content hash."""
        meta, arrays = self.index[h], {}
        for k, m in self._members[h].items():
            a = self._read_member(m)
            if k in ("obs", "acts", "true_rews") and a.dtype.kind == "f" and \
                    not np.isfinite(a).all():
                raise self._fail("holds NaN or infinite numbers", m.info.filename)
            arrays[k] = a
        try:
            clip = clip_from_arrays(arrays, meta.env_id, meta.source_run, meta.step)
        except ValueError as e:
            raise self._fail(f"clip {h}: {e}", self.INDEX, f"clips[{meta.pos}]") from e
        if clip.hash != h:
            raise self._fail(f"clip {h} is corrupt: its env_id and arrays hash to {clip.hash}",
                             self.INDEX, f"clips[{meta.pos}].hash")
        return clip


def _parse_index(path: Path, text: str) -> tuple[str | None, dict[str, IndexEntry]]:
    def fail(key: str | None, msg: str) -> ExportError:
        return ExportError(path, msg, member=ClipArchive.INDEX, field=key)

    doc = _json_object(text, fail)
    f = _Fields(doc, fail, {"format", "version", "clips", "export_id"})
    if doc.get("format") != "prefrl-clips":
        raise fail("format", f"not a prefrl clips file (format {doc.get('format')!r:.40})")
    version = f.get("version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise fail("version", f"format version {version!r:.40} is not in 1..{FORMAT_VERSION}")
    export_id = f.string("export_id") if "export_id" in doc else None
    clips = f.get("clips")
    if not isinstance(clips, list):
        raise fail("clips", "must be a list")
    index: dict[str, IndexEntry] = {}
    for i, c in enumerate(clips):
        def cfail(key: str | None, msg: str, i: int = i) -> ExportError:
            return fail(f"clips[{i}]" + (f".{key}" if key else ""), msg)

        if not isinstance(c, dict):
            raise cfail(None, "must be a JSON object")
        cf = _Fields(c, cfail, _INDEX_KEYS)
        h = cf.string("hash", pattern=_HASH)
        if h in index:
            raise cfail("hash", f"clip {h} is listed twice (also clips[{index[h].pos}])")
        rs = cf.get("render_state")
        if not isinstance(rs, list) or not all(
                isinstance(n, str) and n and "/" not in n for n in rs) or len(set(rs)) != len(rs):
            raise cfail("render_state", f"must be a list of distinct names, got {rs!r:.60}")
        index[h] = IndexEntry(i, cf.string("env_id"), cf.string("source_run"), cf.integer("step"),
                              tuple(rs))
    return export_id, index
