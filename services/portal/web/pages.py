"""Every page router, in one list for the app factory."""

from __future__ import annotations

from fastapi import APIRouter

from services.portal.web.context import Web
from services.portal.web.home import home_routes
from services.portal.web.operator import operator_routes
from services.portal.web.outputs import output_routes
from services.portal.web.panel import panel_routes
from services.portal.web.register import register_routes
from services.portal.web.researcher import researcher_routes
from services.portal.web.reviewer import reviewer_routes
from services.portal.web.workspace import workspace_routes

__all__ = ["page_routes"]


def page_routes(web: Web) -> list[APIRouter]:
    return [
        home_routes(web),
        researcher_routes(web),
        workspace_routes(web),
        panel_routes(web),
        output_routes(web),
        reviewer_routes(web),
        operator_routes(web),
        register_routes(web),
    ]
