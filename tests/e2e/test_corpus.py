"""Real mail reaches the SMTP server exactly once and byte for byte."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (CORPUS_DIR, Stack, as_stored_by_ses,
                                open_stack)

pytestmark = pytest.mark.e2e

SENDER = "sender@origin.example"
FOLDERS = ("stdlib-email", "bounces")


def corpus(folder: str) -> dict[str, bytes]:
    """Map a recipient local part to the message SES would have stored."""
    files = sorted((CORPUS_DIR / folder).glob("*.eml"))
    return {path.stem.lower(): as_stored_by_ses(path.read_bytes())
            for path in files}


@pytest.fixture(scope="module", params=FOLDERS)
def delivered_corpus(
        request: pytest.FixtureRequest, moto_url: str,
        tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, dict[str, bytes]]]:
    """Queue a whole folder, alternating domains, and let it drain.

    One worker run per folder serves every test of this module.
    """
    messages = corpus(request.param)
    folder = tmp_path_factory.mktemp(f"corpus-{request.param}")
    with open_stack(moto_url, folder) as stack:
        stack.start_worker()
        for number, (local, raw) in enumerate(messages.items()):
            domain = stack.domains[number % 2]
            stack.deliver(domain, raw, SENDER, [f"{local}@{domain}"])
        stack.wait_drained(timeout=90)
        yield stack, messages


def by_local_part(stack: Stack) -> dict[str, list[bytes]]:
    received: dict[str, list[bytes]] = {}
    for mail in stack.sink.received():
        for recipient in mail.rcpt_tos:
            local = recipient.partition("@")[0]
            received.setdefault(local, []).append(mail.content)
    return received


def test_corpus_each_message_delivered_once(
        delivered_corpus: tuple[Stack, dict[str, bytes]]) -> None:
    stack, messages = delivered_corpus
    counts = Counter({local: len(contents) for local, contents
                      in by_local_part(stack).items()})
    assert counts == Counter({local: 1 for local in messages})


def test_corpus_bytes_equal_stored_object(
        delivered_corpus: tuple[Stack, dict[str, bytes]]) -> None:
    stack, messages = delivered_corpus
    received = by_local_part(stack)
    differing = [local for local, raw in messages.items()
                 if received.get(local, [b""])[0] != raw]
    assert differing == []


def test_corpus_one_transaction_per_message(
        delivered_corpus: tuple[Stack, dict[str, bytes]]) -> None:
    stack, messages = delivered_corpus
    assert len(stack.sink.received()) == len(messages)


def test_corpus_8bit_announced(
        delivered_corpus: tuple[Stack, dict[str, bytes]]) -> None:
    stack, _messages = delivered_corpus
    eight_bit = [mail for mail in stack.sink.received()
                 if not mail.content.isascii()]
    without_option = [mail.rcpt_tos for mail in eight_bit
                      if "BODY=8BITMIME" not in mail.mail_options]
    assert without_option == []


def test_corpus_objects_marked_delivered(
        delivered_corpus: tuple[Stack, dict[str, bytes]]) -> None:
    stack, _messages = delivered_corpus
    statuses: Counter[str] = Counter()
    for domain in stack.domains:
        listing = stack.aws.s3.list_objects_v2(Bucket=stack.bucket(domain))
        for item in listing.get("Contents", []):
            metadata = stack.metadata(domain, item["Key"])
            statuses[metadata.get("status", "unmarked")] += 1
    assert set(statuses) == {"delivered"}


def test_corpus_conversion_leaves_no_bare_cr() -> None:
    # Guards the premise of the byte comparison: the stored form has
    # only CRLF line endings, as an SMTP server stores mail.
    for folder in FOLDERS:
        for local, raw in corpus(folder).items():
            assert raw.count(b"\r") == raw.count(b"\r\n"), local


def test_corpus_folders_are_present() -> None:
    present = [folder for folder in FOLDERS
               if any(Path(CORPUS_DIR / folder).glob("*.eml"))]
    assert present == list(FOLDERS)
