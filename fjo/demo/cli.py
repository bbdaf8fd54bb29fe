"""``fjo synth`` (write the synthetic world) and ``fjo demo`` (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo", "register", "synth"]

SMALL = {"spine_size": 400, "cases": 24}
"""``--small``: a world that runs end to end in well under a minute (tests)."""

Seed = Annotated[int, typer.Option(help="Seed: the same seed gives the same world.")]
SpineSize = Annotated[int | None, typer.Option(help="People on the spine (default 3000).")]
Cases = Annotated[int | None, typer.Option(help="Family-court cases (default 180).")]
Small = Annotated[bool, typer.Option(help=f"A tiny world ({SMALL}).")]


def _config(seed: int, spine_size: int | None, cases: int | None, small: bool) -> object:
    from synth.world import WorldConfig

    base = WorldConfig(seed=seed, **(SMALL if small else {}))
    return WorldConfig(
        seed=seed,
        spine_size=spine_size or base.spine_size,
        cases=cases or base.cases,
        recurrence_share=base.recurrence_share,
        invalid_per_feed=base.invalid_per_feed,
    )


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the world to.")] = Path("var/synth"),
    seed: Seed = 20251124,
    spine_size: SpineSize = None,
    cases: Cases = None,
    small: Small = False,
) -> None:
    """Write a synthetic family-court world: NDJSON per partner and record type, and the truth."""
    from synth.world import WorldConfig, build_world, write_world

    config = _config(seed, spine_size, cases, small)
    assert isinstance(config, WorldConfig)
    world = build_world(config)
    files = write_world(world, out)
    for key, counts in world.counts().items():
        typer.echo(f"{files[key]}\t{counts['valid']} records\t{counts['invalid']} invalid")
    typer.echo(f"{out / 'truth.csv'}\t{len(world.truth)} person records")


def demo(
    out: Annotated[Path, typer.Option(help="Where the report and extract go.")] = Path(
        "demo-output"
    ),
    state_dir: Annotated[
        Path, typer.Option(help="Databases, bus, logs and the world (wiped first).")
    ] = Path("var/demo"),
    seed: Seed = 20251124,
    spine_size: SpineSize = None,
    cases: Cases = None,
    small: Small = False,
    drain_timeout: Annotated[float, typer.Option(help="Seconds to wait for a drain.")] = 900.0,
    serve: Annotated[
        bool,
        typer.Option(help="Then keep the stack and the portal up (dev sign-in) until Ctrl-C."),
    ] = False,
) -> None:
    """Run the platform end to end on the embedded default and write demo-output/."""
    from fjo.demo.run import DemoFailed, DemoOptions, run_demo
    from fjo.demo.summary import print_summary
    from synth.world import WorldConfig

    config = _config(seed, spine_size, cases, small)
    assert isinstance(config, WorldConfig)
    try:
        result = run_demo(
            DemoOptions(
                out=out,
                state_dir=state_dir,
                world=config,
                drain_timeout_s=drain_timeout,
                serve=serve,
            )
        )
    except DemoFailed as exc:
        typer.echo(f"fjo demo failed: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("fjo demo interrupted; every service process was stopped", err=True)
        raise typer.Exit(130) from None
    print_summary(result)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``fjo synth`` and ``fjo demo`` to the main command."""
    app.command("synth")(synth)
    app.command("demo")(demo)
