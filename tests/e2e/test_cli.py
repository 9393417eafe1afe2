"""``python3 main.py rules ...`` and ``python3 main.py check`` as an
operator runs them, against the local AWS endpoint and SMTP server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack.ports import free_port
from devstack.provision import BLOCKED_TABLE, RULES_TABLE
from tests.e2e.conftest import (MAIN, Stack, build_message, unique_label,
                                wait_until, worker_environment)

pytestmark = pytest.mark.e2e


def run_main(stack: Stack, *argv: str, **settings: str
             ) -> subprocess.CompletedProcess[str]:
    """Run main.py with ``argv`` in a clean environment, aimed at moto."""
    values = {"DOMAINS": ",".join(stack.domains),
              "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(stack.sink.port),
              "SMTP_TIMEOUT": "5",
              "AWS_EC2_METADATA_DISABLED": "true",
              "AWS_CONFIG_FILE": str(stack.folder / "no-aws-config"),
              "AWS_SHARED_CREDENTIALS_FILE": str(stack.folder / "no-creds")}
    values.update(settings)
    env = {name: value for name, value in
           worker_environment(stack.aws.endpoint_url, **values).items()
           if value is not None}
    return subprocess.run([sys.executable, str(MAIN), *argv], env=env,
                          cwd=stack.folder, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def item(stack: Stack, table: str, key: str) -> dict[str, Any] | None:
    return stack.aws.dynamodb.get_item(
        TableName=table, Key={"email_address": {"S": key}},
        ConsistentRead=True).get("Item")


def check_lines(output: str) -> dict[str, tuple[str, str]]:
    """Map each check's subject to its status and detail."""
    lines = {}
    for line in output.splitlines():
        match = re.match(r"^(ok|warn|FAIL) +(.+?)  (.*)$", line)
        assert match, f"not a check line: {line!r}"
        status, checked, detail = match.groups()
        lines[checked] = (status, detail)
    return lines


# -- rules ----------------------------------------------------------------


def test_help_lists_the_commands(stack: Stack) -> None:
    result = run_main(stack, "--help")
    assert result.returncode == 0
    for command in ("run", "check", "rules"):
        assert f"    {command} " in result.stdout


def test_rules_round_trip(stack: Stack) -> None:
    alice = f"alice@{stack.com}"
    steps = [
        ("rules", "ooo", "set", f"Alice@{stack.com}", "--message",
         "Out until Monday.", "--subject", "Away", "--days", "5"),
        ("rules", "forward", "add", alice, f"bob@{stack.net}"),
        ("rules", "forward", "add", alice, "carol@elsewhere.example"),
        ("rules", "block", "add", alice, "*@Spam.example"),
        ("rules", "block", "add", stack.com, "offers@*"),
    ]
    for argv in steps:
        result = run_main(stack, *argv)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
    assert item(stack, RULES_TABLE, alice) == {
        "email_address": {"S": alice},
        "ooo_active": {"BOOL": True},
        "ooo_message": {"S": "Out until Monday."},
        "ooo_subject": {"S": "Away"},
        "ooo_content_type": {"S": "text/plain"},
        "ooo_days": {"N": "5"},
        "forwards": {"L": [{"S": f"bob@{stack.net}"},
                           {"S": "carol@elsewhere.example"}]},
    }
    assert item(stack, BLOCKED_TABLE, alice) == {
        "email_address": {"S": alice},
        "blocked_patterns": {"L": [{"S": "*@spam.example"}]}}
    assert item(stack, BLOCKED_TABLE, stack.com) == {
        "email_address": {"S": stack.com},
        "blocked_patterns": {"L": [{"S": "offers@*"}]}}

    show = run_main(stack, "rules", "show", alice)
    assert show.returncode == 0
    assert "  ooo_subject: Away" in show.stdout.splitlines()
    assert f"  blocked_patterns of {stack.com}: offers@*" \
        in show.stdout.splitlines()

    listed = run_main(stack, "rules", "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert (f"{alice} ooo=on,5d forwards=bob@{stack.net},"
            "carol@elsewhere.example blocked=*@spam.example") in lines
    assert f"{stack.com} blocked=offers@*" in lines

    for argv in (("rules", "ooo", "clear", alice),
                 ("rules", "forward", "remove", alice, f"bob@{stack.net}")):
        assert run_main(stack, *argv).returncode == 0
    assert item(stack, RULES_TABLE, alice) == {
        "email_address": {"S": alice},
        "forwards": {"L": [{"S": "carol@elsewhere.example"}]}}
    assert run_main(stack, "rules", "forward", "clear",
                    alice).returncode == 0
    assert run_main(stack, "rules", "block", "remove", alice,
                    "*@spam.example").returncode == 0
    assert item(stack, RULES_TABLE, alice) is None
    assert item(stack, BLOCKED_TABLE, alice) is None


def test_rules_keep_unknown_attributes(stack: Stack) -> None:
    alice = f"alice@{stack.com}"
    stack.aws.dynamodb.put_item(TableName=RULES_TABLE, Item={
        "email_address": {"S": alice}, "owner": {"S": "helpdesk"},
        "ooo_active": {"BOOL": False}, "ooo_message": {"S": "old"}})
    result = run_main(stack, "rules", "ooo", "set", alice, "--message",
                      "new", "--html")
    assert result.returncode == 0, result.stderr
    stored = item(stack, RULES_TABLE, alice)
    assert stored is not None
    assert stored["owner"] == {"S": "helpdesk"}
    assert stored["ooo_active"] == {"BOOL": True}
    assert stored["ooo_content_type"] == {"S": "text/html"}


@pytest.mark.parametrize("argv, words", [
    (("rules", "ooo", "set", "alice@{com}", "--message", "a\nb"),
     ["--message", "line breaks"]),
    (("rules", "ooo", "set", "alice@{com}", "--message", "x",
      "--days", "366"), ["--days", "1 to 365"]),
    (("rules", "forward", "add", "alice@{com}", "bob"),
     ["TARGET", "'bob'"]),
    (("rules", "block", "add", "{com}", "a[b"), ["PATTERN", "["]),
    (("rules", "show", "alice"), ["ADDRESS_OR_DOMAIN"]),
])
def test_invalid_input_exits_2(stack: Stack, argv: tuple[str, ...],
                               words: list[str]) -> None:
    result = run_main(stack, *(a.format(com=stack.com) for a in argv))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    for word in words:
        assert word in result.stderr
    assert item(stack, RULES_TABLE, f"alice@{stack.com}") is None
    assert item(stack, BLOCKED_TABLE, stack.com) is None


def test_aws_error_names_table_and_code(stack: Stack) -> None:
    table = f"missing-{unique_label()}"
    result = run_main(stack, "rules", "block", "add", stack.com, "*@x.example",
                      DYNAMODB_BLOCKED_TABLE=table)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert table in result.stderr
    assert "ResourceNotFoundException" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_endpoint_exits_1(stack: Stack) -> None:
    result = run_main(stack, "rules", "show", f"alice@{stack.com}",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "EndpointConnectionError" in result.stderr
    assert RULES_TABLE in result.stderr


def test_cli_block_stops_delivery(stack: Stack) -> None:
    result = run_main(stack, "rules", "block", "add", f"carol@{stack.net}",
                      "*@junk.example")
    assert result.returncode == 0, result.stderr
    stack.start_worker()
    blocked = stack.deliver(
        stack.net, build_message("ads@junk.example", f"carol@{stack.net}",
                                 "blocked"),
        "ads@junk.example", [f"carol@{stack.net}"])
    allowed = stack.deliver(
        stack.net, build_message("friend@fine.example",
                                 f"carol@{stack.net}", "allowed"),
        "friend@fine.example", [f"carol@{stack.net}"])
    assert stack.wait_processed(stack.net, allowed)["status"] == "delivered"
    wait_until(lambda: not stack.object_exists(stack.net, blocked),
               description="the blocked message's object to be deleted")
    stack.wait_drained()
    assert [m.mail_from for m in stack.sink.received()] \
        == ["friend@fine.example"]


# -- check ----------------------------------------------------------------


def test_check_passes_when_all_exist(stack: Stack) -> None:
    # A table name of its own, so that whether another test created the
    # default reply log on this moto server does not matter.
    autoreply = f"autoreply-{unique_label()}"
    stack.aws.dynamodb.create_table(
        TableName=autoreply,
        KeySchema=[{"AttributeName": "reply_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "reply_key",
                               "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    result = run_main(stack, "check", DYNAMODB_AUTOREPLY_TABLE=autoreply)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = check_lines(result.stdout)
    assert len(lines) == len(result.stdout.splitlines())
    expected = {"configuration", "smtp",
                *(f"queue {d}" for d in stack.domains),
                *(f"bucket {d}" for d in stack.domains),
                *(f"table {t}" for t in (RULES_TABLE, BLOCKED_TABLE,
                                         "ses-outbound-messages",
                                         autoreply))}
    assert set(lines) == expected
    assert all(status == "ok" for status, _ in lines.values()), lines
    assert lines[f"bucket {stack.com}"][1].startswith(
        stack.bucket(stack.com))
    assert str(stack.sink.port) in lines["smtp"][1]


def test_check_fails_for_a_missing_bucket(stack: Stack) -> None:
    stack.aws.s3.delete_bucket(Bucket=stack.bucket(stack.net))
    result = run_main(stack, "check",
                      DYNAMODB_AUTOREPLY_TABLE=f"none-{unique_label()}")
    assert result.returncode == 1
    lines = check_lines(result.stdout)
    status, detail = lines[f"bucket {stack.net}"]
    assert status == "FAIL"
    assert stack.bucket(stack.net) in detail
    assert "HeadBucket" in detail
    assert lines[f"bucket {stack.com}"][0] == "ok"
    assert lines[f"queue {stack.net}"][0] == "ok"
    assert lines["smtp"][0] == "ok"
    others = [s for checked, (s, _) in lines.items()
              if checked != f"bucket {stack.net}"
              and not checked.startswith("table none-")]
    assert set(others) == {"ok"}


def test_check_warns_missing_reply_log(stack: Stack) -> None:
    table = f"none-{unique_label()}"
    result = run_main(stack, "check", DYNAMODB_AUTOREPLY_TABLE=table)
    assert result.returncode == 0, result.stdout
    status, detail = check_lines(result.stdout)[f"table {table}"]
    assert status == "warn"
    assert "ResourceNotFoundException" in detail


def test_check_fails_for_missing_resources(stack: Stack) -> None:
    stack.aws.sqs.delete_queue(QueueUrl=stack.queues[stack.com])
    table = f"none-{unique_label()}"
    result = run_main(stack, "check", SMTP_PORT=str(free_port()),
                      DYNAMODB_RULES_TABLE=table)
    assert result.returncode == 1
    lines = check_lines(result.stdout)
    assert lines[f"queue {stack.com}"][0] == "FAIL"
    assert lines[f"queue {stack.net}"][0] == "ok"
    assert lines[f"table {table}"][0] == "FAIL"
    assert "ResourceNotFoundException" in lines[f"table {table}"][1]
    assert lines["smtp"][0] == "FAIL"
    assert "ConnectionRefusedError" in lines["smtp"][1]


def test_check_bad_configuration_exits_2(stack: Stack) -> None:
    result = run_main(stack, "check", SMTP_PORT="smtp")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "SMTP_PORT" in result.stderr
