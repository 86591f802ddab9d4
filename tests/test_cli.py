"""The CLI contract: fast help, exit codes 0/1/2/3, one-line errors, tracebacks only with SARDATA_DEBUG=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES


def run(cmd: list[str], *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_help_imports_no_heavy_libraries() -> None:
    code = (
        "import sys\nsys.argv=['sardata','--help']\nfrom sardata.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy=[m for m in ('torch','pyarrow','pandas','timm','webdataset','rasterio') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "ingest" in out.stdout and "HEAVY []" in out.stdout


def test_every_command_group_is_registered(sardata_cmd) -> None:
    out = run(sardata_cmd, "--help").stdout
    for group in ("ingest", "build-shards", "train", "manifest", "bench", "preview", "sim", "sources", "demo"):
        assert group in out


def test_sources_list(sardata_cmd) -> None:
    out = run(sardata_cmd, "sources", "list")
    assert out.returncode == 0 and "mstar" in out.stdout and "sar-acd" in out.stdout and "5class" not in out.stderr


def test_usage_error_exits_2(sardata_cmd, tmp_path: Path) -> None:
    assert run(sardata_cmd, "ingest").returncode == 2
    assert (
        run(sardata_cmd, "ingest", "mstar", str(tmp_path), "--out", str(tmp_path / "o"), "-o", "novalue").returncode
        == 2
    )


def test_domain_error_is_one_line_exit_1(sardata_cmd, tmp_path: Path) -> None:
    out = run(sardata_cmd, "ingest", "nope", str(tmp_path), "--out", str(tmp_path / "o"))
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error: unknown source 'nope'")
    debug = run(sardata_cmd, "ingest", "nope", str(tmp_path), "--out", str(tmp_path / "o"), env={"SARDATA_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_partial_ingest_exits_3_and_prints_reasons(sardata_cmd, tmp_path: Path) -> None:
    out = run(sardata_cmd, "ingest", "mstar", str(FIXTURES / "mstar" / "raw"), "--out", str(tmp_path / "o"))
    assert out.returncode == 3
    assert "checksum_mismatch" in out.stderr and "truncated" in out.stderr and "3 inputs rejected" in out.stderr
    ok = run(sardata_cmd, "ingest", "mstar", str(FIXTURES / "mstar" / "jpeg"), "--out", str(tmp_path / "j"))
    assert ok.returncode == 0 and "8 samples" in ok.stdout


def test_manifest_show_and_validate(sardata_cmd, tmp_path: Path) -> None:
    out = tmp_path / "o"
    run(sardata_cmd, "ingest", "sar-acd", str(FIXTURES / "sar-acd" / "SAR-ACD"), "--out", str(out))
    show = run(sardata_cmd, "manifest", "show", str(out))
    assert show.returncode == 0 and "A220" in show.stdout and "total" in show.stdout
    assert run(sardata_cmd, "manifest", "validate", str(out)).returncode == 0
    data = bytearray((out / "sources.parquet").read_bytes())
    data[100] ^= 1
    (out / "sources.parquet").write_bytes(bytes(data))
    bad = run(sardata_cmd, "manifest", "validate", str(out))
    assert bad.returncode == 1 and "sources.parquet" in bad.stderr


def test_preview_writes_png(sardata_cmd, tmp_path: Path) -> None:
    run(sardata_cmd, "ingest", "mstar", str(FIXTURES / "mstar" / "jpeg"), "--out", str(tmp_path / "o"))
    out = run(sardata_cmd, "preview", "samples", str(tmp_path / "o"), "--out", str(tmp_path / "s.png"))
    assert out.returncode == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_preview_gr_from_ingest_dir_and_image_file(sardata_cmd, tmp_path: Path) -> None:
    run(sardata_cmd, "ingest", "mstar", str(FIXTURES / "mstar" / "jpeg"), "--out", str(tmp_path / "o"))
    image = FIXTURES / "sar-acd" / "SAR-ACD" / "images" / "A330" / "001.jpg"
    out = run(
        sardata_cmd, "preview", "gr", str(tmp_path / "o"), str(image), "--out", str(tmp_path / "g.png"), "-n", "3"
    )
    assert out.returncode == 0 and (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_previews_of_a_built_dataset_show_what_is_stored(sardata_cmd, tmp_path: Path) -> None:
    """Issue 20: `preview samples` on a build-shards output crashed; `preview gr` recomputed GR at the paper radii
    instead of drawing the stored gr.npy."""
    import numpy as np

    from sardata.preview import gr_items
    from sardata.stream.dataset import ShardDataset

    run(sardata_cmd, "ingest", "sar-acd", str(FIXTURES / "sar-acd" / "SAR-ACD"), "--out", str(tmp_path / "o"))
    run(sardata_cmd, "build-shards", str(tmp_path / "o"), "--out", str(tmp_path / "ds"), "--targets", "gr",
        "--size-policy", "resize", "--size", "32")  # fmt: skip
    for kind in ("samples", "gr"):
        out = run(sardata_cmd, "preview", kind, str(tmp_path / "ds"), "--out", str(tmp_path / f"{kind}.png"))
        assert out.returncode == 0, out.stderr
        assert (tmp_path / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
    (name, _, gr, radii), *_ = gr_items(tmp_path / "ds", 1)
    stored = ShardDataset(tmp_path / "ds", split=None)[0]
    assert radii == (1, 1, 2, 2) and name == stored["__key__"] and np.array_equal(gr, stored["gr.npy"])


def test_bench_gr_reports_ratio_rows() -> None:
    from sardata.bench.gr import bench_gr

    rows = bench_gr(size=32, batch=4, dense_batch=1, repeat=1)
    assert rows[0]["device"] == "cpu" and rows[0]["threads"] == 1
    assert all(r["gr_img_s"] > 0 and r["ratio"] == r["gr_img_s"] / r["dense_img_s"] for r in rows)


def test_version_and_python_dash_m() -> None:
    """``sardata --version`` answers without a command, and ``python -m sardata`` is the same entry point."""
    from sardata import __version__

    for cmd in ([sys.executable, "-m", "sardata"], [sys.executable, "-m", "sardata.cli"]):
        out = run(cmd, "--version")
        assert out.returncode == 0 and out.stdout.strip() == f"sardata {__version__}", out.stderr
    assert "build-shards" in run([sys.executable, "-m", "sardata"], "--help").stdout


def test_training_progress_in_a_pipe_is_plain_lines() -> None:
    """Issue 20: trainer bars spammed pipes and logs with carriage-return redraws."""
    import io

    from sardata.cli._options import step_progress

    out = io.StringIO()
    report = step_progress("pretrain x", stream=out, lines=10)
    for step in range(1, 101):
        report(step, 100, {"loss": 1.0 / step})
    text = out.getvalue()
    assert "\r" not in text and len(text.splitlines()) == 10
    assert text.splitlines()[-1].startswith("pretrain x: 100/100 steps (100 %)") and "loss=0.01" in text


def test_short_o_means_option_and_capital_o_means_out() -> None:
    """Issue 20: `-o` was --out under train and --option under ingest; -O is --out everywhere now (train keeps
    -o as a deprecated alias)."""
    from typer.testing import CliRunner

    from sardata.cli import app

    runner = CliRunner()
    for cmd in (["ingest"], ["build-shards"], ["train", "pretrain"], ["train", "finetune"], ["sim", "pdw"]):
        assert "-O" in runner.invoke(app, [*cmd, "--help"], terminal_width=200).output, cmd
    assert "--option" in runner.invoke(app, ["ingest", "--help"], terminal_width=200).output


def test_train_o_is_a_hidden_deprecated_alias_of_out(capsys, tmp_path: Path) -> None:
    """Issue 20: `-o` means --option (KEY=VALUE) in sardata; the train commands' old `-o` for --out still works,
    hidden from --help and with a warning, and a missing --out is a usage error (exit 2), as when it was required."""
    from typer.testing import CliRunner

    from sardata.cli import app
    from sardata.cli._options import out_or_legacy

    assert out_or_legacy(tmp_path, None) == tmp_path and capsys.readouterr().err == ""
    assert out_or_legacy(None, tmp_path) == tmp_path
    assert "-o for --out is deprecated" in capsys.readouterr().err
    runner = CliRunner()
    recipe = str(Path(__file__).parents[1] / "pipelines" / "mae-pretrain-cpu-small.yaml")
    for cmd in (["train", "pretrain"], ["train", "finetune"]):
        assert " -o " not in runner.invoke(app, [*cmd, "--help"], terminal_width=200).output
        missing = runner.invoke(app, [*cmd, "-r", recipe])
        assert missing.exit_code == 2 and "'--out' / '-O'" in missing.output
        both = runner.invoke(app, [*cmd, "-r", recipe, "-o", str(tmp_path / "a"), "-O", str(tmp_path / "b")])
        assert both.exit_code == 2 and "disagree" in both.output


def test_training_bar_on_a_terminal_rates_only_what_it_timed() -> None:
    """Issue 20: a fine-tune bar showed "18558.87 step/s" (a resumed or already-advanced first report counted as
    done in no time). The bar starts at the first report's count, so the rate covers the steps it timed."""
    import io
    import re
    import time

    from sardata.cli._options import step_progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    report = step_progress("pretrain x", stream=out)
    report(5000, 5010, {})  # resumed at step 5000
    for step in range(5001, 5011):
        time.sleep(0.01)
        report(step, 5010, {"loss": 1.0})
    rates = [float(r) for r in re.findall(r"([0-9.]+)step/s", out.getvalue())]
    assert rates and max(rates) < 1000  # ~100 step/s here; counting the 5000 resumed steps gave millions
