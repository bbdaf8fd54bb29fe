"""Front-end assets fetched by the project's own build step (``scripts/assets.sh``), never a CDN.

A TRE has no internet at run time: govuk-frontend (the portal) and Swagger UI + ReDoc (every
API's ``/docs`` and ``/redoc``) are npm packages that the script packs, checks against pinned
integrity hashes and caches under ``~/.cache/fjo``. A configured folder (the image sets one per
service) wins; otherwise the checkout's script is asked for its cache, fetching on first use.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Literal

__all__ = ["ASSETS_SCRIPT", "AssetKind", "fetched_assets"]

ASSETS_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "assets.sh"
"""The build step, in a checkout (an installed package has none: configure the folder)."""

AssetKind = Literal["govuk", "api-docs"]


def fetched_assets(kind: AssetKind, configured: Path | None = None) -> Path:
    """The folder of ``kind``'s assets: ``configured`` if given, else the build step's cache."""
    if configured is not None:
        return configured
    if not ASSETS_SCRIPT.is_file():
        raise RuntimeError(
            f"no {kind} assets: configure their folder (scripts/assets.sh {kind} in a checkout)"
        )
    out = subprocess.run([str(ASSETS_SCRIPT), kind], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])
