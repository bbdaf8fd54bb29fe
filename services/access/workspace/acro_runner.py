"""The airlock's check, run by fjo inside the job sandbox: ACRO computes the output from the
data it comes from and checks it (thresholds, p-ratio, N-K dominance, residual degrees of
freedom, survival counts), applies the preset's mitigation and writes its ``results.json``.

A standalone script (it imports no fjo module: the sandbox shows it alone, read-only):
``python acro_runner.py request.json`` with the result folder as the working directory.
The request names only columns (never formulas or code), so nothing the researcher wrote
runs here.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

AGGFUNCS = ("mean", "median", "sum", "std", "count", "mode")


def _frame(source: str) -> Any:
    import pandas as pd

    if source.endswith(".parquet"):
        return pd.read_parquet(source)
    if source.endswith(".csv"):
        return pd.read_csv(source)
    raise ValueError("a source is a .parquet or .csv file")


def _columns(df: Any, names: list[str]) -> list[str]:
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ValueError(f"no column {missing[0]!r} in the source")
    return names


def _round_counts(table: Any, base: int) -> Any:
    # OpenSAFELY's rule after redaction: every count left is rounded to the nearest base.
    return table.apply(
        lambda col: (col / base).round().mul(base) if col.dtype.kind in "if" else col
    )


def run(request: dict[str, Any], out: Path) -> dict[str, Any]:
    import acro.acro_tables as acro_tables
    from acro import ACRO

    spec = request["spec"]
    kind = request["kind"]
    df = _frame(request["source"])
    session = ACRO(suppress=request["mitigation"] == "suppress")
    session.config.update(request["config"])  # SDCChecks reads this same dict
    acro_tables.SURVIVAL_THRESHOLD = int(request["config"]["survival_safe_threshold"])
    logging.getLogger("acro").setLevel(logging.WARNING)
    if kind == "table":
        index = _columns(df, spec["index"])
        columns = _columns(df, spec.get("columns") or [])
        values = spec.get("values")
        aggfunc = spec.get("aggfunc")
        if (values is None) != (aggfunc is None):
            raise ValueError("values and aggfunc go together")
        if aggfunc is not None and aggfunc not in AGGFUNCS:
            raise ValueError(f"aggfunc is one of {', '.join(AGGFUNCS)}")
        if not columns:  # a one-way table: ACRO tabulates against a constant column
            df = df.assign(All="All")
            columns = ["All"]
        session.crosstab(
            [df[c] for c in index],
            [df[c] for c in columns],
            values=None if values is None else df[_columns(df, [values])[0]],
            aggfunc=aggfunc,
        )
        if request.get("round_to") and values is None:
            record = session.results.get_index(0)
            record.output = [_round_counts(t, int(request["round_to"])) for t in record.output]
    elif kind == "regression":
        import statsmodels.api as sm

        y = _columns(df, [spec["dependent"]])[0]
        xs = _columns(df, spec["independent"])
        data = df[[y, *xs]].dropna()
        exog = sm.add_constant(data[xs].astype(float))
        method = {"ols": session.ols, "logit": session.logit, "probit": session.probit}
        method[spec["method"]](data[y].astype(float), exog)
    elif kind == "histogram":
        column = _columns(df, [spec["column"]])[0]
        session.hist(df, column, bins=int(spec.get("bins", 10)), filename="histogram.png")
    elif kind == "survival":
        t, status = _columns(df, [spec["time"], spec["status"]])
        session.surv_func(df[t], df[status], output="table")
    else:
        raise ValueError(f"no check for outputs of kind {kind!r}")
    session.finalise(str(out / "acro"), "json")
    results: dict[str, Any] = json.loads((out / "acro" / "results.json").read_text())
    return results


def main() -> int:
    request = json.loads(Path(sys.argv[1]).read_text())
    out = Path.cwd()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = run(request, out)
        verdict: dict[str, Any] = {"ok": True, "results": results}
    except (ValueError, KeyError, TypeError) as exc:
        verdict = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    (out / "check.json").write_text(json.dumps(verdict, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
