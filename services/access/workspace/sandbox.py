"""The local job sandbox: bubblewrap (new namespaces, no network) plus rlimits and a deadline.

What the sandboxed process sees (docs/workspace.md, "Threat model"): the Python runtime
(the interpreter's prefix, the virtual environment and ``/usr``, read-only), the binds it is
given (read-only unless ``writable``), a private ``/tmp``, a fresh ``/proc`` of its own PID
namespace and a minimal ``/dev``. No ``/etc``, no home, no repository, no databases, no
keys. Its network namespace has only a loopback device, so no socket reaches anything.

Who it runs as: when access runs as root, bubblewrap stays in the host's user namespace
(so that RLIMIT_NPROC, which never binds root, can bind the job) and ``setpriv`` drops the
job to an unprivileged uid with no capabilities and ``no_new_privs``; otherwise bubblewrap
makes a user namespace and the job keeps access's own, unprivileged, uid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Bind",
    "MountCollision",
    "SandboxLimits",
    "SandboxResult",
    "job_environment",
    "python_runtime",
    "rlimits",
    "run_sandboxed",
    "sandbox_command",
]

_MB = 1 << 20
_TMP = "/tmp"  # noqa: S108 - a private tmpfs inside the sandbox, not the host's /tmp


@dataclass(frozen=True, slots=True)
class Bind:
    """A host path shown inside the sandbox at ``dest``."""

    source: Path
    dest: str
    writable: bool = False


class MountCollision(OSError):
    """A bind's mount point and the Python runtime overlap: one would hide the other inside
    the sandbox (fjo installed under ``/acro``, say), so the job could not even start."""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    cpu_s: int
    memory_mb: int
    wall_s: float
    processes: int
    open_files: int
    file_mb: int


@dataclass(frozen=True, slots=True)
class SandboxResult:
    exit_code: int
    timed_out: bool
    wall_s: float

    @property
    def signal(self) -> int | None:
        """The signal that ended the process (bubblewrap exits with 128 + its number)."""
        return self.exit_code - 128 if 128 < self.exit_code < 160 else None


def job_environment() -> dict[str, str]:
    """The environment of everything run in the sandbox (nothing of access's own)."""
    return {
        "HOME": _TMP,
        "MPLCONFIGDIR": _TMP,
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }


def python_runtime() -> list[Path]:
    """The folders the job's Python needs: the base interpreter's prefix and the virtual
    environment (if any); ``/usr`` is always bound."""
    out = [Path(sys.base_prefix).resolve()]
    venv = Path(sys.prefix).resolve()
    if venv != out[0]:
        out.append(venv)
    return [p for p in out if not _under(p, Path("/usr"))]


def _under(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _parents(dest: str, made: set[str]) -> list[str]:
    """``--dir`` arguments for every missing ancestor of ``dest``, world-traversable: as
    root, bubblewrap would make them 0700, which the unprivileged job cannot enter."""
    args: list[str] = []
    for parent in reversed(Path(dest).parents):
        name = str(parent)
        if name in ("/", *made):
            continue
        made.add(name)
        args += ["--perms", "0755", "--dir", name]
    return args


def sandbox_command(
    argv: Sequence[str],
    binds: Iterable[Bind],
    *,
    bwrap: str,
    uid: int,
    env: dict[str, str],
    cwd: str,
) -> list[str]:
    """The bwrap command line that runs ``argv`` confined (docs/workspace.md, "Jobs")."""
    binds = list(binds)
    runtime = python_runtime()
    for b in binds:
        dest = Path(b.dest)
        for folder in runtime:
            if _under(folder, dest) or _under(dest, folder):
                raise MountCollision(
                    f"the sandbox mounts {b.dest} over fjo's Python runtime at {folder}: "
                    f"install fjo (its virtual environment) outside {b.dest}"
                )
    root = os.geteuid() == 0
    args = [bwrap, "--die-with-parent", "--new-session"]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup-try"]
    if root:
        # setpriv needs these two to drop to ``uid``; it then clears every capability.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--cap-drop", "ALL"]
    # /proc, /dev and the private /tmp first: a bind made under /tmp before the tmpfs would be
    # hidden by it (an installation under /tmp, such as a CI clone, lost its Python runtime).
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", _TMP]
    made: set[str] = {"/proc", "/dev", _TMP}
    args += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if Path(f"/{link}").is_symlink():  # merged /usr (Debian 12): /lib -> usr/lib
            args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        elif Path(f"/{link}").is_dir():
            args += ["--ro-bind", f"/{link}", f"/{link}"]
        made.add(f"/{link}")
    for folder in runtime:
        args += _parents(str(folder), made)
        args += ["--ro-bind", str(folder), str(folder)]
        made.add(str(folder))
    for b in binds:
        args += _parents(b.dest, made)
        args += ["--bind" if b.writable else "--ro-bind", str(b.source), b.dest]
        made.add(b.dest)
    args += ["--chdir", cwd, "--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    if root:
        args += [
            "/usr/bin/setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
        ]
    return [*args, *argv]


def rlimits(limits: SandboxLimits, *, nproc: bool = True) -> list[str]:
    """``prlimit`` (util-linux) sets the rlimits every process of the job inherits, then
    starts bubblewrap: no ``preexec_fn`` in a threaded server. CPU: SIGXCPU at the soft
    limit, SIGKILL a second later if the job catches it. ``nproc`` off where RLIMIT_NPROC
    would count every process of the uid on the node (a Kubernetes pod: the kubelet's
    pids limit bounds it there)."""
    args = [
        "prlimit",
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",
        f"--as={limits.memory_mb * _MB}",
    ]
    if nproc:
        args.append(f"--nproc={limits.processes}")
    return [
        *args,
        f"--nofile={limits.open_files}",
        f"--fsize={limits.file_mb * _MB}",
        "--core=0",
        "--",
    ]


def run_sandboxed(
    argv: Sequence[str],
    binds: Iterable[Bind],
    limits: SandboxLimits,
    *,
    log: Path,
    bwrap: str = "bwrap",
    uid: int = 65534,
    env: dict[str, str] | None = None,
    cwd: str = "/",
    owned: Iterable[Path] = (),
) -> SandboxResult:
    """Run ``argv`` in the sandbox; stdout and stderr go to ``log``. ``owned`` folders (the
    writable binds) are handed to ``uid`` first when running as root."""
    if os.geteuid() == 0:
        for folder in owned:
            os.chown(folder, uid, uid)
    command = rlimits(limits) + sandbox_command(
        argv, binds, bwrap=bwrap, uid=uid, env=dict(env or {}), cwd=cwd
    )
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        timed_out = False
        try:
            code = proc.wait(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
            code = proc.wait()
    return SandboxResult(
        exit_code=code if code >= 0 else 128 - code,
        timed_out=timed_out,
        wall_s=time.monotonic() - started,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The whole session: bubblewrap, and through --die-with-parent the job's PID namespace."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        proc.kill()
