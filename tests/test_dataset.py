"""Tests for prefrl.reward.dataset: compact clip storage and the incremental labelled set."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefrl.reward.dataset import ClipTable, LabelledPairs
from prefrl.reward.ensemble import RewardEnsemble
from prefrl.reward.trainer import RewardTrainer, TrainerConfig
from prefrl.store import LabelStore, StoreError
from prefrl.types import Answer, Clip, ClipPair, Label
from tests.test_ensemble import ACT, OBS, toy_dataset


@settings(max_examples=40, deadline=None)
@given(t=st.integers(1, 6), k=st.integers(1, 4), hw=st.integers(1, 5), stacked=st.booleans(),
       compress=st.sampled_from([True, False, None]), seed=st.integers(0, 2**16))
def test_clip_table_round_trips_any_clip(t: int, k: int, hw: int, stacked: bool,
                                         compress: bool | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    if stacked:  # channel-first stack of consecutive frames, as the Atari presets produce
        frames = rng.integers(0, 256, (t + k - 1, hw, hw), dtype=np.uint8)
        obs = np.stack([frames[i:i + k] for i in range(t)])
    else:
        obs = rng.integers(0, 256, (t, k, hw, hw), dtype=np.uint8)
    acts = rng.integers(0, 6, t)
    table = ClipTable(compress)
    table.add("a", obs, acts)
    table.add("b", obs[::-1].copy(), acts[::-1].copy())
    for h, (o, a) in {"a": (obs, acts), "b": (obs[::-1], acts[::-1])}.items():
        got_o, got_a = table.get(h)
        assert got_o.dtype == o.dtype and np.array_equal(got_o, o)
        assert np.array_equal(got_a, a)
    both = table.gather(["b", "a", "a"])
    assert np.array_equal(both[0][2], obs) and np.array_equal(both[0][0], obs[::-1])
    size = table.nbytes
    table.remove("b")
    assert 0 < table.nbytes < size and "b" not in table and len(table) == 1


def test_stacked_pixel_clips_are_held_small() -> None:
    rng = np.random.default_rng(0)
    frames = np.zeros((28, 84, 84), np.uint8)
    frames[:, 30:40, 10:20] = rng.integers(0, 255, (28, 1, 1))  # a moving-brightness paddle
    obs = np.stack([frames[i:i + 4] for i in range(25)])
    table = ClipTable()  # auto: uint8 pixels are compressed
    table.add("x", obs, np.zeros(25, np.int64))
    assert table.nbytes < obs.nbytes / 50
    vec = ClipTable()  # auto: float vectors are held as they are
    vec.add("v", rng.normal(size=(50, 17)).astype(np.float32), np.zeros((50, 6), np.float32))
    assert vec.nbytes == 50 * 17 * 4 + 50 * 6 * 4


def pixel_clip(seed: int, t: int = 4) -> Clip:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (t + 3, 8, 8), dtype=np.uint8)
    return Clip(obs=np.stack([frames[i:i + 4] for i in range(t)]),
                acts=rng.integers(0, 6, t), true_rews=rng.normal(size=t).astype(np.float32),
                env_id="ALE/Test-v5")


def test_sync_matches_training_set_and_decodes_only_new_clips(tmp_path) -> None:
    clips = [pixel_clip(i) for i in range(6)]
    with LabelStore(tmp_path / "s.db") as store:
        def label(i: int, j: int, ans: str, who: str = "") -> None:
            qid = store.add_query(ClipPair(clips[i], clips[j]), "random", 0.0)
            store.add_label(Label(clips[i].hash, clips[j].hash, Answer(ans), query_id=qid,
                                  annotator=who))

        label(0, 1, "left")
        label(1, 2, "equal")
        label(2, 3, "skip")  # skips carry no preference
        data = LabelledPairs(compress=True)
        assert data.sync(store) == 3 and len(data) == 2
        dense = store.training_set()
        for got, want in zip(data.pairs(), dense.pairs(), strict=True):
            assert np.array_equal(got, want)
        assert np.array_equal(data.mu, dense.mu) and data.pair_keys == dense.pair_keys
        assert data.dense_nbytes() == dense.dense_nbytes()
        assert data.sync(store) == 0  # nothing new: nothing decoded
        label(3, 4, "right", who="ann")
        assert data.sync(store) == 2 and len(data) == 3  # clip 3 and clip 4 only
        lo, _, ro, _ = data.pairs(np.array([2, 0]))
        assert np.array_equal(lo[0], clips[3].obs) and np.array_equal(ro[1], clips[1].obs)
        store.undo_last_label("ann")
        assert data.sync(store) == 0 and len(data) == 2 and clips[4].hash not in data.clips


def test_sync_rejects_clips_of_another_shape(tmp_path) -> None:
    with LabelStore(tmp_path / "s.db") as store:
        a, b, c = pixel_clip(0), pixel_clip(1), pixel_clip(2, t=5)
        store.add_clips([a, b, c])
        for x, y in [(a, b), (b, c)]:
            store.add_label(Label(x.hash, y.hash, Answer.LEFT))
        with pytest.raises(StoreError, match="equal-length"):
            LabelledPairs().sync(store)


def test_streamed_training_equals_resident_training() -> None:
    """Fetching pairs batch by batch (big data) trains exactly like holding them all."""
    data = toy_dataset(120)
    stats = []
    for resident in (1 << 30, 0):
        ens = RewardEnsemble.from_spaces(OBS, ACT, seed=3, device="cpu")
        cfg = TrainerConfig(epochs=2, device_data_bytes=resident, forward_max_bytes=2000)
        stats.append(RewardTrainer(ens, cfg, rng=np.random.default_rng(0)).train(data))
    a, b = stats
    np.testing.assert_allclose(a.member_train_loss, b.member_train_loss, rtol=1e-5)
    np.testing.assert_allclose(a.member_val_loss, b.member_val_loss, rtol=1e-5)
    assert a.l2 == b.l2 and a.val_acc == b.val_acc


def test_micro_batches_train_like_whole_batches() -> None:
    """Splitting a batch into forward passes (pixel memory cap) leaves the gradients alone."""
    data = toy_dataset(150)
    stats = []
    for cap in (1 << 30, 1500):  # 1500 bytes: 4 pairs per forward pass, 16 per batch of 64
        ens = RewardEnsemble.from_spaces(OBS, ACT, seed=5, device="cpu")
        cfg = TrainerConfig(epochs=2, forward_max_bytes=cap)
        stats.append(RewardTrainer(ens, cfg, rng=np.random.default_rng(1)).train(data))
    a, b = stats
    np.testing.assert_allclose(a.member_train_loss, b.member_train_loss, rtol=1e-4)
    np.testing.assert_allclose(a.member_val_loss, b.member_val_loss, rtol=1e-4)
