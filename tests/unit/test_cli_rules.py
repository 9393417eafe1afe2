"""The rules commands: input checks, and what they write to DynamoDB.

The commands run in this process through ``run_cli`` against a moto
server on 127.0.0.1 that this module starts.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.aws_endpoint import CREDENTIALS, REGION, MotoServer
from devstack.provision import BLOCKED_TABLE, RULES_TABLE, LocalAws
from email_worker.cli import build_parser, run_cli, validate
from email_worker.cli.rules import summary
from email_worker.cli.store import Update


# -- input validation --------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("Alice@Example.COM", "alice@example.com"),
    (" bob@mail.example.org ", "bob@mail.example.org"),
    ("first.last+tag@example.com.", "first.last+tag@example.com"),
])
def test_address_is_lower_cased(raw: str, expected: str) -> None:
    assert validate.address(raw) == expected


@pytest.mark.parametrize("raw", [
    "alice", "alice@", "@example.com", "a@b@example.com", "alice@localhost",
    "al ice@example.com", "alice@exa mple.com", "<alice@example.com>",
    "alice@example..com", "alice@-example.com", "alice@example.123",
    "a\u200b@example.com", "\ufeffalice@example.com",
])
def test_bad_addresses_are_rejected(raw: str) -> None:
    with pytest.raises(validate.InvalidValue):
        validate.address(raw)


def test_domain_needs_a_dot() -> None:
    assert validate.domain("Example.COM") == "example.com"
    for raw in ("example", "", "exa_mple.com", "example.com/x"):
        with pytest.raises(validate.InvalidValue):
            validate.domain(raw)


def test_address_or_domain_depends_on_the_at_sign() -> None:
    assert validate.address_or_domain("Example.com") == "example.com"
    assert validate.address_or_domain("A@example.com") == "a@example.com"


@pytest.mark.parametrize("raw, expected", [
    ("*@Bad.Example", "*@bad.example"),
    ("spam@*.com", "spam@*.com"),
    ("spam[0-9]@*", "spam[0-9]@*"),
    ("[!a]*@x.example", "[!a]*@x.example"),
    ("[]x]@x.example", "[]x]@x.example"),
    ("?@x.example", "?@x.example"),
])
def test_good_patterns(raw: str, expected: str) -> None:
    assert validate.pattern(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "   ", "spam @x.example", "spam\t@x", "a[b@x.example",
    "a]b@x.example", "[@x.example", "x@y\x00",
])
def test_bad_patterns_are_rejected(raw: str) -> None:
    with pytest.raises(validate.InvalidValue):
        validate.pattern(raw)


@pytest.mark.parametrize("raw, expected", [("1", 1), ("365", 365),
                                           ("7", 7)])
def test_days_in_range(raw: str, expected: int) -> None:
    assert validate.days(raw) == expected


@pytest.mark.parametrize("raw", ["0", "366", "-1", "1.5", "seven", "",
                                 "\u0663"])
def test_days_out_of_range(raw: str) -> None:
    with pytest.raises(validate.InvalidValue):
        validate.days(raw)


@pytest.mark.parametrize("raw", ["a\nb", "a\rb", "a\r\nb", "\n", "a\x07",
                                 "  "])
def test_text_lines_reject_line_breaks(raw: str) -> None:
    with pytest.raises(validate.InvalidValue):
        validate.text_line("subject")(raw)


def test_text_line_keeps_the_text() -> None:
    assert validate.text_line("message")("Away,\tback Monday") \
        == "Away,\tback Monday"


def test_update_aliases_every_name() -> None:
    update = Update().set("name", "x").set("name", "y").remove("ttl")
    expression = update.expression()
    assert expression == "SET #a0 = :v0, #a0 = :v1 REMOVE #a1"
    assert update.names == {"#a0": "name", "#a1": "ttl"}
    assert update.values == {":v0": {"S": "x"}, ":v1": {"S": "y"}}


def test_help_lists_the_commands() -> None:
    text = build_parser().format_help()
    for command in ("run", "check", "rules"):
        assert command in text


def test_list_summary_words() -> None:
    words = summary({"ooo_active": True, "ooo_message": "x",
                     "forwards": ["a@x.example", "b@x.example"]},
                    ["*@bad.example"])
    assert words == ["ooo=on,7d", "forwards=a@x.example,b@x.example",
                     "blocked=*@bad.example"]
    assert summary(None, []) == ["(empty)"]


# -- against moto ---------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log, MotoServer(log=log) as server:
        aws = LocalAws(server.url)
        aws.create_tables()
        yield aws


@pytest.fixture
def env(moto: LocalAws, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> dict[str, str]:
    """Point boto3 in this process at moto only."""
    values = {**CREDENTIALS, "AWS_ENDPOINT_URL": moto.endpoint_url,
              "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
              "AWS_EC2_METADATA_DISABLED": "true",
              "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
              "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-creds")}
    for name in ("DOMAINS", "DYNAMODB_RULES_TABLE", "DYNAMODB_BLOCKED_TABLE",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


class Result:
    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err


def cli(env: dict[str, str], *argv: str, **settings: str) -> Result:
    out, err = io.StringIO(), io.StringIO()

    def no_daemon() -> int:
        raise AssertionError("the worker must not start")
    status = run_cli(list(argv), {**env, **settings}, no_daemon, out, err)
    return Result(status, out.getvalue(), err.getvalue())


def raw_item(moto: LocalAws, table: str, key: str) -> dict[str, Any] | None:
    return moto.dynamodb.get_item(
        TableName=table, Key={"email_address": {"S": key}},
        ConsistentRead=True).get("Item")


_counter = iter(range(1_000_000))


@pytest.fixture
def address() -> str:
    return f"user{next(_counter)}@unit.example"


def test_ooo_set_writes_typed_attributes(moto: LocalAws, env: dict,
                                         address: str) -> None:
    result = cli(env, "rules", "ooo", "set", address.upper(),
                 "--message", "Away until Monday", "--subject", "Away",
                 "--html", "--days", "3")
    assert result.status == 0, result.err
    assert raw_item(moto, RULES_TABLE, address) == {
        "email_address": {"S": address},
        "ooo_active": {"BOOL": True},
        "ooo_message": {"S": "Away until Monday"},
        "ooo_subject": {"S": "Away"},
        "ooo_content_type": {"S": "text/html"},
        "ooo_days": {"N": "3"},
    }


def test_ooo_set_resets_omitted_options(moto: LocalAws, env: dict,
                                        address: str) -> None:
    cli(env, "rules", "ooo", "set", address, "--message", "one",
        "--subject", "S", "--days", "9", "--html")
    assert cli(env, "rules", "ooo", "set", address,
               "--message", "two").status == 0
    item = raw_item(moto, RULES_TABLE, address)
    assert item is not None
    assert item["ooo_message"] == {"S": "two"}
    assert item["ooo_content_type"] == {"S": "text/plain"}
    assert "ooo_subject" not in item
    assert "ooo_days" not in item


def test_changes_keep_other_attributes(moto: LocalAws, env: dict,
                                       address: str) -> None:
    moto.dynamodb.put_item(TableName=RULES_TABLE, Item={
        "email_address": {"S": address}, "note": {"S": "keep me"},
        "forwards": {"SS": ["b@x.example", "a@x.example"]}})
    assert cli(env, "rules", "ooo", "set", address,
               "--message", "away").status == 0
    assert cli(env, "rules", "forward", "add", address,
               "c@x.example").status == 0
    item = raw_item(moto, RULES_TABLE, address)
    assert item is not None
    assert item["note"] == {"S": "keep me"}
    # A string set is rewritten as the list the worker expects.
    assert item["forwards"] == {"L": [{"S": "a@x.example"},
                                      {"S": "b@x.example"},
                                      {"S": "c@x.example"}]}
    assert cli(env, "rules", "ooo", "clear", address).status == 0
    assert cli(env, "rules", "forward", "clear", address).status == 0
    assert raw_item(moto, RULES_TABLE, address) == {
        "email_address": {"S": address}, "note": {"S": "keep me"}}


def test_forward_add_is_idempotent(moto: LocalAws, env: dict,
                                   address: str) -> None:
    for _ in range(2):
        result = cli(env, "rules", "forward", "add", address,
                     "Other@X.Example")
        assert result.status == 0, result.err
    assert "(already there)" in result.out
    item = raw_item(moto, RULES_TABLE, address)
    assert item is not None
    assert item["forwards"] == {"L": [{"S": "other@x.example"}]}


def test_forward_to_itself_is_rejected(moto: LocalAws, env: dict,
                                      address: str) -> None:
    result = cli(env, "rules", "forward", "add", address, address)
    assert result.status == 2
    assert result.err.count("\n") == 1
    assert raw_item(moto, RULES_TABLE, address) is None


def test_last_removal_deletes_empty_item(
        moto: LocalAws, env: dict, address: str) -> None:
    cli(env, "rules", "forward", "add", address, "a@x.example")
    cli(env, "rules", "forward", "add", address, "b@x.example")
    cli(env, "rules", "forward", "remove", address, "a@x.example")
    item = raw_item(moto, RULES_TABLE, address)
    assert item is not None
    assert item["forwards"] == {"L": [{"S": "b@x.example"}]}
    cli(env, "rules", "forward", "remove", address, "b@x.example")
    assert raw_item(moto, RULES_TABLE, address) is None


def test_missing_entry_remove_changes_nothing(
        moto: LocalAws, env: dict, address: str) -> None:
    result = cli(env, "rules", "block", "remove", address, "*@x.example")
    assert result.status == 0
    assert "nothing changed" in result.out
    assert raw_item(moto, BLOCKED_TABLE, address) is None


def test_clear_missing_item_creates_nothing(
        moto: LocalAws, env: dict, address: str) -> None:
    for argv in (("ooo", "clear", address), ("forward", "clear", address),
                 ("block", "clear", address)):
        result = cli(env, "rules", *argv)
        assert result.status == 0, result.err
        assert "nothing to clear" in result.out
    assert raw_item(moto, RULES_TABLE, address) is None
    assert raw_item(moto, BLOCKED_TABLE, address) is None


def test_block_patterns_for_a_domain(moto: LocalAws, env: dict) -> None:
    domain = f"d{next(_counter)}.example"
    assert cli(env, "rules", "block", "add", domain.upper(),
               "*@BAD.example").status == 0
    assert cli(env, "rules", "block", "add", domain,
               "spam[0-9]@*").status == 0
    assert raw_item(moto, BLOCKED_TABLE, domain) == {
        "email_address": {"S": domain},
        "blocked_patterns": {"L": [{"S": "*@bad.example"},
                                   {"S": "spam[0-9]@*"}]}}
    result = cli(env, "rules", "show", f"x@{domain}")
    assert f"blocked_patterns of {domain}: *@bad.example, spam[0-9]@*" \
        in result.out
    assert cli(env, "rules", "block", "clear", domain).status == 0
    assert raw_item(moto, BLOCKED_TABLE, domain) is None


def test_show_prints_every_attribute(moto: LocalAws, env: dict,
                                     address: str) -> None:
    cli(env, "rules", "ooo", "set", address, "--message", "Back soon",
        "--days", "2")
    cli(env, "rules", "forward", "add", address, "f@x.example")
    cli(env, "rules", "block", "add", address, "*@spam.example")
    result = cli(env, "rules", "show", address)
    assert result.status == 0
    assert result.out.splitlines() == [
        address,
        "  ooo_active: true",
        "  ooo_message: Back soon",
        "  ooo_content_type: text/plain",
        "  ooo_days: 2",
        "  forwards: f@x.example",
        "  blocked_patterns: *@spam.example",
        "  blocked_patterns of unit.example: (none)",
    ]


def test_show_json(moto: LocalAws, env: dict, address: str) -> None:
    import json
    cli(env, "rules", "forward", "add", address, "f@x.example")
    document = json.loads(cli(env, "rules", "show", address,
                              "--json").out)
    assert document["rules"] == {"forwards": ["f@x.example"]}
    assert document["blocked_patterns"] == []


def test_list_scans_every_page(moto: LocalAws, env: dict) -> None:
    domain = f"many{next(_counter)}.example"
    # Large items make moto's Scan return several 1 MB pages.
    filler = "x" * 200_000
    keys = [f"u{i}@{domain}" for i in range(12)]
    for key in keys:
        moto.dynamodb.put_item(TableName=RULES_TABLE, Item={
            "email_address": {"S": key}, "filler": {"S": filler},
            "forwards": {"L": [{"S": "f@x.example"}]}})
    moto.block(keys[0], "*@bad.example")
    page = moto.dynamodb.scan(TableName=RULES_TABLE)
    assert "LastEvaluatedKey" in page, "expected more than one page"
    result = cli(env, "rules", "list")
    assert result.status == 0, result.err
    lines = [line for line in result.out.splitlines()
             if line.split()[0].endswith("@" + domain)]
    assert len(lines) == len(keys)
    assert f"{keys[0]} forwards=f@x.example blocked=*@bad.example" in lines
    for key in keys:
        moto.dynamodb.delete_item(TableName=RULES_TABLE,
                                  Key={"email_address": {"S": key}})


@pytest.mark.parametrize("argv", [
    ("rules", "ooo", "set", "nobody", "--message", "x"),
    ("rules", "ooo", "set", "a@x.example", "--message", "x\ny"),
    ("rules", "ooo", "set", "a@x.example", "--message", "x",
     "--subject", "a\r\nBcc: b@x.example"),
    ("rules", "ooo", "set", "a@x.example", "--message", "x", "--days", "0"),
    ("rules", "ooo", "set", "a@x.example"),
    ("rules", "block", "add", "a@x.example", "bad pattern"),
    ("rules", "block", "add", "a@x.example", "[abc"),
    ("rules", "block", "add", "not-a-domain", "*@x.example"),
    ("rules", "forward", "add", "a@x.example", "b@@x.example"),
    ("rules",),
    ("rules", "nonsense"),
    ("--no-such-option",),
])
def test_invalid_input_exits_2(
        moto: LocalAws, env: dict, argv: tuple[str, ...]) -> None:
    result = cli(env, *argv)
    assert result.status == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith("email-worker: ")
    assert "Traceback" not in result.err
    assert raw_item(moto, RULES_TABLE, "a@x.example") is None


def test_missing_table_names_table_and_code(env: dict) -> None:
    result = cli(env, "rules", "forward", "add", "a@x.example",
                 "b@x.example", DYNAMODB_RULES_TABLE="no-such-rules")
    assert result.status == 1
    assert result.err.count("\n") == 1
    assert "no-such-rules" in result.err
    assert "ResourceNotFoundException" in result.err


def test_bad_configuration_is_status_2(env: dict) -> None:
    result = cli(env, "rules", "list", AWS_REGION="nowhere")
    assert result.status == 2
    assert "AWS_REGION" in result.err
    assert result.err.count("\n") == 1


def test_address_outside_domains_warns(env: dict, address: str) -> None:
    result = cli(env, "rules", "show", address, DOMAINS="example.com")
    assert result.status == 0
    assert "unit.example is not in DOMAINS" in result.err
