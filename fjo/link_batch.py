"""Batch linkage of clear-text CSVs: encode with pseudonymise's split, then match with link.

This is the glue the services never share: pseudonymise's ``split`` turns each row into the
same linkage keys the pseudonymise service publishes, and the link domain matches those keys
only. Keys are ephemeral: a fresh master key per run unless one is given, so no encoding of
a batch outlives the run. Used by ``fjo link batch`` and by the benchmarks.

CSV columns: ``id, given_name, surname, date_of_birth (YYYY-MM-DD), sex, postcode, address,
nhs_number``; optional spine columns ``previous_surnames`` and ``previous_postcodes``
(semicolon-separated) are used as the spine's history when present. An unreadable file, a
missing column, an empty or repeated id stop the run before anything is encoded, with one
line naming the file (and the line) and what is wrong (:class:`BatchInputError`).

The output has a row for every incoming record: the linked spine id (empty unless the status
is a link), the best candidate's probability, the status code and the best candidate's id,
review band and below included, so an analyst can choose another threshold.
"""

from __future__ import annotations

import csv
import gc
import json
import multiprocessing as mp
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from services.link.domain import (
    EncodedRecord,
    KeySchema,
    LinkageModel,
    Linker,
    Mapper,
    PartLayouts,
    RecurringKeys,
    SpineIndex,
    default_model,
    train,
)
from services.link.domain.columns import RecordColumns
from services.link.domain.scoring import CompiledModel

__all__ = [
    "CSV_COLUMNS",
    "BatchInputError",
    "BatchResult",
    "Progress",
    "encode_columns",
    "encode_rows",
    "forked_map",
    "link_records",
    "read_csv",
    "run_batch",
]

CSV_COLUMNS = (
    "id",
    "given_name",
    "surname",
    "date_of_birth",
    "sex",
    "postcode",
    "address",
    "nhs_number",
)
"""Columns both files must have (values may be empty, except ``id``)."""

Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called as each step (``encode spine``, ``encode
incoming``, ``index``, ``train``, ``link``) advances; ``total`` is 0 when unknown."""


def _no_progress(step: str, done: int, total: int) -> None:
    return None


class BatchInputError(ValueError):
    """An input file cannot be used; the message is one line naming the file and the fault."""


ROLES = {
    "id": "record_id",
    "given_name": "forename",
    "surname": "surname",
    "date_of_birth": "date_of_birth",
    "sex": "sex",
    "postcode": "postcode",
    "address": "address",
    "nhs_number": "nhs_number",
    "previous_surnames": "previous_surnames",
    "address_history": "address_history",
}

_ENCODER: Any = None


def _make_pseudonymiser(master_key: bytes) -> Any:
    from services.pseudonymise.domain.keys import KeyRing, MasterKey
    from services.pseudonymise.domain.postcode import OnsPostcodeLookup
    from services.pseudonymise.domain.split import Pseudonymiser

    return Pseudonymiser(KeyRing.single(MasterKey(master_key)), OnsPostcodeLookup([]))


_LAYOUTS: PartLayouts | None = None
"""With a model, each recurring key part's layout, and the token ids, id sets and Bloom
bitsets of recurring keys (names, date and postcode parts recur): made afresh with the
encoder, since another key gives other tokens."""


def _init_worker(master_key: bytes, model_json: str | None = None) -> None:
    global _ENCODER, _LAYOUTS
    _ENCODER = _make_pseudonymiser(master_key)
    _LAYOUTS = None
    if model_json:
        schema = KeySchema(LinkageModel.from_json(model_json))
        _LAYOUTS = PartLayouts(schema, RecurringKeys())


def _prepare(row: dict[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {k: (v or None) for k, v in row.items() if k in ROLES}
    prev = row.get("previous_surnames")
    rec["previous_surnames"] = [s for s in (prev or "").split(";") if s]
    pcs = [p for p in (row.get("previous_postcodes") or "").split(";") if p]
    rec["address_history"] = [{"postcode": p} for p in pcs]
    rec.pop("previous_postcodes", None)
    return rec


def _linkage_keys(row: dict[str, str]) -> Any:
    split = _ENCODER.split(
        _prepare(row), source="batch", record_kind="person", roles=ROLES, unknown="drop"
    )
    return split.linkage


def _encode_chunk(rows: Sequence[dict[str, str]]) -> list[Any]:
    """Split each row; with a model, lay its keys out as the compact tuple the index holds
    instead (so the parent process only indexes)."""
    if _LAYOUTS is None:
        return [EncodedRecord.from_keys(row["id"], _linkage_keys(row)) for row in rows]
    # The split's keys in parts (no content half), each recurring part laid out once: the
    # tuple KeySchema.compact makes of the merged keys (test_batch holds it).
    parts, compact = _ENCODER.linkage_parts, _LAYOUTS.compact
    return [(row["id"], compact(parts(_prepare(row), roles=ROLES))) for row in rows]


def _encode_columns(rows: Sequence[dict[str, str]]) -> RecordColumns:
    """Split and lay out each row, then hand back the rows as columns: numpy arrays cross
    the process boundary in one copy, where a million tuples of frozensets and big ints
    would each be pickled, unpickled and converted again by the parent."""
    pairs = _encode_chunk(rows)
    assert _LAYOUTS is not None
    store = RecordColumns(_LAYOUTS.schema, capacity=len(pairs))
    store.append([p[0] for p in pairs], [p[1] for p in pairs], 0)
    return store


def _chunks(rows: Sequence[dict[str, str]], size: int) -> Iterator[Sequence[dict[str, str]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def encode_rows(
    rows: Sequence[dict[str, str]],
    master_key: bytes,
    *,
    processes: int = 1,
    model: LinkageModel | None = None,
    progress: Progress = _no_progress,
    step: str = "encode",
) -> list[Any]:
    """Linkage keys of clear-text rows via pseudonymise's split (rows' ids kept as ids):
    :class:`EncodedRecord` objects, or ``(id, compact tuple)`` pairs laid out for ``model``."""
    model_json = model.to_json() if model is not None else None
    parts = _encoded_parts(rows, master_key, model_json, _encode_chunk, processes, progress, step)
    return [item for part in parts for item in part]


def encode_columns(
    rows: Sequence[dict[str, str]],
    master_key: bytes,
    model: LinkageModel,
    *,
    processes: int = 1,
    progress: Progress = _no_progress,
    step: str = "encode",
) -> list[RecordColumns]:
    """Linkage keys of clear-text rows laid out for ``model`` as index columns, chunk by
    chunk (what :meth:`SpineIndex.build` takes): a spine of millions never exists as tuples."""
    return list(
        _encoded_parts(
            rows, master_key, model.to_json(), _encode_columns, processes, progress, step
        )
    )


def _encoded_parts(
    rows: Sequence[dict[str, str]],
    master_key: bytes,
    model_json: str | None,
    encode_chunk: Callable[[Sequence[dict[str, str]]], Any],
    processes: int,
    progress: Progress,
    step: str,
) -> Iterator[Any]:
    """``encode_chunk`` of each chunk of ``rows``, in order, in this process or a pool."""
    done = 0
    progress(step, 0, len(rows))
    with _mapper(master_key, model_json, processes if len(rows) >= 20_000 else 1) as imap:
        for part in imap(encode_chunk, _chunks(rows, 5000)):
            done += len(part)
            progress(step, done, len(rows))
            yield part


@contextmanager
def _mapper(master_key: bytes, model_json: str | None, processes: int) -> Iterator[Any]:
    """An ordered ``map`` over encoding workers: this process alone, or a forked pool."""
    if processes <= 1:
        _init_worker(master_key, model_json)
        yield map
        return
    ctx = mp.get_context("fork")
    with (
        _no_gc(),
        ctx.Pool(processes, initializer=_init_worker, initargs=(master_key, model_json)) as pool,
    ):
        yield pool.imap


def read_csv(path: str | Path, *, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV; :class:`BatchInputError` if the file cannot be read, lacks one of
    the ``required`` columns, or (when ``id`` is required) has an empty or repeated id."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise BatchInputError(f"{path}: missing column(s): {', '.join(missing)}")
            rows = [dict(r) for r in reader]
    except FileNotFoundError:
        raise BatchInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BatchInputError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise BatchInputError(f"{path}: cannot be read ({exc})") from None
    if "id" in required:
        seen: set[str] = set()
        for line, row in enumerate(rows, start=2):
            rid = (row.get("id") or "").strip()
            if not rid:
                raise BatchInputError(f"{path}, line {line}: empty id")
            if rid in seen:
                raise BatchInputError(f"{path}, line {line}: id {rid!r} repeats an earlier row")
            seen.add(rid)
    return rows


@dataclass
class BatchResult:
    """What a batch run did and how long each step took."""

    decisions: list[Any]
    model: LinkageModel
    timings: dict[str, float] = field(default_factory=dict)
    training_log: dict[str, Any] = field(default_factory=dict)
    pairs_scored: int = 0
    index: Any = None


_TASK: Callable[[Any], Any] | None = None
"""The function a forked pool's workers apply (inherited at the fork, never pickled)."""


def _run_task(item: Any) -> Any:
    assert _TASK is not None
    return _TASK(item)


def forked_map(processes: int) -> Mapper:
    """A :data:`~services.link.domain.estimate.Mapper` over ``processes`` forked workers.

    The function and everything it closes over (the spine index, the compiled model, the
    records) are inherited copy-on-write when the pool forks, so only the items (row
    bounds, chunks of pairs) and the results cross between processes."""

    def mapper(fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        global _TASK
        if processes <= 1 or len(items) < 2:
            yield from map(fn, items)
            return
        _TASK = fn
        try:
            with mp.get_context("fork").Pool(min(processes, len(items))) as pool:
                yield from pool.imap(_run_task, items)
        finally:
            _TASK = None

    return mapper


def _link_slice(
    linker: Linker, ids: list[str], compact: list[tuple], bounds: tuple[int, int]
) -> list[Any]:
    lo, hi = bounds
    return linker.link_many(ids[lo:hi], compact[lo:hi])


def _link_all(
    linker: Linker,
    ids: list[str],
    compact: list[tuple],
    processes: int,
    progress: Progress = _no_progress,
) -> list[Any]:
    """Link every record; with several processes the index is shared copy-on-write (fork)."""
    n = len(ids)
    progress("link", 0, n)
    parts = processes if processes > 1 and n >= 5_000 else 1
    step = max(1, min(2000, -(-n // (parts * 4))))
    bounds = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
    out: list[Any] = []
    for part in forked_map(parts)(partial(_link_slice, linker, ids, compact), bounds):
        out += part
        progress("link", len(out), n)
    return out


@contextmanager
def _no_gc() -> Iterator[None]:
    """No cyclic-GC passes while millions of long-lived tuples are built (they hold no
    cycles; each full pass would rescan them all), then freeze them out of later passes."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


def link_records(
    spine: Iterable[EncodedRecord | tuple[str, tuple]] | Sequence[RecordColumns],
    incoming: Sequence[EncodedRecord | tuple[str, tuple]],
    *,
    model: LinkageModel | None = None,
    train_model: bool = True,
    train_sample: int = 20_000,
    seed: int = 7,
    processes: int = 1,
    progress: Progress = _no_progress,
) -> BatchResult:
    """Build the spine index, estimate the model unless given a trained one, link all."""
    with _no_gc():
        return _link_records(
            spine, incoming, model, train_model, train_sample, seed, processes, progress
        )


def _link_records(
    spine: Iterable[EncodedRecord | tuple[str, tuple]] | Sequence[RecordColumns],
    incoming: Sequence[EncodedRecord | tuple[str, tuple]],
    model: LinkageModel | None,
    train_model: bool,
    train_sample: int,
    seed: int,
    processes: int,
    progress: Progress,
) -> BatchResult:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    model = model or default_model()
    index = _spine_index(model, spine, progress)
    progress("index", len(index), len(index))
    timings["index_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ids = [r.record_id if isinstance(r, EncodedRecord) else r[0] for r in incoming]
    compact_in = [
        index.schema.compact(r) if isinstance(r, EncodedRecord) else r[1] for r in incoming
    ]
    log: dict[str, Any] = {}
    progress("train", 0, 1 if train_model else 0)
    if train_model:
        rng = random.Random(seed)
        sample = (
            compact_in if len(compact_in) <= train_sample else rng.sample(compact_in, train_sample)
        )
        model, log = train(
            model,
            index,
            sample,
            seed=seed,
            version=model.version + "+trained",
            mapper=forked_map(processes),
        )
        index.model = model
        progress("train", 1, 1)
    timings["train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    linker = Linker(CompiledModel(model, index.schema), index)
    linker.refresh()
    decisions = _link_all(linker, ids, compact_in, processes, progress)
    timings["link_s"] = time.perf_counter() - t
    pairs = sum(d.candidates for d in decisions)
    return BatchResult(decisions, model, timings, log, pairs, index)


def _spine_index(model: LinkageModel, spine: Iterable[Any], progress: Progress) -> SpineIndex:
    """The spine's index: built in one go from column chunks (:func:`encode_columns`), or
    record by record from encoded records and compact tuples."""
    if isinstance(spine, Sequence) and spine and isinstance(spine[0], RecordColumns):
        progress("index", 0, sum(len(s) for s in spine))
        return SpineIndex.build(model, spine)
    index = SpineIndex(model)
    total = len(spine) if isinstance(spine, Sequence) else 0
    progress("index", 0, total)
    ids, rows = [], []
    for n, rec in enumerate(spine, start=1):
        if isinstance(rec, EncodedRecord):
            ids.append(rec.record_id)
            rows.append(index.schema.compact(rec))
        else:
            ids.append(rec[0])
            rows.append(rec[1])
        if n % 10_000 == 0:
            progress("index", n, total)
    index.add_many(ids, rows)
    return index


def write_predictions(path: str | Path, decisions: Iterable[Any]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["incoming_id", "spine_id", "match_probability", "status", "candidate_id"])
        for d in decisions:
            w.writerow(
                [
                    d.record_id,
                    d.spine_id or "",
                    f"{d.probability:.6f}",
                    d.status,
                    d.candidate_id or "",
                ]
            )


def run_batch(
    spine_csv: str | Path,
    incoming_csv: str | Path,
    out_csv: str | Path,
    *,
    model_json: str | Path | None = None,
    train_model: bool = True,
    processes: int = 2,
    master_key: bytes | None = None,
    model_out: str | Path | None = None,
    progress: Progress = _no_progress,
) -> BatchResult:
    """Encode both CSVs, link incoming against spine, write predictions; returns timings.

    Every input is checked before the long steps start (:class:`BatchInputError`)."""
    import secrets

    t0 = time.perf_counter()
    key = master_key or secrets.token_bytes(32)
    for target in (out_csv, model_out):
        if target is not None and not Path(target).parent.is_dir():
            raise BatchInputError(f"{target}: folder {Path(target).parent} does not exist")
    model = _read_model(model_json) if model_json else None
    spine_rows = read_csv(spine_csv, required=CSV_COLUMNS)
    incoming_rows = read_csv(incoming_csv, required=CSV_COLUMNS)
    t = time.perf_counter()
    layout = model or default_model()
    spine = encode_columns(
        spine_rows, key, layout, processes=processes, progress=progress, step="encode spine"
    )
    del spine_rows
    incoming = encode_rows(
        incoming_rows,
        key,
        processes=processes,
        model=layout,
        progress=progress,
        step="encode incoming",
    )
    encode_s = time.perf_counter() - t
    result = link_records(
        spine,
        incoming,
        model=model,
        train_model=train_model,
        processes=processes,
        progress=progress,
    )
    write_predictions(out_csv, result.decisions)
    if model_out:
        Path(model_out).write_text(result.model.to_json())
    result.timings["encode_s"] = encode_s
    result.timings["total_s"] = time.perf_counter() - t0
    return result


def _read_model(path: str | Path) -> LinkageModel:
    try:
        return LinkageModel.from_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BatchInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchInputError(f"{path}: cannot be read ({exc})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BatchInputError(f"{path}: not a linkage model JSON ({exc!r})") from None


def summary(result: BatchResult) -> str:
    counts: dict[int, int] = {}
    for d in result.decisions:
        counts[d.status] = counts.get(d.status, 0) + 1
    return json.dumps({"status_counts": dict(sorted(counts.items())), "timings": result.timings})
