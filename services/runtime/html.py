"""Server-rendered HTML from Jinja2 templates: one way to make the environment, autoescaped.

Every page and report fjo renders (the portal's pages, the linkage quality report, the demo
report) comes from a component's own ``templates/`` folder through ``environment(folder)``,
which also finds the shared templates of ``services/runtime/templates/``: the charts'
macros (``charts.html``: inline-SVG bars and lines) and the layout of a standalone report
(``report_layout.html``; the portal's pages extend its GOV.UK ``base.html``). Values are
escaped unless a template says otherwise, so a record id, a name or an error text can never
become markup.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

__all__ = ["TEMPLATES", "environment", "render"]

TEMPLATES = Path(__file__).parent / "templates"
"""The shared templates: ``charts.html`` and ``report_layout.html``."""


def environment(folder: Path) -> Environment:
    """An autoescaping environment over a component's template ``folder``, then the shared
    templates (a name in ``folder`` wins)."""
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(folder), FileSystemLoader(TEMPLATES)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _environment(folder: Path) -> Environment:
    return environment(folder)


def render(folder: Path, template: str, /, **context: object) -> str:
    """``template`` (found in ``folder``, else among the shared ones) with ``context``."""
    return _environment(folder).get_template(template).render(**context)
