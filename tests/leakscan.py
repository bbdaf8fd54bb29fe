"""The canary leak scanner lives in ``fjo/leakscan.py`` (``fjo demo`` uses it too)."""

from __future__ import annotations

from fjo.leakscan import MIN_CANARY_LENGTH, LeakScanner, canary_forms, find_leaks

__all__ = ["MIN_CANARY_LENGTH", "LeakScanner", "canary_forms", "find_leaks"]
