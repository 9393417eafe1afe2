"""Read and change items of the rules and blocklist tables.

Items are changed with UpdateItem so that attributes this tool does not
know are kept.  Lists are read, changed and written back on the condition
that no other writer changed them in between.  After a lost race the list
is read again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from email_worker.cli.common import (AWS_EXCEPTIONS, CommandError,
                                     EXIT_FAILED, aws_failure)
from email_worker.mail.rules import string_list

KEY = "email_address"
OOO_ATTRIBUTES = ("ooo_active", "ooo_message", "ooo_subject",
                  "ooo_content_type", "ooo_days")
RULES_ATTRIBUTES = OOO_ATTRIBUTES + ("forwards",)
BLOCKED_ATTRIBUTES = ("blocked_patterns",)
_LIST_ATTEMPTS = 5
_deserializer = TypeDeserializer()
_serializer = TypeSerializer()


def deserialise(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value)
            for name, value in item.items()}


@dataclass
class Update:
    """An UpdateItem expression with every attribute name aliased."""

    sets: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        for alias, known in self.names.items():
            if known == attribute:
                return alias
        alias = f"#a{len(self.names)}"
        self.names[alias] = attribute
        return alias

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _serializer.serialize(value)
        return placeholder

    def set(self, attribute: str, value: Any) -> "Update":
        self.sets.append(f"{self.name(attribute)} = {self.value(value)}")
        return self

    def remove(self, attribute: str) -> "Update":
        self.removes.append(self.name(attribute))
        return self

    def expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        return " ".join(parts)


class NotFound(Exception):
    """The item to change does not exist."""


class RuleTables:
    """The rules and blocklist tables, through one DynamoDB client."""

    def __init__(self, client: Any, rules_table: str,
                 blocked_table: str) -> None:
        self.client = client
        self.rules_table = rules_table
        self.blocked_table = blocked_table

    # -- reading ------------------------------------------------------

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        """Return the raw (typed) item, read consistently, or None."""
        try:
            response = self.client.get_item(
                TableName=table, Key={KEY: {"S": key}}, ConsistentRead=True)
        except AWS_EXCEPTIONS as exc:
            raise aws_failure("dynamodb", "GetItem", f"table {table}",
                              exc) from None
        return response.get("Item")

    def scan(self, table: str) -> Iterator[dict[str, Any]]:
        """Yield every item of ``table``, deserialised, page by page."""
        try:
            paginator = self.client.get_paginator("scan")
            for page in paginator.paginate(TableName=table,
                                           ConsistentRead=True):
                for item in page.get("Items", []):
                    yield deserialise(item)
        except AWS_EXCEPTIONS as exc:
            raise aws_failure("dynamodb", "Scan", f"table {table}",
                              exc) from None

    # -- writing ------------------------------------------------------

    def update(self, table: str, key: str, update: Update,
               must_exist: bool = False,
               condition: str | None = None) -> dict[str, Any]:
        """Apply ``update`` and return the item as it is afterwards.

        With ``must_exist`` a missing item raises NotFound instead of
        being created.
        """
        conditions = [condition] if condition else []
        if must_exist:
            conditions.append(f"attribute_exists({update.name(KEY)})")
        request: dict[str, Any] = {
            "TableName": table, "Key": {KEY: {"S": key}},
            "UpdateExpression": update.expression(),
            "ExpressionAttributeNames": update.names,
            "ReturnValues": "ALL_NEW"}
        if update.values:
            request["ExpressionAttributeValues"] = update.values
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
        try:
            response = self.client.update_item(**request)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise NotFound(key) from None
        except AWS_EXCEPTIONS as exc:
            raise aws_failure("dynamodb", "UpdateItem", f"table {table}",
                              exc) from None
        return deserialise(response.get("Attributes", {}))

    def change_list(self, table: str, key: str, attribute: str,
                    change: Callable[[list[str]], list[str]]
                    ) -> tuple[list[str], list[str]]:
        """Rewrite a list attribute and return its value before and after.

        The list is written as L of S (an SS value is converted), and
        removed when it ends up empty.  The write is conditional on the
        value read, so a concurrent change is never overwritten.
        """
        for _attempt in range(_LIST_ATTEMPTS):
            item = self.get(table, key) or {}
            raw = item.get(attribute)
            before = _strings(table, key, attribute, raw)
            after = change(list(before))
            if after == before and (raw is None or "L" in raw):
                return before, after
            update = Update()
            alias = update.name(attribute)
            if raw is None:
                condition = f"attribute_not_exists({alias})"
            else:
                condition = f"{alias} = {_raw_value(update, raw)}"
            if after:
                update.set(attribute, after)
            else:
                update.remove(attribute)
            try:
                result = self.update(table, key, update,
                                     condition=condition)
            except NotFound:
                continue
            self.drop_if_empty(table, key, result)
            return before, after
        raise CommandError(
            f"dynamodb UpdateItem on table {table} failed: "
            f"ConditionalCheckFailedException: {attribute} of {key} kept "
            f"changing while it was being written; try again", EXIT_FAILED)

    def drop_if_empty(self, table: str, key: str,
                      item: dict[str, Any]) -> bool:
        """Delete an item that contains nothing but its key.

        The delete is conditional on every attribute this tool writes
        being absent, so an item that gained one meanwhile stays.
        """
        if set(item) - {KEY}:
            return False
        known = RULES_ATTRIBUTES if table == self.rules_table \
            else BLOCKED_ATTRIBUTES
        names = {f"#a{i}": name for i, name in enumerate(known)}
        try:
            self.client.delete_item(
                TableName=table, Key={KEY: {"S": key}},
                ConditionExpression=" AND ".join(
                    f"attribute_not_exists({alias})" for alias in names),
                ExpressionAttributeNames=names)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        except AWS_EXCEPTIONS as exc:
            raise aws_failure("dynamodb", "DeleteItem", f"table {table}",
                              exc) from None
        return True


def _raw_value(update: Update, raw: dict[str, Any]) -> str:
    """Add an already typed value to the expression values."""
    placeholder = f":v{len(update.values)}"
    update.values[placeholder] = raw
    return placeholder


def _strings(table: str, key: str, attribute: str,
             raw: dict[str, Any] | None) -> list[str]:
    if raw is None:
        return []
    value = string_list(_deserializer.deserialize(raw))
    if value is None or (isinstance(value, list) and "L" in raw
                         and len(value) != len(raw["L"])):
        raise CommandError(
            f"{attribute} of {key} in table {table} is not a list of "
            f"strings; clear it first", EXIT_FAILED)
    # An SS value is deserialised as a set, so sort it for a stable order.
    return sorted(value) if "SS" in raw else list(value)
