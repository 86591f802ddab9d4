"""RadChar: fixture format, ingest (columns, bad frames, warnings, chunked reads), shards, loader round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import FIXTURES, load_generator

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.shards.build import BuildConfig, build_shards
from sardata.sim.radchar_fixture import BARKER, LABELS_DTYPE, POLYPHASE_BARKER, frames, polyphase_code, write_radchar
from sardata.sources.radchar import RadChar, RadCharOptions
from sardata.store import load_arrays
from sardata.stream.dataset import ShardIterable
from sardata.stream.radar import RadarView

ROOT = FIXTURES / "radchar"
TINY = ROOT / "RadChar" / "RadChar-Tiny.h5"
gen = load_generator("radchar")


def _sidelobe(code: np.ndarray) -> float:
    r = np.correlate(code, code, "full")
    return float(np.abs(np.delete(r, len(code) - 1)).max())


def test_fixture_layout_and_exact_label_dtype() -> None:
    with h5py.File(TINY) as f:
        assert sorted(f) == ["iq", "labels"] and f["iq"].shape == (10, 512) and f["iq"].dtype == np.complex128
        assert f["labels"].dtype == LABELS_DTYPE and f["labels"].dtype.names == (
            "index", "signal_type", "number_of_pulses", "pulse_width", "time_delay", "pulse_repetition_interval",
            "signal_to_noise_ratio",
        )  # fmt: skip
        labels = f["labels"][:]
    assert labels["index"].tolist() == list(range(10))
    assert labels["signal_type"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert labels["signal_to_noise_ratio"].tolist() == [-20, 20] * 5
    with h5py.File(ROOT / "RadChar" / "RadChar-Tiny-c64.h5") as f:
        assert f["iq"].dtype == np.complex64


def test_generator_ranges_codes_and_unit_power() -> None:
    iq, lab = frames(200, seed=5)
    assert np.allclose(np.mean(np.abs(iq) ** 2, axis=1), 1.0)
    assert set(lab["signal_type"]) == {0, 1, 2, 3, 4} and set(lab["number_of_pulses"]) <= {2, 3, 4, 5, 6}
    assert (lab["pulse_width"] >= 10e-6).all() and (lab["pulse_width"] <= 16e-6).all()
    assert (lab["pulse_repetition_interval"] >= 17e-6).all() and (lab["pulse_repetition_interval"] <= 23e-6).all()
    assert (lab["time_delay"] >= 1e-6).all() and (lab["time_delay"] <= 10e-6).all()
    assert lab["signal_to_noise_ratio"].min() >= -20 and lab["signal_to_noise_ratio"].max() <= 20
    for length in POLYPHASE_BARKER:
        code = polyphase_code(length)
        assert _sidelobe(code) <= 1 + 1e-6 and np.abs(code.imag).max() > 0.1  # not binary
    for code in BARKER.values():
        assert _sidelobe(np.asarray(code, float)) <= 1 + 1e-9


def test_ingest_columns_meta_and_arrays(tmp_path: Path) -> None:
    result = ingest("radchar", TINY, tmp_path / "a", options={"iqc": "true"})
    assert result.files == {"ok": 1} and result.samples == 10
    samples, sources = (t.to_pandas() for t in load_ingest(tmp_path / "a"))
    iq, labels = gen.tiny()
    row = samples.set_index("sub_index").loc[7]
    assert row["key"] == "radchar_radchar-tiny-h5-00000007" and row["modality"] == "iq"
    assert (row["label"], row["label_name"], row["signal_type"]) == (3, "frank", "frank")
    lab = labels[7]
    assert row["snr_db"] == lab["signal_to_noise_ratio"] and row["n_pulses"] == lab["number_of_pulses"]
    assert (row["pulse_width_s"], row["pri_s"], row["time_delay_s"]) == (
        lab["pulse_width"], lab["pulse_repetition_interval"], lab["time_delay"],
    )  # fmt: skip
    meta = json.loads(row["meta"])
    assert meta["labels"] == {n: lab[n].item() for n in LABELS_DTYPE.names} and "label_warnings" not in meta
    arrays = load_arrays(tmp_path / "a", row["store_path"])
    assert sorted(arrays) == ["iq", "iqc", "pdw", "toa"]
    np.testing.assert_array_equal(arrays["iq"], np.stack([iq[7].real, iq[7].imag]).astype(np.float32))
    np.testing.assert_array_equal(arrays["iqc"], iq[7])
    np.testing.assert_allclose(arrays["toa"], np.arange(64) * 8 / 3.2e6)
    assert sources[sources["src_member"] == "iq"]["n_samples"].tolist() == [10]  # one member row, not one per frame
    # the complex64 copy gives the same float32 IQ
    ingest("radchar", ROOT / "RadChar" / "RadChar-Tiny-c64.h5", tmp_path / "b")
    b = load_ingest(tmp_path / "b")[0].to_pandas().set_index("sub_index").loc[7]
    np.testing.assert_array_equal(load_arrays(tmp_path / "b", b["store_path"])["iq"], arrays["iq"])


def test_bad_frames_rejected_out_of_range_warned(tmp_path: Path) -> None:
    result = ingest("radchar", ROOT / "bad", tmp_path)
    samples, sources = (t.to_pandas() for t in load_ingest(tmp_path))
    assert result.files == {"ok": 1} and sorted(samples["sub_index"]) == [3, 4]
    rejected = sources[sources["status"] == "rejected"].set_index("src_member")["reason"].to_dict()
    assert rejected == {"iq[0]": "non_finite", "iq[1]": "non_finite", "iq[2]": "unknown_signal_type"}
    warned = json.loads(samples.set_index("sub_index").loc[3, "meta"])
    assert (
        warned["label_warnings"] == ["pulse_repetition_interval"]
        and warned["labels"]["pulse_repetition_interval"] == 16e-6
    )
    assert samples.set_index("sub_index").loc[3, "pri_s"] == 16e-6  # kept as given, never clipped


def _write_raw(path: Path, iq: np.ndarray | None, labels: np.ndarray | None) -> None:
    with h5py.File(path, "w") as f:
        if iq is not None:
            f["iq"] = iq
        if labels is not None:
            f["labels"] = labels


def test_bad_files_rejected_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    iq, labels = frames(4, seed=1)
    _write_raw(root / "short.h5", iq[:, :500], labels)
    _write_raw(root / "nolabels.h5", iq, None)
    wrong = np.zeros(4, [("index", "<i8"), ("signal_type", "<i8")])
    _write_raw(root / "fields.h5", iq, wrong)
    _write_raw(root / "real.h5", iq.real, labels)
    _write_raw(root / "rows.h5", iq, labels[:3])
    (root / "fake.h5").write_bytes(b"not hdf5 at all")
    (root / "notes.txt").write_text("x")
    ingest("radchar", root, tmp_path / "o")
    rows = load_ingest(tmp_path / "o")[1].to_pylist()
    status = {(r["src_path"], r["src_member"]): (r["status"], r["reason"]) for r in rows}
    assert status[("short.h5", None)] == ("rejected", "wrong_frame_length")
    assert status[("nolabels.h5", None)] == ("rejected", "missing_dataset")
    assert status[("fields.h5", None)] == ("rejected", "bad_labels_dtype")
    assert status[("real.h5", None)] == ("rejected", "bad_iq_dtype")
    assert status[("fake.h5", None)] == ("rejected", "bad_format")
    assert status[("notes.txt", None)] == ("skipped", "not_data")
    assert status[("rows.h5", "iq[3]")] == ("rejected", "missing_labels") and status[("rows.h5", "iq")] == ("ok", None)


class _Recorder:
    """A dataset stand-in that records every slice it is asked for."""

    def __init__(self, arr: np.ndarray, log: list[int]) -> None:
        self.arr, self.log, self.shape = arr, log, arr.shape

    def __getitem__(self, sl: slice) -> np.ndarray:
        self.log.append(len(range(*sl.indices(len(self.arr)))))
        return self.arr[sl]


def test_rows_are_read_in_blocks() -> None:
    iq, labels = frames(10, seed=2)
    log: list[int] = []
    src = RadChar(".", RadCharOptions(chunk_rows=3, pdw=False))
    out = list(src._rows(_Recorder(iq, log), _Recorder(labels, log)))
    assert len(out) == 10 and max(log) == 3 and sum(log) == 20  # iq and labels, 4 blocks each


def test_round_trip_cli_shards_loader(tmp_path: Path, sardata_cmd) -> None:
    ing, ds = tmp_path / "ing", tmp_path / "ds"
    subprocess.run([*sardata_cmd, "ingest", "radchar", str(TINY), "--out", str(ing)], check=True, capture_output=True)
    out = subprocess.run([*sardata_cmd, "build-shards", str(ing), "--out", str(ds), "--radarpos20k"],
                         check=True, capture_output=True, text=True)  # fmt: skip
    assert "10 samples" in out.stdout
    iq, labels = gen.tiny()
    seen = {}
    for batch in ShardIterable(ds, global_batch=5, split="train", shuffle=True, seed=3):
        for key, x, cls in zip(batch["__key__"], batch["iq.npy"], batch["cls"], strict=True):
            seen[key] = (x.numpy(), int(cls))
        assert set(batch) >= {"iq.npy", "pdw.npy", "toa.npy", "meta.json", "cls"}
    assert len(seen) == 10
    for i in range(10):
        x, cls = seen[f"radchar_radchar-tiny-h5-{i:08d}"]
        np.testing.assert_array_equal(x, np.stack([iq[i].real, iq[i].imag]).astype(np.float32))
        assert cls == labels["signal_type"][i]
    import pyarrow.parquet as pq

    col = pq.read_table(ds / "samples.parquet", columns=["split_radarpos20k"]).column(0).to_pylist()
    assert col == ["train"] * 10  # fewer than 4,000 per class: all of them
    assert len(ShardIterable(ds, global_batch=5, split="train", view="split_radarpos20k")) == 2
    view = RadarView(train=False)
    batch = next(iter(ShardIterable(ds, global_batch=10, split="train", transform=view)))
    assert tuple(batch["x"].shape) == (10, 2, 512) and float(batch["x"].min()) >= 0 and float(batch["x"].max()) <= 1
    assert (batch["tau"].numpy() == np.arange(64, dtype=np.float32)).all() and bool(batch["valid"].all())


def test_gr_targets_on_radar_data_is_a_config_error(tmp_path: Path) -> None:
    ingest("radchar", TINY, tmp_path / "ing", options={"pdw": "false"})
    with pytest.raises(ConfigError, match="--targets gr needs SAR images"):
        build_shards([tmp_path / "ing"], tmp_path / "ds", BuildConfig(targets=("gr",)))
    with pytest.raises(ConfigError, match="apply to images"):
        build_shards([tmp_path / "ing"], tmp_path / "ds2", BuildConfig(size_policy="resize", size=64))


@pytest.mark.slow
def test_200k_frames_bounded_rss(tmp_path: Path) -> None:
    """A 200,000-frame file (complex64, 800 MB of samples; gzip-compressed on disk) is read in row blocks by the
    adapter with peak RSS far below the data size."""
    from sardata.sim.radchar_fixture import repeat_blocks

    n = 200_000
    path = tmp_path / "RadChar-200k.h5"
    write_radchar(path, repeat_blocks(n, distinct=4, block=8192), n=n, iq_dtype="complex64", compression="gzip")
    # peak RSS = VmHWM of a fresh process (ru_maxrss would carry over the pytest process's peak)
    code = (
        "import re\nfrom sardata.sources.radchar import RadChar, RadCharOptions\n"
        "from sardata.sources._base import FileUnit, Sample\n"
        f"src = RadChar({str(tmp_path)!r}, RadCharOptions(pdw=False))\n"
        f"n = sum(isinstance(s, Sample) for s in src.read(FileUnit('x.h5', {str(path)!r}, 0)))\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print(n, hwm)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    samples, peak_kb = (int(v) for v in out.stdout.split())
    assert samples == n
    assert peak_kb * 1024 < 300e6, f"peak RSS {peak_kb / 1024:.0f} MB for 800 MB of frames"


def test_sample_rows_spool_to_parquet_in_blocks(tmp_path: Path, monkeypatch) -> None:
    """Rows leave memory every ROW_BLOCK samples (several row groups in the pack) and the ingest tables are the
    same; a store of the older layout (one .npz per input) is not trusted: a rerun redoes its inputs and removes
    its files."""
    import shutil
    import zipfile

    import pyarrow.parquet as pq

    import sardata.store as store

    ingest("radchar", TINY.parent, tmp_path / "ref", options={"pdw": "false"})
    monkeypatch.setattr(store, "ROW_BLOCK", 3)
    ingest("radchar", TINY.parent, tmp_path / "small", options={"pdw": "false"})
    ref, small = load_ingest(tmp_path / "ref")[0], load_ingest(tmp_path / "small")[0]
    assert small.num_rows > 3 and small.equals(ref)
    packs = [store.pack_path(tmp_path / "small", p) for p in store.list_packs(tmp_path / "small")]
    groups = {u: pq.ParquetFile(zipfile.ZipFile(u).open(store.ROWS_MEMBER)).num_row_groups for u in packs}
    assert max(groups.values()) >= 2, groups
    shutil.copytree(tmp_path / "small", tmp_path / "old")
    shutil.rmtree(tmp_path / "old" / "units")
    legacy = tmp_path / "old" / store.unit_file("ab" * 16)
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip where the older layout kept a unit
    (tmp_path / "old" / "dataset.json").unlink()  # an interrupted run
    r = ingest("radchar", TINY.parent, tmp_path / "old", options={"pdw": "false"})
    assert r.resumed_units == 0 and load_ingest(tmp_path / "old")[0].equals(ref) and not legacy.exists()
