"""Blocklists drop recipients; a fully blocked message is deleted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import Stack, build_message, open_stack

pytestmark = pytest.mark.e2e


@dataclass
class Keys:
    exact: str
    from_header: str
    all_blocked: str
    other_sender: str


@pytest.fixture(scope="module")
def scenario(moto_url: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Stack, Keys]]:
    with open_stack(moto_url, tmp_path_factory.mktemp("block")) as stack:
        com, net = stack.domains
        for domain in stack.domains:
            stack.aws.s3.put_bucket_versioning(
                Bucket=stack.bucket(domain),
                VersioningConfiguration={"Status": "Enabled"})
        # Exact address item, with a pattern in other letter case.
        stack.aws.block(f"alice@{com}", "SPAMMER@Bad.Example")
        # Domain item: applies to every recipient of the domain.
        stack.aws.block(net, "*@junk.example")

        keys = Keys(
            exact=stack.deliver(
                com, build_message("spammer@bad.example",
                                   f"alice@{com}, bob@{com}", "exact"),
                "spammer@bad.example", [f"alice@{com}", f"bob@{com}"]),
            from_header=stack.deliver(
                com, build_message("Spammer <spammer@bad.example>",
                                   f"alice@{com}, erin@{com}", "header"),
                "bounces@relay.example", [f"alice@{com}", f"erin@{com}"]),
            all_blocked=stack.deliver(
                net, build_message("x@junk.example",
                                   f"carol@{net}, dan@{net}", "domain"),
                "x@junk.example", [f"carol@{net}", f"dan@{net}"]),
            other_sender=stack.deliver(
                net, build_message("ok@fine.example", f"carol@{net}",
                                   "allowed"),
                "ok@fine.example", [f"carol@{net}"]),
        )
        stack.start_worker()
        stack.wait_received(3)
        stack.wait_drained()
        yield stack, keys


def rcpts_from(stack: Stack, sender: str) -> list[tuple[str, ...]]:
    return [m.rcpt_tos for m in stack.sink.received()
            if m.mail_from == sender]


def version_metadata(stack: Stack, domain: str,
                     key: str) -> list[dict[str, str]]:
    """Return the metadata of every stored version of ``key``, oldest first."""
    s3 = stack.aws.s3
    bucket = stack.bucket(domain)
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    versions = sorted(listing.get("Versions", []),
                      key=lambda v: v["LastModified"])
    return [s3.head_object(Bucket=bucket, Key=key,
                           VersionId=v["VersionId"])["Metadata"]
            for v in versions if v["Key"] == key]


def blocked_version(stack: Stack, keys: Keys) -> dict[str, str]:
    marked = [m for m in version_metadata(stack, stack.net, keys.all_blocked)
              if m.get("processed") == "true"]
    assert len(marked) == 1, f"versions with audit metadata: {marked}"
    return marked[0]


def test_blocklist_exact_pattern_drops_recipient(
        scenario: tuple[Stack, Keys]) -> None:
    stack, _keys = scenario
    assert rcpts_from(stack, "spammer@bad.example") == [
        (f"bob@{stack.com}",)]


def test_blocklist_partial_status(scenario: tuple[Stack, Keys]) -> None:
    stack, keys = scenario
    assert stack.metadata(stack.com, keys.exact)["status"] == "partial"


def test_blocklist_partial_lists_blocked(
        scenario: tuple[Stack, Keys]) -> None:
    stack, keys = scenario
    metadata = stack.metadata(stack.com, keys.exact)
    assert metadata["blocked_recipients"] == f"alice@{stack.com}"


def test_blocklist_partial_lists_delivered(
        scenario: tuple[Stack, Keys]) -> None:
    stack, keys = scenario
    metadata = stack.metadata(stack.com, keys.exact)
    assert metadata["delivered_to"] == f"bob@{stack.com}"


def test_blocklist_from_header_drops_recipient(
        scenario: tuple[Stack, Keys]) -> None:
    stack, _keys = scenario
    assert rcpts_from(stack, "bounces@relay.example") == [
        (f"erin@{stack.com}",)]


def test_blocklist_from_header_match_is_partial(
        scenario: tuple[Stack, Keys]) -> None:
    stack, keys = scenario
    metadata = stack.metadata(stack.com, keys.from_header)
    assert metadata["status"] == "partial"


def test_blocklist_domain_pattern_delivers_nothing(
        scenario: tuple[Stack, Keys]) -> None:
    stack, _keys = scenario
    assert rcpts_from(stack, "x@junk.example") == []


def test_blocklist_all_blocked_object_deleted(
        scenario: tuple[Stack, Keys]) -> None:
    stack, keys = scenario
    assert not stack.object_exists(stack.net, keys.all_blocked)


def test_blocklist_all_blocked_metadata(
        scenario: tuple[Stack, Keys]) -> None:
    stack, keys = scenario
    assert blocked_version(stack, keys)["status"] == "blocked"


def test_blocklist_all_blocked_lists_recipients(
        scenario: tuple[Stack, Keys]) -> None:
    stack, keys = scenario
    assert blocked_version(stack, keys)["blocked_recipients"] == \
        f"carol@{stack.net},dan@{stack.net}"


def test_blocklist_all_blocked_names_sender(
        scenario: tuple[Stack, Keys]) -> None:
    stack, keys = scenario
    assert blocked_version(stack, keys)["blocked_sender"] == "x@junk.example"


def test_blocklist_domain_spares_others(
        scenario: tuple[Stack, Keys]) -> None:
    stack, _keys = scenario
    assert rcpts_from(stack, "ok@fine.example") == [(f"carol@{stack.net}",)]


def test_blocklist_counts_blocked_recipients(
        scenario: tuple[Stack, Keys]) -> None:
    stack, _keys = scenario
    worker = stack.workers[-1]
    counts = [worker.metric("recipients_blocked_total", domain=d)
              for d in stack.domains]
    assert counts == [2, 2]
