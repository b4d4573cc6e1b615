"""The ``hfp`` command line: a thin click layer over the library.

Each command group lives in its own module and only parses options, calls one library function and prints.
User errors (``HfpError``) become one line on stderr and exit status 2. Unexpected errors print one line too,
unless ``HFP_RAISE_ERRORS=1`` is set or the CLI runs under pytest, where they propagate with their traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from profiler import __version__
from profiler.errors import HfpError


def _raise_errors() -> bool:
    return os.environ.get("HFP_RAISE_ERRORS") == "1" or "PYTEST_CURRENT_TEST" in os.environ


class HfpGroup(click.Group):
    """A click group that turns hfp's errors into one-line messages with exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand, translating errors into one-line messages."""
        try:
            return super().invoke(ctx)
        except HfpError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except click.UsageError as e:  # one line, like every other user error, with where to look for help
            command = f" {ctx.invoked_subcommand}" if ctx.invoked_subcommand else ""
            click.echo(f"error: {e.format_message()} (see `hfp{command} --help`)", err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as e:
            if _raise_errors():
                raise
            click.echo(f"internal error: {type(e).__name__}: {e} (set HFP_RAISE_ERRORS=1 for a traceback)", err=True)
            sys.exit(1)


@click.group(cls=HfpGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="hfp")
def cli() -> None:
    """hfp, the harm-feasibility profiler.

    Measures GGUF models through llama.cpp on this machine (throughput, latency, memory, energy) and estimates
    whether a campaign's workload is feasible on consumer hardware tiers. Campaign runs use benign proxy
    prompts of the campaign's token shape; hfp never mass-produces harmful text.

    Start with `hfp run` (measure the default model), then `hfp estimate` and `hfp report`.
    """


def _register() -> None:
    from profiler.cli import feasibility, hardware, models, report, run, safety

    for module in (run, models, hardware, feasibility, report, safety):
        for command in module.commands:
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hfp")
