"""The columnar index built in one go, written as a snapshot, mapped back and grown again
answers as the index built record by record; a service starts from a snapshot and the log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from services.link import storage
from services.link.domain import CompiledModel, Linker, SpineIndex, default_model
from services.link.domain.blocking import rule_keys
from services.link.domain.columns import CodedBlooms, RecordColumns
from services.link.service import LinkService
from services.link.snapshots import Snapshots
from tests.unit.link.fakes import keys, linkage_event, population


def _queries() -> list:
    return [keys(f"C{i}", *_fields(p)) for i, p in enumerate(population(900)[::11])]


def _fields(rec) -> tuple[str, ...]:
    t = rec.tokens
    return (
        str(t["forename"]).split(":", 1)[1],
        str(t["surname"]).split(":", 1)[1],
        str(t["dob_full"]).split(":", 1)[1],
        str(t["sex"]).split(":", 1)[1],
        str(t["postcode_unit"]).split(":", 1)[1],
    )


def _answers(index: SpineIndex) -> list:
    linker = Linker(CompiledModel(index.model, index.schema), index)
    linker.refresh()
    out = []
    for rec in _queries():
        a = index.schema.compact(rec)
        out.append((sorted(index.ids_of(index.candidates(a))), linker.link_compact("q", a)))
    return out


def test_an_index_built_in_one_go_answers_as_one_built_record_by_record() -> None:
    model = default_model()
    people = population(900)
    moved = keys("P00003", "isla", "jones", "1990-01-02", "F", "SA1 2BC", "9 new st", "")
    one_by_one = SpineIndex(model)
    for rec in [*people, moved]:
        one_by_one.add(rec)
    store = RecordColumns(one_by_one.schema)
    store.append(
        [r.record_id for r in [*people, moved]],
        [one_by_one.schema.compact(r) for r in [*people, moved]],
        0,
    )
    built = SpineIndex.build(model, [store])
    assert len(built) == len(one_by_one) == 900  # the later version of P00003 wins
    assert built.record(built.position_of("P00003")) == one_by_one.schema.compact(moved)
    assert built.tf_counts == one_by_one.tf_counts
    assert _answers(built) == _answers(one_by_one)


def test_a_snapshot_maps_back_to_the_same_answers_and_takes_new_versions(tmp_path: Path) -> None:
    model = default_model()
    index = SpineIndex(model)
    index.add_many(
        [r.record_id for r in population(900)],
        [index.schema.compact(r) for r in population(900)],
        list(range(1, 901)),
    )
    index.log_position = 900
    before = _answers(index)
    index.save(tmp_path / "snap")
    mapped = SpineIndex.load(tmp_path / "snap", model)
    assert isinstance(mapped.base.tok.base, np.memmap) or mapped.base.tok.base is not None
    assert (mapped.log_position, len(mapped), mapped.rows) == (900, 900, 900)
    assert _answers(mapped) == before
    # A new version on top of the mapped base: the old one stops being a candidate.
    new = keys("P00010", "osian", "jones", "2001-05-06", "M", "LL57 1AB", "3 ffordd", "")
    mapped.add(new, 901)
    mapped.log_position = 901
    a = mapped.schema.compact(new)
    found = mapped.ids_of(mapped.candidates(a))
    assert found.count("P00010") == 1
    assert mapped.record(mapped.position_of("P00010")) == a
    changed = mapped.changed_between(900, 901)
    assert sorted(mapped.ids_of(changed)) == ["P00010", "P00010"]  # born and died at 901


def test_a_snapshot_holds_each_bloom_once_and_gives_back_the_same_bytes(tmp_path: Path) -> None:
    model = default_model()
    index = SpineIndex(model)
    people = population(900)
    index.add_many([r.record_id for r in people], [index.schema.compact(r) for r in people])
    dense = index.delta.bloom[: len(index.delta)].copy()
    index.save(tmp_path / "snap")
    mapped = SpineIndex.load(tmp_path / "snap", model)
    coded = mapped.base.bloom
    assert isinstance(coded, CodedBlooms)
    assert coded.nbytes < dense.nbytes / 2  # names and addresses recur
    rows = np.array([0, 5, 899, 5, 42])
    assert np.array_equal(coded[rows], dense[rows])
    assert np.array_equal(coded[: len(people)], dense)
    assert np.array_equal(coded[7], dense[7]) and np.array_equal(coded[rows, 2], dense[rows, 2])
    assert [mapped.record(r) for r in range(900)] == [index.schema.compact(p) for p in people]
    # LSH bands computed on the coded column (each distinct encoding once) are the dense ones.
    banded = [(i, r) for i, r in enumerate(model.blocking_rules) if r.lsh_bloom]
    assert banded
    for i, rule in banded:
        on_coded = rule_keys(i, rule, mapped.schema, mapped.base, spine_side=True)
        on_dense = rule_keys(i, rule, index.schema, index.base, spine_side=True)  # in memory
        assert np.array_equal(on_coded.keys, on_dense.keys)
        assert np.array_equal(on_coded.rows, on_dense.rows)


def test_a_service_starts_from_the_newest_snapshot_and_applies_the_log_after_it(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'link.db'}")
    storage.metadata.create_all(engine)
    snapshots = Snapshots(tmp_path / "snapshots", min_rows=50)
    record = linkage_event(keys("C1", "aled", "bevan", "2001-03-04", "M", "LL57 1AB"))
    with Session(engine) as s:
        first = LinkService(b"k" * 32, snapshots=snapshots)
        for rec in population(300):
            first.on_linkage_keys(s, linkage_event(rec, "spine-person"))
        first.sync(s)
        assert first.snapshot_if_due() is not None
        first.on_linkage_keys(
            s,
            linkage_event(
                keys("S1", "aled", "bevan", "2001-03-04", "M", "LL57 1AB", "3 ffordd", ""),
                "spine-person",
            ),
        )
        first.sync(s)
        s.commit()
        second = LinkService(b"k" * 32, snapshots=snapshots)
        second.start(s)
        assert second.index.base is not None and len(second.index.base) == 300
        assert (second.view.position, len(second.index)) == (first.view.position, 301)
        assert second.model_version == first.model_version
        a = first.on_linkage_keys(s, record)
        s.rollback()
        b = second.on_linkage_keys(s, record)
        assert [parse_data(Envelope.from_bytes(m.value)) for m in a] == [
            parse_data(Envelope.from_bytes(m.value)) for m in b
        ]


def _as_earlier_layout(snap: Path, out: Path, *, coded_blooms: bool) -> None:
    """A snapshot as the earlier layouts wrote it: every row column dense (int64 token ids,
    offsets and list values), the blooms dense or coded as one uint32 matrix with a table
    file per key, and the blocking keys repeated once per row."""
    model = default_model()
    store = SpineIndex.load(snap, model).base
    assert store is not None
    n = len(store)
    rows = out / "rows"
    rows.mkdir(parents=True)
    dense = {
        "tok": store.tok[:n],
        "ids": store.ids[:n],
        "pop": store.pop[:n],
        "flags": store.flags[:n].astype(np.uint32),
        "born": store.born[:n].astype(np.int64),
        "dead": store.dead[:n],
    }
    blooms = store.bloom[:n]
    if coded_blooms:
        codes = np.zeros((n, blooms.shape[1]), dtype=np.uint32)
        for j in range(blooms.shape[1]):
            table, inverse = np.unique(blooms[:, j], axis=0, return_inverse=True)
            np.save(rows / f"bloom{j}_table.npy", table)
            codes[:, j] = inverse.ravel()
        np.save(rows / "bloom_codes.npy", codes)
    else:
        dense["bloom"] = blooms
    for name, array in dense.items():
        np.save(rows / f"{name}.npy", array)
    for i in range(len(store.schema.list_keys)):
        off = store.list_offsets(i)[: n + 1].astype(np.int64)
        np.save(rows / f"list{i}_off.npy", off)
        np.save(rows / f"list{i}_val.npy", store.list_values(i)[: int(off[-1])])
    meta = json.loads((snap / "rows" / "columns.json").read_text())
    del meta["coded"]
    (rows / "columns.json").write_text(json.dumps(meta))
    keys, starts = np.load(snap / "block_keys.npy"), np.load(snap / "block_starts.npy")
    np.save(out / "block_keys.npy", np.repeat(keys, np.diff(starts)))
    np.save(out / "block_rows.npy", np.load(snap / "block_rows.npy").astype(np.int64))
    for name in ("id_hashes.npy", "id_rows.npy", "index.json"):
        shutil.copy(snap / name, out / name)


def test_snapshots_of_the_earlier_layouts_load_and_give_the_same_answers(tmp_path: Path) -> None:
    model = default_model()
    index = SpineIndex(model)
    people = population(900)
    index.add_many(
        [r.record_id for r in people],
        [index.schema.compact(r) for r in people],
        list(range(1, 901)),
    )
    moved = keys("P00003", "isla", "jones", "1990-01-02", "F", "SA1 2BC", "9 new st", "")
    index.add(moved, 901)
    index.log_position = 901
    before = _answers(index)
    records = [index.record(r) for r in range(index.rows)]
    index.save(tmp_path / "snap")
    mapped = SpineIndex.load(tmp_path / "snap", model)
    # The coded layout is smaller than the dense one it stands for.
    dense_bytes = sum(s.nbytes() for s in (index.base, index.delta) if s is not None)
    assert mapped.nbytes()["rows"] < dense_bytes / 2
    assert _answers(mapped) == before
    for coded_blooms in (False, True):
        earlier = tmp_path / f"earlier-{coded_blooms}"
        _as_earlier_layout(tmp_path / "snap", earlier, coded_blooms=coded_blooms)
        loaded = SpineIndex.load(earlier, model)
        assert (loaded.log_position, len(loaded), loaded.rows) == (901, 900, 901)
        assert [loaded.record(r) for r in range(loaded.rows)] == records
        assert _answers(loaded) == before
        assert sorted(loaded.ids_of(loaded.changed_between(900, 901))) == ["P00003", "P00003"]
        # Written again, it is in the current layout and answers the same.
        loaded.save(tmp_path / f"again-{coded_blooms}")
        again = SpineIndex.load(tmp_path / f"again-{coded_blooms}", model)
        assert (tmp_path / f"again-{coded_blooms}" / "block_starts.npy").exists()
        assert [again.record(r) for r in range(again.rows)] == records
        assert again.ids_of(again.candidates(again.record(0))) == loaded.ids_of(
            loaded.candidates(loaded.record(0))
        )
