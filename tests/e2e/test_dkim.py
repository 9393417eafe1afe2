"""A DKIM signature still verifies on delivery and on an internal forward.

The key pair is made in the test, and verification looks the public key
up through a function that returns the test's record, so no DNS query is
made.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.smtp_sink import SmtpSink
from tests.e2e.conftest import (Stack, open_stack, put_rule, split_message,
                                wait_until)

pytestmark = pytest.mark.e2e

SELECTOR = b"e2e"
SIGNING_DOMAIN = b"signer.example"
SENDER = "author@signer.example"


@dataclass
class Keys:
    private_pem: bytes
    record: bytes

    def lookup(self, name: bytes, timeout: int = 5) -> bytes | None:
        expected = SELECTOR + b"._domainkey." + SIGNING_DOMAIN + b"."
        return self.record if name == expected else None


def make_keys() -> Keys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    return Keys(private_pem, record)


def unsigned_message(recipient: str) -> bytes:
    """A message with a folded header, dot lines and trailing spaces."""
    return (
        f"From: Author <{SENDER}>\r\n"
        f"To: {recipient}\r\n"
        "Subject: Signed report with a long subject that is folded\r\n"
        " onto a second line\r\n"
        "Message-ID: <signed.report@signer.example>\r\n"
        "Date: Thu, 04 Dec 2025 15:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "Figures attached.\r\n"
        ".\r\n"
        "..a line that starts with a dot\r\n"
        "trailing spaces   \r\n"
        "\r\n"
        "end\r\n").encode()


def sign(raw: bytes, keys: Keys) -> bytes:
    # simple/simple: any changed byte in the signed part breaks it.
    signature = dkim.sign(
        raw, SELECTOR, SIGNING_DOMAIN, keys.private_pem,
        canonicalize=(b"simple", b"simple"),
        include_headers=[b"from", b"to", b"subject", b"message-id",
                         b"date", b"mime-version", b"content-type"])
    return signature + raw


def verifies(raw: bytes, keys: Keys) -> bool:
    return bool(dkim.verify(raw, dnsfunc=keys.lookup))


@dataclass
class Signed:
    stack: Stack
    internal: SmtpSink
    keys: Keys
    signed: bytes


@pytest.fixture(scope="module")
def signed(moto_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Signed]:
    keys = make_keys()
    internal = SmtpSink().start()
    try:
        with open_stack(moto_url, tmp_path_factory.mktemp("dkim")) as stack:
            com, net = stack.domains
            recipient = f"signed@{com}"
            put_rule(stack.aws, recipient, forwards=[f"copy@{net}"])
            raw = sign(unsigned_message(recipient), keys)
            stack.deliver(com, raw, SENDER, [recipient])
            stack.start_worker(INTERNAL_SMTP_PORT=str(internal.port))
            stack.wait_received(1)
            wait_until(lambda: internal.received(), 20, "the internal copy")
            stack.wait_drained()
            yield Signed(stack, internal, keys, raw)
    finally:
        internal.stop()


def test_dkim_signed_original_verifies(signed: Signed) -> None:
    assert verifies(signed.signed, signed.keys)


def test_dkim_check_detects_changed_body(signed: Signed) -> None:
    changed = signed.signed.replace(b"Figures attached.", b"Figures added.")
    assert not verifies(changed, signed.keys)


def test_dkim_delivered_copy_verifies(signed: Signed) -> None:
    copies = [m.content for m in signed.stack.sink.received()]
    assert [verifies(c, signed.keys) for c in copies] == [True]


def test_dkim_forwarded_copy_verifies(signed: Signed) -> None:
    copies = [m.content for m in signed.internal.received()]
    assert [verifies(c, signed.keys) for c in copies] == [True]


def test_dkim_forwarded_copy_has_signature(signed: Signed) -> None:
    copy = signed.internal.received()[0].content
    assert b"\r\nDKIM-Signature: " in split_message(copy)[0]
