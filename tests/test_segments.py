from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefrl.segments import SegmentBuffer, TrajectoryAccumulator
from prefrl.types import Clip, pair_key

T = 4


def traj(length: int, base: float = 0.0, obs_dim: int = 3):
    """Trajectory whose every entry identifies (base, t)."""
    t = np.arange(length, dtype=np.float32)
    obs = np.stack([t + base + k / 10 for k in range(obs_dim)], axis=1).astype(np.float32)
    acts = (t + base)[:, None].astype(np.float32)
    rews = (1000 * base + t).astype(np.float32)
    rs = {"qpos": obs * 2, "qvel": -(t + base)[:, None]}
    return obs, acts, rews, rs


def clip(i: int, obs_dim: int = 2, length: int = T) -> Clip:
    return Clip(
        obs=np.full((length, obs_dim), i, np.float32),
        acts=np.zeros((length, 1), np.float32),
        true_rews=np.full(length, float(i), np.float32),
        env_id="test",
    )


def buf(**kw) -> SegmentBuffer:
    kw.setdefault("rng", np.random.default_rng(0))
    return SegmentBuffer(T, **kw)


def test_offsets_and_content_match_trajectory_slice():
    b = buf(capacity=10_000, clips_per_trajectory=3)
    length = 11
    seen_offsets = set()
    for k in range(60):
        obs, acts, rews, rs = traj(length, base=k)
        clips = b.add_trajectory(
            obs, acts, rews, env_id="E", render_state=rs, source_run="r1", start_step=100
        )
        assert len(clips) == 3
        offs = [c.step - 100 for c in clips]
        assert offs == sorted(set(offs))  # distinct, sorted
        for c, off in zip(clips, offs, strict=True):
            assert 0 <= off <= length - T
            seen_offsets.add(off)
            sl = slice(off, off + T)
            np.testing.assert_array_equal(c.obs, obs[sl])
            np.testing.assert_array_equal(c.acts, acts[sl])
            np.testing.assert_array_equal(c.true_rews, rews[sl])
            assert set(c.render_state) == {"qpos", "qvel"}
            for key in rs:
                np.testing.assert_array_equal(c.render_state[key], rs[key][sl])
            assert c.env_id == "E" and c.source_run == "r1" and c.hash in b
    assert seen_offsets == set(range(length - T + 1))  # every offset can come up
    assert len(b) == 180


def test_more_clips_requested_than_offsets():
    b = buf(clips_per_trajectory=10)
    obs, acts, rews, _ = traj(T + 1)
    clips = b.add_trajectory(obs, acts, rews, env_id="E")
    assert sorted(c.step for c in clips) == [0, 1]


def test_short_trajectory_gives_no_clip():
    b = buf()
    obs, acts, rews, rs = traj(T - 1)
    assert b.add_trajectory(obs, acts, rews, env_id="E", render_state=rs) == []
    assert len(b) == 0 and b.nbytes == 0


def test_mismatched_lengths_raise():
    b = buf()
    obs, acts, rews, rs = traj(10)
    with pytest.raises(ValueError, match="disagree on length.*acts 9"):
        b.add_trajectory(obs, acts[:-1], rews, env_id="E")
    with pytest.raises(ValueError, match="disagree on length"):
        b.add_trajectory(obs, acts, rews[:-2], env_id="E")
    with pytest.raises(ValueError, match="qpos"):
        b.add_trajectory(obs, acts, rews, env_id="E", render_state={"qpos": rs["qpos"][:5]})
    with pytest.raises(ValueError, match="true_rews"):
        b.add_trajectory(obs, acts, np.zeros((10, 2)), env_id="E")
    assert len(b) == 0


def test_add_clip_checks_length_and_ignores_duplicates():
    b = buf()
    with pytest.raises(ValueError, match="length"):
        b.add_clip(clip(0, length=T + 1))
    assert b.add_clip(clip(1)) is True
    nbytes = b.nbytes
    assert b.add_clip(clip(1)) is False
    assert len(b) == 1 and b.nbytes == nbytes == clip(1).nbytes
    assert b.get(clip(1).hash) == clip(1) and clip(1) in b
    with pytest.raises(KeyError):
        b.get("nope")


def test_constructor_validation():
    for kw in ({"capacity": 0}, {"max_bytes": 0}, {"clips_per_trajectory": 0}, {"evict": "lru"}):
        with pytest.raises(ValueError):
            buf(**kw)
    with pytest.raises(ValueError):
        SegmentBuffer(0, rng=np.random.default_rng(0))


def test_clip_larger_than_max_bytes_raises():
    b = buf(max_bytes=10)
    with pytest.raises(ValueError, match="max_bytes"):
        b.add_clip(clip(0))


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 4)), min_size=1, max_size=60),
    capacity=st.integers(1, 12),
    max_clips_bytes=st.one_of(st.none(), st.integers(1, 10)),
    evict=st.sampled_from(["oldest", "least_useful"]),
    seed=st.integers(0, 2**16),
)
def test_caps_always_hold(ids, capacity, max_clips_bytes, evict, seed):
    biggest = clip(0, obs_dim=4).nbytes
    max_bytes = None if max_clips_bytes is None else max_clips_bytes * biggest
    rng = np.random.default_rng(seed)
    b = SegmentBuffer(T, capacity=capacity, max_bytes=max_bytes, evict=evict, rng=rng)
    added: set[str] = set()
    for i, dim in ids:
        c = clip(i, obs_dim=dim)
        b.add_clip(c)
        added.add(c.hash)
        assert len(b) <= capacity
        assert b.nbytes == sum(x.nbytes for x in b.clips())
        if max_bytes is not None:
            assert b.nbytes <= max_bytes
        else:
            assert c.hash in b  # the newest clip is never evicted by a count cap
        if evict == "oldest" and max_bytes is None:
            assert len(b) == min(len(added), capacity)
        if evict == "least_useful" and len(b) > 1:
            hs = [x.hash for x in b.clips()]
            b.update_scores(hs, rng.normal(size=len(hs)).tolist())


def test_oldest_evicts_fifo():
    b = buf(capacity=3)
    for i in range(6):
        b.add_clip(clip(i))
    assert [float(c.true_rews[0]) for c in b.clips()] == [3.0, 4.0, 5.0]
    assert [float(c.true_rews[0]) for c in b.recent(2)] == [4.0, 5.0]
    assert len(b.recent(10)) == 3 and b.recent(0) == []
    b.update_scores([clip(3).hash], [-100.0])  # scores do not matter for FIFO
    b.add_clip(clip(6))
    assert clip(3) not in b and clip(4) in b


def test_least_useful_evicts_low_scores_first_and_keeps_fresh():
    b = buf(capacity=4, evict="least_useful")
    for i in range(4):
        b.add_clip(clip(i))
    b.update_scores([clip(0).hash, clip(1).hash, clip(2).hash], [5.0, 1.0, 3.0])
    b.update_scores([clip(0).hash, "unknown"], [2.0, 9.0])  # max is kept; unknown ignored
    assert b.score(clip(0).hash) == 5.0 and b.score(clip(3).hash) == math.inf
    b.add_clip(clip(4))
    assert clip(1) not in b  # lowest score
    b.add_clip(clip(5))
    assert clip(2) not in b
    b.add_clip(clip(6))
    assert clip(0) not in b
    # all remaining are unscored (fresh): the oldest goes first
    assert [float(c.true_rews[0]) for c in b.clips()] == [3.0, 4.0, 5.0, 6.0]
    b.add_clip(clip(7))
    assert clip(3) not in b and clip(7) in b
    with pytest.raises(ValueError):
        b.update_scores([clip(4).hash], [1.0, 2.0])


def test_least_useful_ties_evict_oldest():
    b = buf(capacity=3, evict="least_useful")
    for i in range(3):
        b.add_clip(clip(i))
    b.update_scores([c.hash for c in b.clips()], [1.0, 1.0, 1.0])
    b.add_clip(clip(3))
    b.add_clip(clip(4))
    assert [float(c.true_rews[0]) for c in b.clips()] == [2.0, 3.0, 4.0]


def test_least_useful_scales():
    rng = np.random.default_rng(1)
    b = SegmentBuffer(2, capacity=2000, evict="least_useful", rng=rng)
    t0 = time.perf_counter()
    for i in range(10_000):
        b.add_clip(clip(i, obs_dim=1, length=2))
        if i % 10 == 0:
            hs = [c.hash for c in b.recent(50)]
            b.update_scores(hs, rng.random(len(hs)).tolist())
    assert len(b) == 2000
    assert len(b._heap) <= 3 * len(b) + 64
    assert time.perf_counter() - t0 < 10


def test_sample_pairs_unique_excluded_and_bounded():
    b = buf(capacity=100)
    for i in range(10):
        b.add_clip(clip(i))
    pairs = b.sample_pairs(20)
    keys = [p.key for p in pairs]
    assert len(pairs) == 20 and len(set(keys)) == 20
    assert all(p.left.hash != p.right.hash for p in pairs)
    everything = b.sample_pairs(100)
    assert len(everything) == 45 and len({p.key for p in everything}) == 45
    sides = {(p.left.hash < p.right.hash) for p in everything}
    assert sides == {True, False}  # both orientations occur
    excluded = set(keys[:7])
    rest = b.sample_pairs(100, exclude_keys=excluded)
    assert len(rest) == 38 and not excluded & {p.key for p in rest}
    assert b.sample_pairs(0) == []


def test_sample_pairs_tiny_pools():
    b = buf()
    assert b.sample_pairs(5) == []
    b.add_clip(clip(0))
    assert b.sample_pairs(5) == []
    b.add_clip(clip(1))
    [p] = b.sample_pairs(5)
    assert p.key == pair_key(clip(0).hash, clip(1).hash)


def test_sample_pairs_sparse_path_and_heavy_exclusion():
    b = buf(capacity=1000)
    for i in range(300):
        b.add_clip(clip(i))
    pairs = b.sample_pairs(200)
    assert len({p.key for p in pairs}) == 200
    assert all(p.left.hash != p.right.hash for p in pairs)
    # exclude all but 5 of the 435 pairs of a 30-clip pool: rejection falls back to a full walk
    small = buf()
    for i in range(30):
        small.add_clip(clip(i))
    allkeys = [p.key for p in small.sample_pairs(10_000)]
    assert len(allkeys) == 435
    exclude = set(allkeys[5:])
    got = small.sample_pairs(20, exclude_keys=exclude)
    assert sorted(p.key for p in got) == sorted(allkeys[:5])


def test_sample_pairs_reproducible():
    def run(seed):
        b = buf(capacity=1000)
        for i in range(50):
            b.add_clip(clip(i))
        return [p.key for p in b.sample_pairs(30, rng=np.random.default_rng(seed))]

    assert run(3) == run(3) and run(3) != run(4)


def _roundtrip(d):
    f = io.BytesIO()
    np.savez(f, **d)
    f.seek(0)
    with np.load(f, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("evict", ["oldest", "least_useful"])
def test_state_dict_roundtrip(evict):
    b = buf(capacity=50, evict=evict, clips_per_trajectory=2, rng=np.random.default_rng(5))
    for k in range(20):
        obs, acts, rews, rs = traj(9, base=k, obs_dim=2 + k % 2)  # two shape groups
        b.add_trajectory(obs, acts, rews, env_id=f"E{k % 3}", render_state=rs,
                         source_run="" if k % 2 else "run", start_step=k * 100)
    for i in range(3):
        b.add_clip(clip(100 + i))  # a third group, no render state
    b.update_scores([c.hash for c in b.clips()[:10]], list(range(10)))
    d = b.state_dict()
    assert all(isinstance(v, (np.ndarray, int, str)) for v in d.values())
    b2 = buf(capacity=50, evict=evict, rng=np.random.default_rng(99))
    b2.load_state_dict(_roundtrip(d))
    assert [c.hash for c in b2.clips()] == [c.hash for c in b.clips()]
    for c, c2 in zip(b.clips(), b2.clips(), strict=True):
        assert (c.step, c.env_id, c.source_run) == (c2.step, c2.env_id, c2.source_run)
        assert c.obs.dtype == c2.obs.dtype and c.render_state.keys() == c2.render_state.keys()
        for key in c.render_state:
            np.testing.assert_array_equal(c.render_state[key], c2.render_state[key])
        assert b.score(c.hash) == b2.score(c.hash)
    assert b2.nbytes == b.nbytes
    # identical continuation: same RNG state, same eviction order
    assert [p.key for p in b.sample_pairs(10)] == [p.key for p in b2.sample_pairs(10)]
    for i in range(30):
        b.add_clip(clip(200 + i))
        b2.add_clip(clip(200 + i))
    assert [c.hash for c in b2.clips()] == [c.hash for c in b.clips()]
    # an empty buffer round-trips too; a different clip_len is refused
    empty = buf()
    empty.load_state_dict(_roundtrip(buf().state_dict()))
    assert len(empty) == 0
    with pytest.raises(ValueError, match="clip_len"):
        SegmentBuffer(T + 1, rng=np.random.default_rng(0)).load_state_dict(d)


def test_trajectory_accumulator_three_envs():
    n_envs, max_len, clip_len = 3, 5, 3
    acc = TrajectoryAccumulator(n_envs, max_len)
    windows: dict[int, list[dict]] = {i: [] for i in range(n_envs)}
    episode_start = [0] * n_envs
    for step in range(23):
        for i in range(n_envs):
            obs = np.array([i, step], np.float32)
            acc.append(i, obs, np.array([step * 10 + i]), float(step + i / 10),
                       {"qpos": obs * 2}, step=step)
            w = acc.pop_if_ready(i)
            if w is not None:
                windows[i].append(w)
        if step == 11:  # env 1 ends an episode: flush a long-enough tail, then reset
            w = acc.pop_if_ready(1, min_len=clip_len)
            if w is not None:
                windows[1].append(w)
            acc.reset(1)
            episode_start[1] = step + 1
    for i in (0, 2):
        assert [w["start_step"] for w in windows[i]] == [0, 5, 10, 15]
    # env 1: windows 0-4, 5-9, tail 10-11 (2 steps < clip_len: dropped), then 12-16, 17-21
    assert [w["start_step"] for w in windows[1]] == [0, 5, 12, 17]
    for i in range(n_envs):
        for w in windows[i]:
            s = w["start_step"]
            steps = np.arange(s, s + max_len)
            assert w["obs"].shape == (max_len, 2) and w["obs"].dtype == np.float32
            np.testing.assert_array_equal(w["obs"][:, 1], steps)
            np.testing.assert_array_equal(w["obs"][:, 0], i)
            np.testing.assert_array_equal(w["acts"][:, 0], steps * 10 + i)
            np.testing.assert_allclose(w["true_rews"], steps + i / 10, rtol=1e-6)
            np.testing.assert_array_equal(w["render_state"]["qpos"], w["obs"] * 2)
    assert acc.length(0) == 3  # steps 20-22 still pending
    # a long-enough tail is flushed at an episode end and feeds a SegmentBuffer
    tail = acc.pop_if_ready(0, min_len=clip_len)
    assert tail is not None and tail["start_step"] == 20 and len(tail["obs"]) == 3
    b = SegmentBuffer(clip_len, rng=np.random.default_rng(0))
    [c] = b.add_trajectory(tail["obs"], tail["acts"], tail["true_rews"], env_id="E",
                           render_state=tail["render_state"], start_step=tail["start_step"])
    assert c.step == 20 and acc.length(0) == 0


def test_trajectory_accumulator_copies_and_checks():
    acc = TrajectoryAccumulator(1, 2)
    obs = np.zeros(2)
    acc.append(0, obs, np.zeros(1), 0.0, None, step=0)
    obs[:] = 7  # in-place change by the env must not leak in
    acc.append(0, obs, np.zeros(1), 0.0, None, step=1)
    with pytest.raises(RuntimeError, match="full"):
        acc.append(0, obs, np.zeros(1), 0.0, None, step=2)
    w = acc.pop_if_ready(0)
    assert w is not None and w["obs"][0].tolist() == [0.0, 0.0] and w["render_state"] == {}
    acc.append(0, obs, np.zeros(1), 0.0, {"a": np.zeros(1)}, step=3)
    with pytest.raises(ValueError, match="render_state keys"):
        acc.append(0, obs, np.zeros(1), 0.0, None, step=4)
    with pytest.raises(ValueError):
        TrajectoryAccumulator(0, 3)


def test_trajectory_accumulator_windows_outlive_the_reused_buffers():
    """A popped window is a copy: the next window written into the same buffers leaves it alone."""
    acc = TrajectoryAccumulator(1, 2)
    for s in range(2):
        acc.append(0, np.full(2, s, np.float32), np.full(1, s), float(s), {"q": np.full(3, s)},
                   step=s)
    first = acc.pop_if_ready(0)
    for s in range(2, 4):
        acc.append(0, np.full(2, s, np.float32), np.full(1, s), float(s), {"q": np.full(3, s)},
                   step=s)
    second = acc.pop_if_ready(0)
    assert first is not None and second is not None
    assert first["obs"][:, 0].tolist() == [0, 1] and second["obs"][:, 0].tolist() == [2, 3]
    assert first["render_state"]["q"][:, 0].tolist() == [0, 1]
    assert first["true_rews"].tolist() == [0.0, 1.0] and first["start_step"] == 0
    # a new window may change shape (a new buffer); within a window a change is an error
    acc.append(0, np.zeros(5, np.float32), np.zeros(1), 0.0, None, step=4)
    with pytest.raises(ValueError, match="shapes changed"):
        acc.append(0, np.zeros(2, np.float32), np.zeros(1), 0.0, None, step=5)
