"""Rules and blocklists of recipients, read with one BatchGetItem."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from boto3.dynamodb.types import TypeDeserializer

from email_worker.aws.errors import AWS_EXCEPTIONS, wrap_aws_error
from email_worker.errors import TemporaryAwsError
from email_worker.mail.rules import string_list

log = logging.getLogger(__name__)

KEY_ATTRIBUTE = "email_address"
BATCH_GET_LIMIT = 100
_MAX_UNPROCESSED_ROUNDS = 8
_deserializer = TypeDeserializer()


@dataclass
class RecipientRules:
    """Rules items by address and blocklist patterns by address or domain."""

    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    blocked_patterns: dict[str, list[str]] = field(default_factory=dict)

    def patterns_for(self, recipient: str) -> list[str]:
        """Return the recipient's own patterns plus its domain's."""
        domain = recipient.rpartition("@")[2]
        return (self.blocked_patterns.get(recipient, [])
                + self.blocked_patterns.get(domain, []))


class RulesStore:
    """Look up rules and blocklists for all recipients of a message."""

    def __init__(self, client: Any, rules_table: str, blocked_table: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._rules_table = rules_table
        self._blocked_table = blocked_table
        self._sleep = sleep

    def lookup(self, recipients: Iterable[str]) -> RecipientRules:
        """Fetch rules and blocklists in one BatchGetItem per 100 keys.

        The blocklist keys are every recipient plus each recipient's
        domain, which holds the patterns for the whole domain.
        """
        addresses = list(dict.fromkeys(recipients))
        domains = list(dict.fromkeys(a.rpartition("@")[2]
                                     for a in addresses))
        keys = ([(self._rules_table, a) for a in addresses]
                + [(self._blocked_table, a) for a in addresses + domains])
        result = RecipientRules()
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            chunk = keys[start:start + BATCH_GET_LIMIT]
            for table, item in self._batch_get(_request_items(chunk)):
                self._store(result, table, item)
        return result

    def _batch_get(self, request: dict[str, Any]
                   ) -> Iterable[tuple[str, dict[str, Any]]]:
        for attempt in range(_MAX_UNPROCESSED_ROUNDS):
            response = self._call(request)
            for table, items in response.get("Responses", {}).items():
                for item in items:
                    yield table, _deserialise(item)
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            # Throttled keys come back unprocessed; back off with jitter.
            self._sleep(random.uniform(0, min(2.0, 0.05 * 2 ** attempt)))
        raise TemporaryAwsError("dynamodb", "BatchGetItem",
                                "UnprocessedKeys",
                                "keys still unprocessed after "
                                f"{_MAX_UNPROCESSED_ROUNDS} attempts")

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._client.batch_get_item(RequestItems=request)
        except AWS_EXCEPTIONS as exc:
            raise wrap_aws_error("dynamodb", "BatchGetItem", exc) from exc

    def _store(self, result: RecipientRules, table: str,
               item: dict[str, Any]) -> None:
        address = str(item.get(KEY_ATTRIBUTE, "")).lower()
        if table == self._rules_table:
            result.rules[address] = item
        else:
            result.blocked_patterns[address] = _patterns(item)


def _request_items(keys: list[tuple[str, str]]) -> dict[str, Any]:
    request: dict[str, Any] = {}
    for table, address in keys:
        entry = request.setdefault(table, {"Keys": []})
        entry["Keys"].append({KEY_ATTRIBUTE: {"S": address}})
    return request


def _deserialise(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value)
            for name, value in item.items()}


def _patterns(item: dict[str, Any]) -> list[str]:
    """Return blocked_patterns as a list, accepting L and SS forms."""
    value = string_list(item.get("blocked_patterns"))
    if value is None:
        log.warning("blocklist item %s: blocked_patterns is not a list of "
                    "strings; ignored", item.get(KEY_ATTRIBUTE))
        return []
    return [p.strip().lower() for p in value if p.strip()]
