"""``fjo link batch``: every incoming record in the output, progress per step, clear errors."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fjo.cli import app
from fjo.link_batch import CSV_COLUMNS, BatchInputError, encode_rows, read_csv, run_batch
from synth.population import SPINE_EXTRA_COLUMNS, SynthConfig, generate

runner = CliRunner()


def _write(path: Path, rows: list[dict[str, str]], cols: tuple[str, ...]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    d = tmp_path_factory.mktemp("batch")
    data = generate(SynthConfig(seed=3, spine_size=1_500, incoming_size=300))
    spine = _write(d / "spine.csv", data.spine, CSV_COLUMNS + SPINE_EXTRA_COLUMNS)
    incoming = _write(d / "incoming.csv", data.incoming, CSV_COLUMNS)
    return spine, incoming, data.truth


def test_every_incoming_record_gets_a_row_with_its_best_candidate_and_status(
    files: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    spine, incoming, truth = files
    steps: dict[str, tuple[int, int]] = {}
    out = tmp_path / "out.csv"
    run_batch(
        spine, incoming, out, processes=1, progress=lambda s, d, t: steps.__setitem__(s, (d, t))
    )
    rows = read_csv(out)
    assert [r["incoming_id"] for r in rows] == list(truth)
    statuses = {int(r["status"]) for r in rows}
    assert statuses & {1, 4, 39, 50} and statuses & {90, 91, 98}  # links and non-links
    for r in rows:
        p = float(r["match_probability"])
        assert 0.0 <= p <= 1.0
        if int(r["status"]) in (1, 4, 39, 50):
            assert r["spine_id"] and r["spine_id"] == r["candidate_id"]
        else:
            assert r["spine_id"] == ""
    # Below the accept threshold the best candidate is still there, to apply another one.
    below = [r for r in rows if int(r["status"]) in (90, 91, 98)]
    assert below and all(r["candidate_id"] for r in below)
    right = sum(1 for r in rows if r["spine_id"] and truth[r["incoming_id"]] == r["spine_id"])
    assert right > 0.8 * sum(1 for v in truth.values() if v)
    # Each step reported its progress through to the end.
    for step in ("encode spine", "encode incoming", "index", "train", "link"):
        done, total = steps[step]
        assert done == total > 0, step


def test_a_missing_column_is_named_before_anything_is_encoded(
    files: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    spine, incoming, _ = files
    rows = read_csv(incoming)
    cut = _write(tmp_path / "cut.csv", rows, tuple(c for c in CSV_COLUMNS if c != "postcode"))
    with pytest.raises(BatchInputError, match=r"cut\.csv: missing column\(s\): postcode"):
        run_batch(spine, cut, tmp_path / "out.csv", processes=1)
    assert not (tmp_path / "out.csv").exists()


def test_empty_and_repeated_ids_are_refused_with_their_line(tmp_path: Path) -> None:
    row = dict.fromkeys(CSV_COLUMNS, "") | {"id": "A1", "surname": "Jones"}
    path = _write(tmp_path / "dup.csv", [row, row], CSV_COLUMNS)
    with pytest.raises(BatchInputError, match=r"dup\.csv, line 3: id 'A1' repeats"):
        read_csv(path, required=CSV_COLUMNS)
    path = _write(tmp_path / "empty.csv", [row, row | {"id": " "}], CSV_COLUMNS)
    with pytest.raises(BatchInputError, match=r"empty\.csv, line 3: empty id"):
        read_csv(path, required=CSV_COLUMNS)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing column", "missing column(s): nhs_number"),
        ("no output folder", "does not exist"),
        ("bad model", "not a linkage model JSON"),
    ],
)
def test_the_command_gives_a_usage_error_on_one_line(
    case: str, expected: str, files: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    spine, incoming, _ = files
    args = {"--spine": str(spine), "--incoming": str(incoming), "--out": str(tmp_path / "o.csv")}
    if case == "missing column":
        cols = tuple(c for c in CSV_COLUMNS if c != "nhs_number")
        args["--incoming"] = str(_write(tmp_path / "i.csv", read_csv(incoming), cols))
    elif case == "no output folder":
        args["--out"] = str(tmp_path / "missing" / "o.csv")
    else:
        (tmp_path / "m.json").write_text('{"version": "x"}')
        args["--model"] = str(tmp_path / "m.json")
    result = runner.invoke(
        app, ["link", "batch", "--no-progress", *(x for kv in args.items() for x in kv)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["batch", "train", "report"])
def test_a_missing_input_file_is_typers_usage_error_before_the_command_runs(
    command: str, files: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    spine, incoming, _ = files
    nope = str(tmp_path / "nope.csv")
    args = {
        "batch": ["--spine", nope, "--incoming", str(incoming), "--out", str(tmp_path / "o")],
        "train": ["--spine", str(spine), "--incoming", nope, "--model-out", str(tmp_path / "m")],
        "report": ["--predictions", nope, "--out", str(tmp_path / "r")],
    }[command]
    result = runner.invoke(app, ["link", command, *args])
    assert result.exit_code == 2, result.output
    # Rich wraps the message in a box as wide as the terminal, which can break any word
    # of it (a longer tmp path under xdist did): compare with the box and spacing removed.
    flat = "".join(c for c in result.stderr if c not in "│╭╮╰╯─ \n")
    assert "doesnotexist" in flat and nope in flat, result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "m").exists()


def test_train_shows_a_bar_per_step_through_to_the_end_and_writes_the_model(
    files: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    spine, incoming, _ = files
    model = tmp_path / "model.json"
    result = runner.invoke(
        app,
        ["link", "train", "--spine", str(spine), "--incoming", str(incoming),
         "--model-out", str(model)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "lambda" in json.loads(result.stdout)["dob"]  # the training log, on stdout
    bars = {line[:16].strip(): line for line in result.stderr.splitlines() if line.strip()}
    spine_n, incoming_n = len(read_csv(spine)), len(read_csv(incoming))
    assert f"{spine_n}/{spine_n}" in bars["encode spine"]
    assert f"{incoming_n}/{incoming_n}" in bars["encode incoming"]
    assert f"{spine_n}/{spine_n}" in bars["index"]
    assert "1/1" in bars["train"]
    assert model.read_text().startswith("{")


def test_the_command_writes_the_predictions_and_a_summary(
    files: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    spine, incoming, truth = files
    out = tmp_path / "o.csv"
    result = runner.invoke(
        app,
        ["link", "batch", "--spine", str(spine), "--incoming", str(incoming), "--out", str(out),
         "--processes", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"status_counts"' in result.stdout
    assert len(read_csv(out)) == len(truth)


def test_the_batch_layout_with_its_caches_equals_the_link_domains_own(
    files: tuple[Path, Path, dict[str, str]],
) -> None:
    from services.link.domain import KeySchema, default_model

    spine, _, _ = files
    rows = read_csv(spine)[:400] * 2  # the second pass is served from the caches
    key = hashlib.sha256(b"fjo batch layout test").digest()
    model = default_model()
    fast = encode_rows(rows, key, model=model)
    plain = encode_rows(rows, key)
    schema = KeySchema(model)
    assert [c for _, c in fast] == [schema.compact(r) for r in plain]


def _answers(decisions: list) -> list[tuple]:
    """What a batch answers for each record: its link, status and probability."""
    return [(d.record_id, d.spine_id, d.status, d.probability) for d in decisions]


def test_a_spine_encoded_to_column_chunks_links_as_the_same_spine_record_by_record(
    files: tuple[Path, Path, dict[str, str]],
) -> None:
    from fjo.link_batch import encode_columns, link_records
    from services.link.domain import default_model

    spine, incoming, _ = files
    key = hashlib.sha256(b"fjo batch columns test").digest()
    model = default_model()
    spine_rows, incoming_rows = read_csv(spine), read_csv(incoming)
    half = len(spine_rows) // 2
    chunks = encode_columns(spine_rows[:half], key, model) + encode_columns(
        spine_rows[half:], key, model
    )
    assert [len(c) for c in chunks] == [half, len(spine_rows) - half]
    tuples = encode_rows(spine_rows, key, model=model)
    inc = encode_rows(incoming_rows, key, model=model)

    def decisions(spine_keys: list) -> list[tuple]:
        return _answers(link_records(spine_keys, inc, processes=1).decisions)

    by_columns = decisions(chunks)
    assert by_columns == decisions(tuples)
    assert sum(1 for d in by_columns if d[1]) > len(inc) // 2


def test_training_and_linking_in_two_processes_give_one_processs_model_and_links(
    files: tuple[Path, Path, dict[str, str]],
) -> None:
    from fjo.link_batch import link_records
    from services.link.domain import default_model

    spine, incoming, _ = files
    key = hashlib.sha256(b"fjo batch processes test").digest()
    model = default_model()
    tuples = encode_rows(read_csv(spine), key, model=model)
    inc = encode_rows(read_csv(incoming), key, model=model)
    one = link_records(tuples, inc, processes=1)
    two = link_records(tuples, inc, processes=2)
    assert two.model == one.model
    assert two.training_log == one.training_log
    assert _answers(two.decisions) == _answers(one.decisions)
