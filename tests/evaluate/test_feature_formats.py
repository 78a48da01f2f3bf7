import json

import h5py
import numpy as np
import pandas as pd
import pytest

from hico_bench.errors import UserError
from hico_bench.evaluate.feature_formats import (
    assemble_gtad_hdf5,
    bmn_pool,
    gtad_keys,
    read_npy_features,
    snippet_centres,
    write_bmn_csv,
    write_gtad_hdf5,
    write_npy_features,
)


def slow_bmn_pool(feats, fps, stride, num_bins=100, samples_per_bin=3):
    """BMN's poolData, written as plain loops with numpy's own linear interpolation per channel."""
    feats = np.asarray(feats, dtype=np.float64)
    T, C = feats.shape
    st = stride / fps
    x = [st / 2 + i * st for i in range(T)]
    covered = T * st
    out = np.zeros((num_bins, C))
    for b in range(num_bins):
        xmin = max(x[0] + 0.0001, b / num_bins * covered)
        xmax = min(x[-1] - 0.0001, (b + 1) / num_bins * covered)
        if xmax < x[0] or xmin > x[-1]:
            continue
        step = (xmax - xmin) / (samples_per_bin - 1)
        samples = [xmin + step * i for i in range(samples_per_bin)]
        for c in range(C):
            out[b, c] = np.mean([np.interp(s, x, feats[:, c]) for s in samples])
    return out


@pytest.mark.parametrize("T,fps,stride,num_bins", [(7, 25.0, 16, 20), (150, 29.97, 16, 100), (2, 30.0, 8, 100)])
def test_bmn_pool_matches_slow_reference(T, fps, stride, num_bins):
    feats = np.random.default_rng(T).normal(size=(T, 5)).astype(np.float32)
    got = bmn_pool(feats, fps=fps, stride=stride, num_bins=num_bins)
    assert got.shape == (num_bins, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, slow_bmn_pool(feats, fps, stride, num_bins), rtol=1e-5, atol=1e-6)


def test_bmn_pool_constant_is_constant_inside_and_zero_outside():
    # 10 snippets of 1 s (stride 16 at 16 fps): centres 0.5 .. 9.5, covered time 10 s, bins of 0.1 s.
    feats = np.full((10, 3), 2.5, dtype=np.float32)
    got = bmn_pool(feats, fps=16.0, stride=16)
    outside = [0, 1, 2, 3, 96, 97, 98, 99]  # bins ending before 0.5 s or starting after 9.5 s
    inside = [b for b in range(100) if b not in outside]
    np.testing.assert_array_equal(got[outside], 0.0)
    np.testing.assert_allclose(got[inside], 2.5, rtol=1e-6)


def test_bmn_pool_linear_ramp_gives_the_value_at_the_clipped_bin_middle():
    T = 40
    ramp = np.arange(T, dtype=np.float64)
    feats = np.stack([ramp, 2 * ramp + 1], axis=1)
    got = bmn_pool(feats, fps=8.0, stride=16)  # st = 2 s, covered 80 s, 0.8 s bins
    st, first, last = 2.0, 1.0, 79.0  # snippet centres 1, 3, ..., 79 s
    np.testing.assert_array_equal(got[[0, 99]], 0.0)  # bin 0 ends at 0.8 s, bin 99 starts at 79.2 s
    for b in range(1, 99):
        lo = max(first + 1e-4, b * 0.8)
        hi = min(last - 1e-4, (b + 1) * 0.8)
        k = ((lo + hi) / 2 - st / 2) / st  # the ramp at the middle of the three samples
        np.testing.assert_allclose(got[b], [k, 2 * k + 1], rtol=1e-5, atol=1e-5)
    assert got.shape == (100, 2)


def test_bmn_pool_single_snippet_is_repeated():
    got = bmn_pool(np.array([[1.0, -2.0]]), fps=30.0, stride=16)
    np.testing.assert_array_equal(got, np.tile([[1.0, -2.0]], (100, 1)))


def test_npy_features_round_trip(tmp_path):
    feats = np.random.default_rng(0).normal(size=(12, 6))
    meta = {"stride": 16, "frames_per_snippet": 16, "fps": 30.0, "duration": 6.5, "note": "kept"}
    path = write_npy_features(tmp_path, "abc_DEF-12", feats, meta)
    assert path == tmp_path / "v_abc_DEF-12.npy"
    sidecar = json.loads((tmp_path / "v_abc_DEF-12.json").read_text())
    assert sidecar == {**meta, "feature_dim": 6, "num_snippets": 12}
    arr = np.load(path)
    assert arr.dtype == np.float32 and arr.shape == (12, 6)
    got, got_meta = read_npy_features(tmp_path, "abc_DEF-12")
    np.testing.assert_array_equal(got, feats.astype(np.float32))
    assert got_meta == sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v_abc_DEF-12.json", "v_abc_DEF-12.npy"]


def test_npy_features_checks_metadata(tmp_path):
    with pytest.raises(ValueError, match="frames_per_snippet"):
        write_npy_features(tmp_path, "a", np.zeros((3, 2)), {"stride": 16, "fps": 30.0, "duration": 1.0})
    with pytest.raises(ValueError, match="feature_dim"):
        write_npy_features(
            tmp_path, "a", np.zeros((3, 2)),
            {"stride": 16, "frames_per_snippet": 16, "fps": 30.0, "duration": 1.0, "feature_dim": 4},
        )
    with pytest.raises(UserError, match="v_missing.npy"):
        read_npy_features(tmp_path, "missing")


def test_snippet_centres():
    meta = {"stride": 8, "frames_per_snippet": 16, "fps": 16.0, "num_snippets": 4}
    np.testing.assert_allclose(snippet_centres(meta), [0.5, 1.0, 1.5, 2.0])


def test_bmn_csv_layout(tmp_path):
    pooled = bmn_pool(np.random.default_rng(1).normal(size=(30, 8)), fps=30.0, stride=16)
    path = write_bmn_csv(tmp_path, "vid1", pooled)
    assert path == tmp_path / "csv_mean_100" / "v_vid1.csv"
    assert path.read_text().splitlines()[0] == ",".join(f"f{i}" for i in range(8))
    data = np.loadtxt(path, dtype=np.float32, delimiter=",", skiprows=1)  # mmaction2's reader
    assert data.shape == (100, 8)
    np.testing.assert_allclose(data, pooled, rtol=1e-6, atol=1e-7)
    df = pd.read_csv(path)  # BMN's reader
    assert list(df.columns) == [f"f{i}" for i in range(8)] and df.shape == (100, 8)


def test_gtad_hdf5_is_appendable_and_resumable(tmp_path):
    path = tmp_path / "feats" / "csv_mean_100.hdf5"
    a, b = np.ones((100, 4)), np.arange(20.0).reshape(5, 4)
    assert write_gtad_hdf5(path, {"a": a, "b": b}) == ["a", "b"]
    # a resumed export: "a" is already there (kept as it was), "c" is new
    assert write_gtad_hdf5(path, {"a": np.zeros((100, 4)), "c": np.full((7, 4), 3.0)}) == ["c"]
    assert write_gtad_hdf5(path, {"b": b}) == []
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == ["v_a", "v_b", "v_c"]
        np.testing.assert_array_equal(f["v_a"][:], a)
        np.testing.assert_array_equal(f["v_b"][:], b)
        assert f["v_c"].shape == (7, 4) and f["v_c"].dtype == np.float32
    assert [p.name for p in path.parent.iterdir()] == ["csv_mean_100.hdf5"]  # no temporary file left


def test_gtad_file_assembled_from_the_per_video_files(tmp_path, monkeypatch):
    from hico_bench.evaluate import feature_formats

    rng = np.random.default_rng(0)
    arrays = {f"id{i}": rng.standard_normal((3 + i, 5)).astype(np.float32) for i in range(4)}
    meta = {"stride": 16, "frames_per_snippet": 16, "fps": 30.0, "duration": 9.0}
    for vid, arr in arrays.items():
        write_npy_features(tmp_path, vid, arr, meta)
    path = tmp_path / "gtad.h5"
    assert gtad_keys(path) is None
    write_gtad_hdf5(path, {"stale": np.zeros((2, 5))})  # an older file: replaced, not added to
    assert assemble_gtad_hdf5(path, tmp_path, ["id2", "id0", "id3"]) == 3
    assert gtad_keys(path) == {"v_id0", "v_id2", "v_id3"}
    with h5py.File(path, "r") as f:
        for key in f:
            assert f[key].dtype == np.float32
            np.testing.assert_array_equal(f[key][:], arrays[key[2:]])

    # an assembly that fails half-way leaves the file as it was and no temporary behind
    def broken(feat_dir, vid):
        if vid == "id1":
            raise UserError("feature file is broken.")
        return read_npy_features(feat_dir, vid)

    monkeypatch.setattr(feature_formats, "read_npy_features", broken)
    with pytest.raises(UserError):
        assemble_gtad_hdf5(path, tmp_path, ["id0", "id1"])
    assert gtad_keys(path) == {"v_id0", "v_id2", "v_id3"}
    assert not list(tmp_path.glob(".tmp-*"))


def test_gtad_keys_of_a_file_that_is_not_hdf5_is_one_sentence(tmp_path):
    path = tmp_path / "gtad.h5"
    path.write_text("not hdf5")
    with pytest.raises(UserError, match=r"G-TAD feature file .*gtad.h5 exists but is not a readable HDF5 file"):
        gtad_keys(path)
