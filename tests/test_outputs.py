"""Output safety (issue #15) for every output flag of every command: sweep --json / --csv /
--plot and reconcile --rows / --plot never write over an input of the same command, refuse an
existing file unless --force, and write atomically (a failure midway leaves the old file and no
temporary file behind)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from mantile_core.cli import main
from mantile_core.model import DATA

SWEEP = ["sweep", "--hardware", "h100", "--tp", "1", "--batch", "1,2", "--input-len", "128", "--output-len", "16"]
HEADER = ["gpu_model", "framework", "precision", "input_seq_len", "output_seq_len", "tensor_parallel",
          "expert_parallel", "concurrency", "throughput_tokens_per_sec_per_gpu", "output_throughput_per_gpu",
          "mean_time_to_first_token_sec", "mean_time_per_output_token_sec", "mean_end_to_end_latency_sec"]
ROW = ["h100", "vllm", "bf16", "128", "16", "1", "1", "2", "900.5", "450.2", "0.05", "0.01", "0.3"]

# (command line builder, output flag): every output flag of every command
SWEEP_FLAGS = ["--json", "--csv", "--plot"]
RECONCILE_FLAGS = ["--rows", "--plot"]


def needs(flag: str) -> None:
    if flag == "--plot":
        pytest.importorskip("matplotlib")


@pytest.fixture
def config(tmp_path) -> Path:
    """A copy of a bundled config.json, the model input of the commands."""
    path = tmp_path / "model" / "config.json"
    path.parent.mkdir()
    shutil.copy(DATA / "llama-3.2-1b.json", path)
    return path


@pytest.fixture
def measurements(tmp_path) -> Path:
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerow(ROW)
    return path


def sweep_argv(config: Path, flag: str, target: Path, *extra: str) -> list[str]:
    return [SWEEP[0], str(config), *SWEEP[1:], flag, str(target), *extra]


def reconcile_argv(measurements: Path, config: Path, flag: str, target: Path, *extra: str) -> list[str]:
    return ["reconcile", str(measurements), "--model", str(config), flag, str(target), *extra]


def one_error(capsys, *words: str) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith(("mantile: note:", "mantile: warning:"))]
    assert len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]
    return err[0]


@pytest.mark.parametrize("flag", SWEEP_FLAGS)
@pytest.mark.parametrize("how", ["file", "directory", "link"])
def test_sweep_never_writes_over_its_model_config(capsys, tmp_path, config, flag, how):
    needs(flag)
    before = config.read_bytes()
    model = {"file": config, "directory": config.parent}[how] if how != "link" else tmp_path / "link.json"
    if how == "link":
        model.symlink_to(config)
    assert main(sweep_argv(model, flag, config, "--force")) == 2
    one_error(capsys, flag, "is an input of this command")
    assert config.read_bytes() == before
    if how == "file":  # a hard link to the input is the input too
        hard = tmp_path / "hard.json"
        hard.hardlink_to(config)
        assert main(sweep_argv(config, flag, hard, "--force")) == 2
        one_error(capsys, "is an input of this command")
        assert config.read_bytes() == before


@pytest.mark.parametrize("flag", RECONCILE_FLAGS)
def test_reconcile_never_writes_over_its_measurements_or_model(capsys, config, measurements, flag):
    needs(flag)
    before_rows, before_config = measurements.read_bytes(), config.read_bytes()
    for target in (measurements, config):
        assert main(reconcile_argv(measurements, config, flag, target, "--force")) == 2
        one_error(capsys, flag, "is an input of this command")
    assert measurements.read_bytes() == before_rows and config.read_bytes() == before_config


OUTPUTS = [("sweep", flag) for flag in SWEEP_FLAGS] + [("reconcile", flag) for flag in RECONCILE_FLAGS]


@pytest.mark.parametrize("command,flag", OUTPUTS)
def test_an_existing_file_needs_force(capsys, tmp_path, config, measurements, command, flag):
    needs(flag)
    target = tmp_path / ("out.png" if flag == "--plot" else "out.txt")
    target.write_text("precious")

    def argv(*extra):
        if command == "sweep":
            return sweep_argv(config, flag, target, *extra)
        return reconcile_argv(measurements, config, flag, target, *extra)

    assert main(argv()) == 2
    one_error(capsys, flag, "exists: give --force to overwrite it")
    assert target.read_text() == "precious"
    assert main(argv("--force")) == 0
    capsys.readouterr()
    written = target.read_bytes()
    assert written != b"precious" and len(written) > 20
    if flag == "--json":
        assert json.loads(written)["evaluated_points"] == 2
    if flag == "--plot":
        assert written.startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_two_outputs_naming_one_file_are_refused(capsys, tmp_path, config):
    target = tmp_path / "both.out"
    assert main(sweep_argv(config, "--json", target, "--csv", str(target))) == 2
    one_error(capsys, "--csv and --json both name")
    assert not target.exists()


@pytest.mark.parametrize("flag", ["--json", "--csv"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(capsys, monkeypatch, tmp_path, config, flag):
    from mantile_core.sweep import SweepResult

    target = tmp_path / "out.txt"
    target.write_text("old")

    def broken(self, handle, **kwargs):
        handle.write("half a document")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SweepResult, "write_json" if flag == "--json" else "write_csv", broken)
    assert main(sweep_argv(config, flag, target, "--force")) == 2
    one_error(capsys, "No space left on device")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.txt"]


def test_reconcile_rows_written_atomically(capsys, monkeypatch, tmp_path, config, measurements):
    import mantile_core.reconcile as reconcile

    target = tmp_path / "rows-out.csv"
    target.write_text("old")
    monkeypatch.setattr(reconcile, "write_rows_csv", lambda results, handle, fitted=None: (_ for _ in ()).throw(
        OSError(5, "Input/output error")))
    assert main(reconcile_argv(measurements, config, "--rows", target, "--force")) == 2
    one_error(capsys, "Input/output error")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "rows-out.csv", "rows.csv"]


@pytest.mark.parametrize("flag", ["--json", "--csv"])
def test_outputs_into_a_missing_directory_or_onto_a_directory(capsys, tmp_path, config, flag):
    assert main(sweep_argv(config, flag, tmp_path / "missing" / "out")) == 2
    one_error(capsys, "does not exist")
    assert main(sweep_argv(config, flag, tmp_path)) == 2
    one_error(capsys, "is a directory")


def test_stdout_outputs_are_unaffected(capsys, config):
    assert main([SWEEP[0], str(config), *SWEEP[1:], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["evaluated_points"] == 2
