"""The ``hfp`` command line: a thin click layer over the library.

Each command group lives in its own module and only parses options, calls one library function and prints.
User errors (``HfpError``) become one line on stderr and exit status 2. Unexpected errors print one line too,
unless ``HFP_RAISE_ERRORS=1`` is set or the CLI runs under pytest, where they propagate with their traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn

import click

from profiler import __version__, resources
from profiler.cli.common import harden_numbers
from profiler.cli.signals import stop_signals
from profiler.errors import HfpError, signal_name
from profiler.files import DISK_FULL_ERRNOS


def _raise_errors() -> bool:
    return os.environ.get("HFP_RAISE_ERRORS") == "1" or "PYTEST_CURRENT_TEST" in os.environ


# Everything str.splitlines() breaks on (a form feed in a YAML key included).
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def _one_line(message: str) -> str:
    """A message on one line: line breaks in it (from a user's file or a vendor error) are escaped."""
    return "".join(c.encode("unicode_escape").decode() if c in _LINE_BREAKS else c for c in message)


def _fail(message: str, code: int) -> NoReturn:
    try:
        click.echo(_one_line(message), err=True)
    except OSError:  # stderr gone (a closed terminal after SIGHUP): the exit status still says what happened
        pass
    sys.exit(code)


class HfpGroup(click.Group):
    """A click group that turns hfp's errors into one-line messages with exit status 2, and stop signals into
    the interruption Ctrl-C raises (``profiler.cli.signals``), exiting with 128 + the signal."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand, translating errors into one-line messages and signals into 128 + signal."""
        resources.reset_dirs()  # --scenarios-dir/--profiles-dir of an earlier invocation in this process
        with stop_signals() as caught:
            try:
                result = super().invoke(ctx)
            except HfpError as e:
                _fail(f"error: {e}", caught.exit_code or e.exit_code)
            except click.UsageError as e:  # one line, like every other user error, with where to look for help
                command = f" {ctx.invoked_subcommand}" if ctx.invoked_subcommand else ""
                _fail(f"error: {e.format_message()} (see `hfp{command} --help`)", 2)
            except (click.ClickException, click.exceptions.Exit, SystemExit):
                raise
            except (KeyboardInterrupt, click.exceptions.Abort) as e:  # stopped where nothing was kept
                name = caught.name or signal_name(e)
                _fail(f"error: interrupted by {name}", caught.exit_code or 128 + signal.Signals[name])
            except BrokenPipeError:  # `hfp scenarios | head`: the reader left; not an error of hfp's
                sys.stderr = open(os.devnull, "w")  # keep Python from complaining at exit
                sys.stdout = sys.stderr
                sys.exit(caught.exit_code or 0)
            except OSError as e:
                if e.errno in DISK_FULL_ERRNOS:
                    _fail(f"error: disk full writing {e.filename or 'a file'}", caught.exit_code or 2)
                if e.filename is None or _raise_errors():
                    raise
                _fail(f"error: {e.filename}: {e.strerror or e}", caught.exit_code or 2)
            except Exception as e:
                if _raise_errors():
                    raise
                _fail(f"internal error: {type(e).__name__}: {e} (set HFP_RAISE_ERRORS=1 for a traceback)",
                      caught.exit_code or 1)
        if caught.exit_code is not None:  # the command kept its finished work and returned (sweep, safety)
            _fail(f"interrupted by {caught.name}: finished work saved, marked incomplete", caught.exit_code)
        return result


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
    # here, after `cli` exists: the command modules import profiler.cli's submodules (signals, common)
    from profiler.cli import capability, feasibility, hardware, models, report, run, safety, synth

    for module in (run, models, hardware, feasibility, capability, report, safety, synth):
        for command in module.commands:
            cli.add_command(command)

    harden_numbers(cli)  # every numeric option: finite, within 64 bits (profiler.cli.common)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hfp")
