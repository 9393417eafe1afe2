"""Drop recipients whose blocklist matches the sender."""

from __future__ import annotations

from fnmatch import fnmatchcase

from email_worker.mail.addresses import parse_address_list
from email_worker.mail.headers import header_values
from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services


class BlocklistStep:
    """Check the envelope sender and every From address.

    Patterns are shell globs matched case-insensitively against the bare
    address.  Both sides are lower-cased and matched with fnmatchcase,
    because fnmatch.fnmatch only folds case on Windows.
    """

    name = "blocklist"

    def __init__(self, services: Services) -> None:
        self._metrics = services.metrics

    def process(self, context: MessageContext) -> None:
        identities = sender_identities(context)
        kept: list[str] = []
        for recipient in context.recipients:
            patterns = context.rules.patterns_for(recipient)
            match = find_blocked_identity(patterns, identities)
            if match is None:
                kept.append(recipient)
                continue
            context.blocked[recipient] = match
            context.log.info("recipient %s blocked: sender %s matches %r",
                             recipient, match,
                             _matching_pattern(patterns, match))
        if context.blocked:
            self._metrics.recipients_blocked.labels(
                domain=context.domain).inc(len(context.blocked))
        context.recipients = kept


def sender_identities(context: MessageContext) -> list[str]:
    identities = [context.sender] if context.sender else []
    if context.headers is not None:
        for address in parse_address_list(
                header_values(context.headers, "From")):
            if address not in identities:
                identities.append(address)
    return identities


def find_blocked_identity(patterns: list[str],
                          identities: list[str]) -> str | None:
    """Return the first identity that any pattern matches, else None."""
    for identity in identities:
        if _matching_pattern(patterns, identity) is not None:
            return identity
    return None


def _matching_pattern(patterns: list[str], identity: str) -> str | None:
    lowered = identity.lower()
    for pattern in patterns:
        if fnmatchcase(lowered, pattern.lower()):
            return pattern
    return None
