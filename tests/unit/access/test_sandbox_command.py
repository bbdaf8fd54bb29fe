"""The job sandbox's command line: what is mounted, in which order."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from services.access.workspace.sandbox import (
    Bind,
    MountCollision,
    python_runtime,
    sandbox_command,
)


def _mounts(args: list[str]) -> list[tuple[str, str]]:
    """(option, destination) of every mount, in order."""
    out = []
    for i, a in enumerate(args):
        if a in ("--ro-bind", "--bind"):
            out.append((a, args[i + 2]))
        elif a in ("--tmpfs", "--proc", "--dev", "--dir", "--symlink"):
            out.append((a, args[i + 1] if a != "--symlink" else args[i + 2]))
    return out


def test_the_private_tmp_comes_before_every_bind_so_none_under_tmp_is_hidden(
    tmp_path: Path,
) -> None:
    # An installation under /tmp (a CI clone there) had its Python runtime bound before the
    # sandbox's tmpfs over /tmp, which hid it: every job failed before it began.
    binds = [Bind(tmp_path / "extract", "/data"), Bind(tmp_path / "out", "/output", writable=True)]
    args = sandbox_command(
        ["python", "-c", "pass"], binds, bwrap="bwrap", uid=65534, env={}, cwd="/output"
    )
    mounts = _mounts(args)
    tmpfs = mounts.index(("--tmpfs", "/tmp"))
    binds_at = [i for i, (option, _dest) in enumerate(mounts) if option.endswith("bind")]
    assert binds_at and tmpfs < min(binds_at)
    # The runtime and the job's folders are all bound, after it.
    dests = {dest for option, dest in mounts if option.endswith("bind")}
    assert {"/data", "/output"} <= dests
    assert {str(p) for p in python_runtime()} <= dests
    assert "--unshare-net" in args


@pytest.mark.parametrize("mount", ["/acro", "/output", "/data"])
def test_a_mount_over_the_python_runtime_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mount: str
) -> None:
    # CI cloned fjo under /check, where checks were then mounted: the bind hid the virtual
    # environment and every ACRO check ended "status 127" with no word of why.
    monkeypatch.setattr(sys, "prefix", f"{mount}/work/main/.venv")
    binds = [Bind(tmp_path / "x", mount)]
    with pytest.raises(MountCollision, match=f"mounts {mount} over fjo's Python runtime"):
        sandbox_command(["python"], binds, bwrap="bwrap", uid=65534, env={}, cwd="/")


def test_a_runtime_outside_every_mount_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "prefix", "/checkout/.venv")  # shares a prefix of letters only
    args = sandbox_command(
        ["python"], [Bind(tmp_path / "x", "/check")], bwrap="bwrap", uid=65534, env={}, cwd="/"
    )
    assert ("--ro-bind", "/checkout/.venv") in _mounts(args)
