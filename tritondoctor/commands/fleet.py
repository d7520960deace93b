"""`tritondoctor fleet merge | run`: many nodes' `check --json` reports, grouped by what they found.

Exit status: 0 every node read and none has an error; 1 a node has an error; 2 a node's report
could not be read or a node did not answer (the picture is incomplete, whatever the others say),
or bad usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

import typer

if TYPE_CHECKING:
    from tritondoctor.fleet.merge import NodeReport

fleet_app = typer.Typer(
    no_args_is_help=True,
    help="Many nodes: merge their check --json reports, or run the check on every node of a Ray cluster.",
)


def register(app: typer.Typer) -> None:
    app.add_typer(fleet_app, name="fleet")


@fleet_app.command("merge")
def merge(
    paths: List[str] = typer.Argument(..., metavar="PATH...", help="check --json files, or directories of *.json files."),
    json_out: bool = typer.Option(False, "--json", help="Print the fleet summary as JSON."),
) -> int:
    """Group nodes by their findings and key resolutions; the largest group first, the others by
    what sets them apart from it."""
    from tritondoctor.fleet.merge import load_paths

    return _report(load_paths(paths), json_out)


@fleet_app.command("run")
def run(
    address: Optional[str] = typer.Argument(None, metavar="[ADDRESS]", help="Ray cluster address (default: RAY_ADDRESS, else auto)."),
    use_ray: bool = typer.Option(False, "--ray", help="Run the check on every alive node of a Ray cluster."),
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter to inspect on each node (default: the Python the cluster runs)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds each node's check may take."),
    json_out: bool = typer.Option(False, "--json", help="Print the fleet summary as JSON."),
) -> int:
    """Run `check --json` once per node, then summarize as `fleet merge` does. A node that does
    not answer is reported as such."""
    from tritondoctor.commands.common import positive_seconds
    from tritondoctor.errors import UsageError
    from tritondoctor.fleet.ray_run import run_fleet

    if not use_ray:
        raise UsageError("fleet run: name the engine: --ray [ADDRESS] (Slurm and Kubernetes: see contrib/)")
    positive_seconds("--timeout", timeout)
    return _report(run_fleet(address, python, timeout), json_out)


def _report(nodes: "List[NodeReport]", json_out: bool) -> int:
    from tritondoctor.commands.common import console, print_json
    from tritondoctor.fleet.merge import merge as merge_nodes
    from tritondoctor.fleet.render import render_fleet

    summary = merge_nodes(nodes)
    if json_out:
        print_json(summary)
    else:
        render_fleet(console(), summary)
    return int(summary["exit_status"])
