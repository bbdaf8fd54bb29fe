"""Building a project's extract: approved rows and variables only, project pseudonyms,
dates at the approved precision and banded match probabilities, k-anonymity and the join
guard, then Parquet + CSV files, a data dictionary and a manifest with SHA-256s.

The builder reads the research store in batches and writes one table per approved dataset.
It runs outside any request (a background job, see ``api/extracts.py``) and in the benchmark.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import aliased

from services.access.domain.catalogue import (
    CATALOGUE,
    LINKAGE_COLUMNS,
    QUASI_IDENTIFIERS,
    Source,
    Variable,
    pinned_quasi_identifiers,
    quasi_identifier_problem,
)
from services.access.domain.generalisation import (
    MATCH_PROBABILITY_BANDS,
    DatePrecision,
    band_match_probability,
    coarsen_date,
)
from services.access.domain.kanonymity import KAnonymityMode, protect_table
from services.access.domain.linkage_quality import PERSON_DATASETS, linkage_summary
from services.access.domain.objections import REMOVING_KINDS
from services.access.domain.pseudonyms import ProjectPseudonymiser
from services.access.storage.models import ExclusionRow, LinkDecisionRow, ResearchRecordRow

__all__ = ["ExtractResult", "ExtractSpec", "build_extract", "extract_columns"]

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "date": pa.date32(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
}


@dataclass(frozen=True, slots=True)
class ExtractSpec:
    """What the approval allows this extract to contain, and how to protect it."""

    extract_id: str
    project_id: str
    datasets: tuple[str, ...]
    variables: tuple[str, ...]
    window_start: date
    window_end: date
    k: int = 10
    quasi_identifiers: tuple[str, ...] = QUASI_IDENTIFIERS
    """As the approval pinned them; the catalogue's are enforced whatever this says."""
    mode: KAnonymityMode = KAnonymityMode.SUPPRESS
    max_suppressed_fraction: float | None = None
    pseudonym_key_version: int = 1
    date_precision: DatePrecision = DatePrecision.MONTH
    join_k: int = 3
    """Every row's whole content (all but record and person pseudonyms) is shared by at
    least this many rows, so no row of this extract matches one row of another project's."""
    excluded_kinds: frozenset[str] = REMOVING_KINDS
    """Exclusions this extract leaves out: objections and erasures always, opt-outs where
    the project's legal basis requires them (``domain.objections.excluding_kinds``)."""


@dataclass(slots=True)
class ExtractResult:
    refused: bool
    rows: int
    manifest: dict[str, Any] = field(default_factory=dict)
    disclosure: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    holdings: dict[str, str | None] = field(default_factory=dict)
    """Record token -> ALF of every record read into the extract: what an objection looks
    up to flag it (kept in access's database, never in the extract's files)."""


def extract_columns(dataset: str, approved: Iterable[str]) -> list[Variable]:
    """The columns of one dataset's table: linkage columns, then approved variables."""
    wanted = set(approved)
    return [*LINKAGE_COLUMNS, *(v for v in CATALOGUE[dataset].variables if v.name in wanted)]


def _coerce(variable: Variable, precision: DatePrecision) -> Callable[[Any], Any]:
    def as_date(v: Any) -> date | None:
        if v is None or isinstance(v, date):
            return coarsen_date(v, precision)
        return coarsen_date(date.fromisoformat(str(v)[:10]), precision)

    def as_string(v: Any) -> str | None:
        if v is None:
            return None
        if isinstance(v, list | tuple):
            return ";".join(str(x) for x in v)
        return str(v)

    def as_int(v: Any) -> int | None:
        return None if v is None else int(v)

    def as_float(v: Any) -> float | None:
        return None if v is None else float(v)

    def as_band(v: Any) -> float | None:
        return band_match_probability(as_float(v))

    if variable.banded:
        return as_band

    def as_bool(v: Any) -> bool | None:
        return None if v is None else bool(v)

    return {
        "date": as_date,
        "string": as_string,
        "integer": as_int,
        "float": as_float,
        "boolean": as_bool,
    }[variable.type]


def _read_dataset(
    engine: Engine,
    spec: ExtractSpec,
    dataset: str,
    variables: list[Variable],
    pseudonymiser: ProjectPseudonymiser,
    batch_rows: int,
    holdings: dict[str, str | None],
) -> dict[str, list[Any]]:
    r = ResearchRecordRow.__table__.alias("r")
    case = aliased(ResearchRecordRow.__table__, name="c")
    d = LinkDecisionRow.__table__.alias("d")
    record_cols = {v.field for v in variables if v.source is Source.RECORD}
    link_cols = {v.field for v in variables if v.source is Source.LINK}
    needs_content = any(v.source is Source.CONTENT for v in variables)
    needs_related = any(v.source is Source.RELATED for v in variables)
    cols = [r.c[name].label(f"r_{name}") for name in sorted(record_cols)]
    cols += [d.c[name].label(f"d_{name}") for name in sorted(link_cols)]
    cols += [r.c.record_token.label("held_token"), d.c.alf.label("held_alf")]
    if needs_content:
        cols.append(r.c.content.label("content"))
    if needs_related:
        cols.append(r.c.related_tokens.label("related"))
    when = func.coalesce(r.c.event_date, case.c.event_date)
    e = ExclusionRow.__table__.c
    kinds = sorted(spec.excluded_kinds)
    excluded_alfs = select(e.value).where(e.scope == "alf", e.kind.in_(kinds))
    excluded_records = select(e.value).where(e.scope == "record", e.kind.in_(kinds))
    query = (
        select(*cols)
        .select_from(
            r.outerjoin(d, d.c.record_token == r.c.record_token).outerjoin(
                case, case.c.record_token == r.c.case_token
            )
        )
        .where(
            and_(
                r.c.record_type == dataset,
                when >= spec.window_start,
                when <= spec.window_end,
                # Objections and erasures (and opt-outs, where they apply) are left out.
                r.c.record_token.not_in(excluded_records),
                or_(d.c.alf.is_(None), d.c.alf.not_in(excluded_alfs)),
            )
        )
        .order_by(r.c.record_token)
    )

    getters: list[tuple[str, Callable[[Any], Any]]] = []
    for v in variables:
        coerce = _coerce(v, spec.date_precision)
        if v.source is Source.RECORD:
            key = f"r_{v.field}"
        elif v.source is Source.RELATED:
            key = v.field
        elif v.source is Source.LINK:
            key = f"d_{v.field}"
        else:
            key = v.field
        if v.pseudonym is not None:
            kind = v.pseudonym

            def getter(
                value: Any, kind: Any = kind, pseudonym: Any = pseudonymiser.pseudonym
            ) -> Any:
                return pseudonym(kind, None if value is None else str(value))

            getters.append((key, getter))
        else:
            getters.append((key, coerce))

    out: dict[str, list[Any]] = {v.name: [] for v in variables}
    sinks = [out[v.name].append for v in variables]
    # Where each value comes from: 0 a column of the row, 1 content, 2 related tokens.
    origin = {Source.CONTENT: 1, Source.RELATED: 2}
    plan = list(zip(getters, sinks, (origin.get(v.source, 0) for v in variables), strict=True))
    empty: dict[str, Any] = {}
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch_rows).execute(query)
        for row in result.mappings():
            nested = (
                empty,
                _as_dict(row["content"]) if needs_content else empty,
                _as_dict(row["related"]) if needs_related else empty,
            )
            for (key, convert), sink, where in plan:
                raw = nested[where].get(key) if where else row[key]
                sink(convert(raw))
            holdings[row["held_token"]] = row["held_alf"]
    return out


def _content(variables: list[Variable], quasi_identifiers: list[str]) -> list[str]:
    """What two projects given these rows would both hold, most important first: the
    linkage codes, the quasi-identifiers, then the rest in catalogue order. Record and
    person pseudonyms differ per project; organisation pseudonyms are quasi-identifiers
    (their sizes map them back), so they are in."""
    linkage = [v.name for v in LINKAGE_COLUMNS if v.pseudonym is None]
    rest = [
        v.name
        for v in variables
        if v.pseudonym is None and v.name not in linkage and v.name not in quasi_identifiers
    ]
    return [*linkage, *quasi_identifiers, *rest]


def _precision(variable: Variable, dates: DatePrecision) -> str | None:
    if variable.type == "date":
        return dates.value
    if variable.banded:
        return "bands " + ", ".join(f"{edge:g}" for edge in MATCH_PROBABILITY_BANDS)
    return None


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):  # some drivers hand JSON back as text
        loaded: dict[str, Any] = json.loads(value)
        return loaded
    return dict(value)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_extract(
    engine: Engine,
    spec: ExtractSpec,
    *,
    master_secret: bytes,
    out_dir: Path,
    batch_rows: int = 50_000,
) -> ExtractResult:
    """Build the extract into ``out_dir`` (created; replaced atomically), or refuse it."""
    unknown = [d for d in spec.datasets if d not in CATALOGUE]
    if unknown:
        raise ValueError("the approval names datasets the catalogue does not have")
    if any(quasi_identifier_problem(q) for q in spec.quasi_identifiers):
        raise ValueError("the approval pins quasi-identifiers the catalogue cannot protect")
    quasi_identifiers = pinned_quasi_identifiers(spec.quasi_identifiers)
    pseudonymiser = ProjectPseudonymiser(
        master_secret, spec.project_id, key_version=spec.pseudonym_key_version
    )
    tables: dict[str, tuple[list[Variable], dict[str, list[Any]]]] = {}
    disclosure: dict[str, Any] = {}
    holdings: dict[str, str | None] = {}
    for dataset in spec.datasets:
        variables = extract_columns(dataset, spec.variables)
        columns = _read_dataset(
            engine, spec, dataset, variables, pseudonymiser, batch_rows, holdings
        )
        carried = [q for q in quasi_identifiers if q in columns]  # what this table carries
        report, join = protect_table(
            columns,
            carried,
            _content(variables, carried),
            k=spec.k,
            join_k=spec.join_k,
            mode=spec.mode,
            max_suppressed_fraction=spec.max_suppressed_fraction,
        )
        disclosure[dataset] = {
            **report.as_dict(),
            "quasi_identifiers_pinned": list(quasi_identifiers),
            "date_precision": spec.date_precision.value,
            "join_guard": None if join is None else join.as_dict(),
        }
        refusal = report if report.refused else join if join is not None and join.refused else None
        if refusal is not None:
            return ExtractResult(
                refused=True,
                rows=0,
                disclosure=disclosure,
                reason=f"{dataset}: {refusal.reason}",
            )
        tables[dataset] = (variables, columns)

    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    files: list[dict[str, Any]] = []
    dictionary: list[dict[str, Any]] = []
    linkage: dict[str, Any] = {}
    total_rows = 0
    for dataset, (variables, columns) in tables.items():
        summary = linkage_summary(columns) if dataset in PERSON_DATASETS else None
        if summary is not None:
            linkage[dataset] = summary
        schema = pa.schema([pa.field(v.name, _ARROW_TYPES[v.type]) for v in variables])
        table = pa.Table.from_pydict(
            {v.name: pa.array(columns[v.name], type=_ARROW_TYPES[v.type]) for v in variables},
            schema=schema,
        )
        total_rows += table.num_rows
        stem = dataset.upper().replace("-", "_")
        pq.write_table(table, staging / f"{stem}.parquet", compression="zstd")
        pacsv.write_csv(table, staging / f"{stem}.csv")
        for suffix, fmt in ((".parquet", "parquet"), (".csv", "csv")):
            path = staging / f"{stem}{suffix}"
            files.append(
                {
                    "name": path.name,
                    "dataset": dataset,
                    "format": fmt,
                    "rows": table.num_rows,
                    "bytes": path.stat().st_size,
                    "sha256": _sha256(path),
                }
            )
        for v in variables:
            dictionary.append(
                {
                    "dataset": dataset,
                    "table": stem,
                    "column": v.name,
                    "type": v.type,
                    "description": v.description,
                    "project_pseudonym": v.pseudonym is not None,
                    "quasi_identifier": v.name in quasi_identifiers,
                    "precision": _precision(v, spec.date_precision),
                }
            )
    dict_path = staging / "data_dictionary.json"
    dict_path.write_text(json.dumps({"columns": dictionary}, indent=2))
    files.append(
        {
            "name": dict_path.name,
            "dataset": None,
            "format": "json",
            "rows": len(dictionary),
            "bytes": dict_path.stat().st_size,
            "sha256": _sha256(dict_path),
        }
    )
    manifest = {
        "extract_id": spec.extract_id,
        "project_id": spec.project_id,
        "created_at": datetime.now(UTC).isoformat(),
        "approved": {
            "datasets": list(spec.datasets),
            "variables": list(spec.variables),
            "window_start": spec.window_start.isoformat(),
            "window_end": spec.window_end.isoformat(),
            "quasi_identifiers": list(quasi_identifiers),
            "date_precision": spec.date_precision.value,
        },
        "pseudonym_key_version": spec.pseudonym_key_version,
        "disclosure_control": disclosure,
        "linkage_quality": linkage,
        "rows": total_rows,
        "files": files,
        # Which exclusions were applied (their kinds); the records held are in access's
        # database (access_extract_holdings), not in a file researchers read.
        "exclusions_applied": sorted(spec.excluded_kinds),
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return ExtractResult(
        refused=False,
        rows=total_rows,
        manifest=manifest,
        disclosure=disclosure,
        holdings=holdings,
    )
