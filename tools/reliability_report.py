"""Render the fault-injection results as docs/RELIABILITY.md.

Usage: python tools/reliability_report.py RESULTS.json [OUTPUT.md]

RESULTS.json is what tests/faults writes when RELIABILITY_REPORT names
it: one row per fault with the expected outcome and the observed
numbers.  The script only formats; it needs nothing beyond the standard
library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / \
    "RELIABILITY.md"

INTRO = """\
# Reliability under faults

Each row is one fault injected into a running worker (`python3 main.py`
against moto and a local SMTP server on 127.0.0.1), the outcome the
design promises, and what was observed. **Lost** counts messages
neither delivered nor parked with a reason. **Duplicated** counts extra
copies delivered to one recipient. **Parked** counts messages left in a
dead-letter queue or deleted and marked or logged as failed, and
recipients that the SMTP server rejected with 5xx, which are recorded in
`failed_recipients`. The test suite is `tests/faults/`, one module per
fault family.

Limits: every fault runs against moto and aiosmtpd on one machine, in
one run. moto's timing of visibility and redrive and its S3 and
DynamoDB consistency differ from AWS. Network faults are injected only
between the worker and the local AWS endpoint and the local SMTP
server. No real Postfix, TLS or AWS account was involved. Duplicate
counts after kill -9 vary from run to run, because they depend on how
many messages the SMTP server had accepted without their audit being
written at the moment of the kill.
"""


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("|", "\\|").replace("\n", " ")


def notes(row: dict[str, Any]) -> str:
    extra = row.get("notes") or {}
    return "; ".join(f"{name.replace('_', ' ')}: {cell(value)}"
                     for name, value in extra.items())


def render(document: dict[str, Any]) -> str:
    rows = document.get("rows", [])
    passed = sum(row.get("outcome") == "passed" for row in rows)
    lines = [INTRO]
    lines.append(f"- Command: `make reliability` (runs "
                 f"`{document.get('command', '?')}`)")
    lines.append(f"- Machine: {document.get('cores', '?')} cores, "
                 f"{document.get('machine', '?')}")
    lines.append(f"- Date: {document.get('date', '?')}")
    lines.append(f"- Result: {passed} of {len(rows)} passed in "
                 f"{document.get('seconds', '?')} s")
    lines.append("")
    lines.append("| Fault | Expected | Msgs | Lost | Duplicated | Parked "
                 "| Result | Notes |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
    for row in rows:
        lines.append("| " + " | ".join([
            cell(row.get("fault")), cell(row.get("expected")),
            cell(row.get("messages")), cell(row.get("lost")),
            cell(row.get("duplicated")), cell(row.get("parked")),
            f"{cell(row.get('outcome'))} ({cell(row.get('seconds'))} s)",
            notes(row)]) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    source = Path(argv[1])
    if not source.exists():
        print(f"{source}: no results; run the fault tests with "
              f"RELIABILITY_REPORT={source}", file=sys.stderr)
        return 1
    output = Path(argv[2]) if len(argv) == 3 else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(json.loads(source.read_text())))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
