"""Start the email worker: ``python3 main.py``.

With a command (``check``, ``rules ...``; see ``--help``) it runs that
operator command instead.  The commands are in ``email_worker/cli/``.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        return run_worker()
    from dotenv import load_dotenv

    from email_worker.cli import run_cli

    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    return run_cli(args, os.environ, run_worker)


def run_worker() -> int:
    # Until the worker installs its own handlers, a stop request simply
    # ends start-up: nothing has been received yet.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))
    from dotenv import load_dotenv

    from email_worker.config import load_settings
    from email_worker.errors import ConfigError
    from email_worker.logs import configure_logging

    # Variables already set in the environment win over the .env file.
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"email-worker: invalid configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)

    from email_worker.worker import Worker

    try:
        worker = Worker(settings)
    except OSError as exc:
        print(f"email-worker: cannot start: {exc}", file=sys.stderr)
        return 1
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
