"""The job sandbox's command line: what is mounted, in which order."""

from __future__ import annotations

from pathlib import Path

from services.access.workspace.sandbox import Bind, python_runtime, sandbox_command


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
