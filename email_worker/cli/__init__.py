"""Operator commands of ``python3 main.py``: run, check and rules."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Mapping, NoReturn, Sequence, TextIO

from email_worker.cli import check, rules
from email_worker.cli.common import (EXIT_FAILED, EXIT_USAGE, PROG,
                                     CommandError)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: {message} (see --help)",
                           EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="main.py",
        description="The email worker: delivers mail that Amazon SES "
                    "received (S3 + SQS) to an SMTP server.  Without a "
                    "command it runs the worker.",
        epilog="Settings come from the environment and from .env, as for "
               "the worker itself.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     title="commands")
    run = commands.add_parser(
        "run", help="run the worker (the same as no command)",
        description="Run the worker until SIGTERM or SIGINT.")
    run.set_defaults(handler=None)
    check.add_parser(commands)
    rules.add_parser(commands)
    return parser


def run_cli(argv: Sequence[str], environ: Mapping[str, str],
            daemon: Callable[[], int],
            out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command in ``argv``; return the exit status.

    Every failure ends as one line on ``err``: status 2 for invalid input
    or configuration, 1 for a failed AWS call or anything unexpected.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(list(argv))
        if args.command in (None, "run"):
            return daemon()
        if args.command == "check":
            return check.run(args, environ, out, err)
        return rules.run(args, environ, out, err)
    except CommandError as exc:
        print(f"{PROG}: {exc}", file=err)
        return exc.status
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        print(f"{PROG}: unexpected error: {type(exc).__name__}: {exc}",
              file=err)
        return EXIT_FAILED
