"""Data loss (issue #15 part 1): concurrent writers, environment errors, unreadable folders, damaged members.

No mocks: the failures are produced for real (a second writer on the same ``--out``, temps deleted under a running
unit as a concurrent run's cleanup did, an input removed after listing, a folder the user cannot list, a zip
member whose bytes are flipped).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES

from sardata.atomic import remove_stale_temps
from sardata.errors import IngestEnvironmentError, OutputLockedError
from sardata.ingest import UnitTask as _Task
from sardata.ingest import ingest, load_ingest, process_unit
from sardata.outlock import LOCK_FILE, output_lock
from sardata.sim.sar_targets import write_demo_dataset
from sardata.sources._registry import get_source


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root, per_class=2, size=16)
    return root / "jpeg"


def _status(out: Path) -> dict[tuple[str, str | None], str]:
    return {(r["src_path"], r["src_member"]): r["status"] for r in load_ingest(out)[1].to_pylist()}


# ------------------------------------------------------------------------------------------ output lock
def test_second_writer_is_refused_naming_the_holder(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with output_lock(out, "ingest"):
        with pytest.raises(OutputLockedError, match=rf"pid {os.getpid()} .*started"):
            ingest("mstar", demo, out)
        assert not (out / "units").exists()  # refused before touching anything (no temp cleanup)
    ref = ingest("mstar", demo, out)  # the lock is free again
    assert ref.files["ok"] > 0 and not (out / LOCK_FILE).exists()


def test_build_shards_takes_the_lock(demo: Path, tmp_path: Path) -> None:
    from sardata.shards.build import build_shards

    ingest("mstar", demo, tmp_path / "ing")
    with output_lock(tmp_path / "ds"), pytest.raises(OutputLockedError, match="in use by pid"):
        build_shards([tmp_path / "ing"], tmp_path / "ds")
    assert build_shards([tmp_path / "ing"], tmp_path / "ds").samples > 0


def test_kill_9_leaves_no_stale_lock(demo: Path, tmp_path: Path) -> None:
    """flock is released by the kernel when the holder dies, even by SIGKILL: the leftover file is harmless."""
    out = tmp_path / "out"
    code = "import os, sys\nfrom sardata.outlock import output_lock\nwith output_lock(sys.argv[1]):\n    os.kill(os.getpid(), 9)"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], check=False)
    assert proc.returncode == -9 and (out / LOCK_FILE).exists()
    assert ingest("mstar", demo, out).files["ok"] > 0


def test_forked_worker_does_not_keep_the_lock(tmp_path: Path) -> None:
    """Pool workers are forked while the lock is held; one orphaned by a kill -9 of its parent must not keep
    the output locked (the child closes its inherited descriptor at fork)."""
    out = tmp_path / "out"
    r, w = os.pipe()
    with output_lock(out):
        pid = os.fork()
        if pid == 0:  # a worker that outlives its parent's hold on the lock
            os.read(r, 1)
            os._exit(0)
    try:
        with output_lock(out):
            pass
    finally:
        os.write(w, b"x")
        os.waitpid(pid, 0)


def test_concurrent_cli_runs_lose_nothing(demo: Path, tmp_path: Path, sardata_cmd: list[str]) -> None:
    """Two `sardata ingest` at once into one --out: each either finishes or fails cleanly (exit 1, naming the
    holder); a rerun then equals an uninterrupted run, with no rejected file."""
    ref = ingest("mstar", demo, tmp_path / "ref")
    out = tmp_path / "out"
    cmd = [*sardata_cmd, "ingest", "mstar", str(demo), "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [(p.wait(), p.stderr.read()) for p in procs]
    for rc, err in done:
        assert rc == 0 or (rc == 1 and "in use by pid" in err), err
    again = ingest("mstar", demo, out)
    assert again.files == ref.files and again.n_rejected == 0
    assert (out / "sources.parquet").read_bytes() == (tmp_path / "ref" / "sources.parquet").read_bytes()


# ------------------------------------------------------------------------------------------ environment errors
def _task(root: Path, rel: str) -> _Task:
    path = root / rel
    return _Task(rel, str(path), path.stat().st_size if path.exists() else 10, None, None)


def _first_jpeg(root: Path) -> str:
    return str(next(p for p in sorted(root.rglob("*.jpeg"))).relative_to(root))


def test_temp_deleted_by_a_concurrent_cleanup_leaves_the_file_pending(demo: Path, tmp_path: Path) -> None:
    """The original bug: another run's stale-temp cleanup deleted this unit's in-flight temp, and the
    FileNotFoundError was committed as a rejection forever. The adapter below is the real MSTAR adapter; after
    decoding it runs that very cleanup on the output while the unit's temp is open."""
    out = tmp_path / "out"
    out.mkdir()
    base = get_source("mstar")

    class CleanedUnderneath(base):  # type: ignore[misc, valid-type]
        def read(self, unit):  # noqa: ANN001, ANN202
            items = list(super().read(unit))
            assert remove_stale_temps(out) >= 1  # the unit's temp was there, and is gone now
            return items

    task = _task(demo, _first_jpeg(demo))
    with pytest.raises(IngestEnvironmentError, match=r"stopped, not rejected.*writing the output failed"):
        process_unit(CleanedUnderneath(demo), out, "fp", task)
    assert not list(out.rglob("*.zip")) and not list(out.rglob(".tmp-*"))  # nothing committed: still pending
    row = process_unit(base(demo), out, "fp", task)
    assert row["status"] == "ok" and not row["resumed"]


def test_input_vanished_after_listing_is_pending_not_rejected(demo: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(demo, root)
    task = _task(root, _first_jpeg(root))
    os.unlink(task.path)
    with pytest.raises(IngestEnvironmentError, match="vanished"):
        process_unit(get_source("mstar")(root), tmp_path / "out", "fp", task)
    assert not list((tmp_path / "out").rglob("*.zip"))


def test_unwritable_output_is_an_environment_error(demo: Path, tmp_path: Path) -> None:
    """A file where the store's folder must go: ENOTDIR/EEXIST on our own output, never the input's fault."""
    out = tmp_path / "out"
    task = _task(demo, _first_jpeg(demo))
    out.mkdir()
    (out / "units").write_text("not a folder")
    with pytest.raises(IngestEnvironmentError, match=task.rel.replace("/", ".")):
        process_unit(get_source("mstar")(demo), out, "fp", task)


def test_truncated_image_is_still_a_content_rejection(demo: Path, tmp_path: Path) -> None:
    """PIL raises OSError("image file is truncated") for a cut JPEG: that is the input's fault -> rejected."""
    root = tmp_path / "data"
    shutil.copytree(demo, root)
    rel = _first_jpeg(root)
    data = (root / rel).read_bytes()
    (root / rel).write_bytes(data[: len(data) // 2])
    r = ingest("mstar", root, tmp_path / "out")
    assert r.n_rejected == 1 and r.rejected[0][0] == rel


def test_retry_rejected_and_overwrite(demo: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(demo, root)
    (root / _first_jpeg(root)).write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    first = ingest("mstar", root, out)
    total = sum(first.files.values())
    assert first.n_rejected == 1
    assert ingest("mstar", root, out).resumed_units == total  # a plain rerun trusts the committed rejection
    retried = ingest("mstar", root, out, retry_rejected=True)
    assert retried.resumed_units == total - 1 and retried.n_rejected == 1  # re-attempted (still bad)
    assert ingest("mstar", root, out, overwrite=True).resumed_units == 0  # --overwrite starts clean


# ------------------------------------------------------------------------------------------ unreadable folders
NOBODY = 65534


@pytest.fixture
def as_nobody() -> Iterator[Path]:
    """A world-readable scratch folder, and the effective uid switched to ``nobody`` while the test body runs.

    Tests run as root, and root lists a chmod-000 folder anyway; ``nobody`` gets the real EACCES, exactly as a
    user does on a shared disk. ``seteuid`` is undone in the teardown (root keeps its saved uid)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the nobody user")
    scratch = Path(tempfile.mkdtemp(prefix="sardata-nobody-"))
    scratch.chmod(0o777)
    try:
        yield scratch
    finally:
        os.seteuid(0)
        for dirpath, dirnames, _ in os.walk(scratch):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
        shutil.rmtree(scratch)


def test_unreadable_class_folder_is_a_rejected_row_and_exit_3(demo: Path, as_nobody: Path) -> None:
    from typer.testing import CliRunner

    from sardata.cli import app

    root = as_nobody / "data"
    shutil.copytree(demo, root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    locked = sorted(p for p in root.rglob("*") if p.is_dir() and any(p.glob("*.jpeg")))[0]
    n_hidden = len(list(locked.iterdir()))
    locked.chmod(0)
    out = as_nobody / "out"
    rel = str(locked.relative_to(root))
    warm = CliRunner().invoke(app, ["ingest", "mstar", str(demo), "--out", str(as_nobody / "warm")])
    assert warm.exit_code == 0  # imports everything as root: the interpreter's own files may be closed to nobody
    os.seteuid(NOBODY)
    result = CliRunner().invoke(app, ["ingest", "mstar", str(root), "--out", str(out)])
    os.seteuid(0)
    assert result.exit_code == 3, result.output
    assert f"rejected {rel}: unreadable_dir" in result.output
    rows = {r["src_path"]: r for r in load_ingest(out)[1].to_pylist()}
    assert rows[rel]["status"] == "rejected" and rows[rel]["reason"] == "unreadable_dir"
    assert "Permission denied" in rows[rel]["detail"]
    assert n_hidden > 0 and not any(k.startswith(rel + "/") for k in rows)


# ------------------------------------------------------------------------------------------ damaged zip members
def _flip(zip_path: Path, member: str) -> None:
    """Overwrite 16 bytes in the middle of ``member``'s stored data (after its local header)."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(member)
    with open(zip_path, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        skip = int.from_bytes(fh.read(2), "little") + int.from_bytes(fh.read(2), "little")
        fh.seek(info.header_offset + 30 + skip + info.compress_size // 2)
        old = fh.read(16)
        fh.seek(-len(old), 1)
        fh.write(bytes(b ^ 0xFF for b in old))


def test_opensarship_damaged_member_costs_only_itself(tmp_path: Path) -> None:
    src = FIXTURES / "opensarship" / "OpenSARShip"
    ref = ingest("opensarship", src, tmp_path / "ref")
    root = tmp_path / "data"
    shutil.copytree(src, root)
    scene = sorted(root.glob("*.zip"))[0]
    with zipfile.ZipFile(scene) as zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir() and i.compress_size > 64]
    preview = next(n for n in names if "/Patch_Uint8/" in n or "/Patch_RGB/" in n)
    chip = next(n for n in names if "/Patch_Cal/" in n)
    _flip(scene, preview)
    _flip(scene, chip)
    r = ingest("opensarship", root, tmp_path / "out")
    status = _status(tmp_path / "out")
    rel = scene.name
    assert status[(rel, None)] == "ok" and status[(rel, preview)] == "rejected" and status[(rel, chip)] == "rejected"
    assert r.samples == ref.samples - 1  # every other chip of the scene kept
    reasons = {(m, x["reason"]) for x in load_ingest(tmp_path / "out")[1].to_pylist() if (m := x["src_member"])}
    assert (preview, "damaged_member") in reasons
