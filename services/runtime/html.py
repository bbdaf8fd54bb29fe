"""Server-rendered HTML from Jinja2 templates, autoescaped, on one shared base layout.

Every page and report fjo renders (the linkage quality report, the demo report, the portal
when it comes) extends ``base.html`` from ``services/runtime/templates/`` and draws its
charts with the macros of ``charts.html``; a component keeps its own templates in a
``templates/`` folder next to its code and renders them with ``render(folder, name, ...)``,
which finds the shared ones too. Values are escaped unless a template says otherwise, so a
record id, a name or an error text can never become markup.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

__all__ = ["TEMPLATES", "render", "templates"]

TEMPLATES = Path(__file__).parent / "templates"
"""The shared layout (``base.html``) and macros (``charts.html``)."""


@cache
def templates(folder: Path) -> Environment:
    """An autoescaping environment over a component's template ``folder``, then the shared
    templates."""
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(folder), FileSystemLoader(TEMPLATES)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(folder: Path, template: str, /, **context: object) -> str:
    """``template`` (found in ``folder``, else among the shared ones) with ``context``."""
    return templates(folder).get_template(template).render(**context)
