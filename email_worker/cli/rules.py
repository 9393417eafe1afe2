"""``main.py rules``: read and change out-of-office replies, forwards and
blocklists in DynamoDB."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Mapping, TextIO

from email_worker.cli import validate
from email_worker.cli.common import (EXIT_OK, PROG, clients_for, invalid,
                                     plain, served_domains, settings_from)
from email_worker.cli.store import (KEY, OOO_ATTRIBUTES, NotFound,
                                    RuleTables, Update, deserialise)
from email_worker.mail.rules import flag, string_list

DEFAULT_DAYS = 7


def add_parser(commands: Any) -> None:
    """Add ``rules`` and its subcommands to the top-level parser."""
    rules = commands.add_parser(
        "rules", help="show or change rules and blocklists",
        description="Show or change out-of-office replies, forwards and "
                    "blocklists in the DynamoDB tables the worker reads "
                    "(DYNAMODB_RULES_TABLE, DYNAMODB_BLOCKED_TABLE).")
    actions = rules.add_subparsers(dest="rules_command", required=True,
                                   metavar="ACTION")

    show = actions.add_parser(
        "show", help="show the rules and blocklist of an address",
        description="Show the rules item of an address, its blocklist and "
                    "its domain's blocklist; a domain shows the domain's "
                    "blocklist only.")
    show.add_argument("address", metavar="ADDRESS_OR_DOMAIN",
                      type=validate.address_or_domain)
    show.add_argument("--json", action="store_true",
                      help="print one JSON object")
    show.set_defaults(handler=_show)

    listing = actions.add_parser(
        "list", help="list every address and domain with rules",
        description="Scan both tables and print one line per address or "
                    "domain that has an item in either.")
    listing.add_argument("--json", action="store_true",
                         help="print one JSON array")
    listing.set_defaults(handler=_list)

    ooo = actions.add_parser(
        "ooo", help="switch out-of-office replies on or off",
        description="Set or clear the out-of-office reply of an address.")
    ooo_actions = ooo.add_subparsers(dest="ooo_command", required=True,
                                     metavar="ACTION")
    ooo_set = ooo_actions.add_parser(
        "set", help="switch replies on with this message",
        description="Switch replies on.  Options left out go back to "
                    "their defaults: the subject 'Auto: <original "
                    "subject>', plain text and one reply per sender "
                    f"every {DEFAULT_DAYS} days.")
    ooo_set.add_argument("address", metavar="ADDRESS",
                         type=validate.address)
    ooo_set.add_argument("--message", required=True,
                         type=validate.text_line("message"),
                         help="the reply text, one line")
    ooo_set.add_argument("--subject", type=validate.text_line("subject"),
                         help="the reply's subject")
    ooo_set.add_argument("--html", action="store_true",
                         help="the message is HTML (text/html)")
    ooo_set.add_argument("--days", type=validate.days,
                         help="reply to each sender at most once in this "
                              f"many days (1-{validate.MAX_DAYS}, default "
                              f"{DEFAULT_DAYS})")
    ooo_set.set_defaults(handler=_ooo_set)
    ooo_clear = ooo_actions.add_parser(
        "clear", help="switch replies off and remove the message",
        description="Remove every out-of-office attribute of the address.")
    ooo_clear.add_argument("address", metavar="ADDRESS",
                           type=validate.address)
    ooo_clear.set_defaults(handler=_ooo_clear)

    forward = actions.add_parser(
        "forward", help="add or remove forwarding addresses",
        description="Change the addresses that get a copy of the "
                    "address's mail.")
    forward_actions = forward.add_subparsers(dest="forward_command",
                                             required=True, metavar="ACTION")
    for name, text, handler in (
            ("add", "forward copies to TARGET too", _forward_add),
            ("remove", "stop forwarding to TARGET", _forward_remove)):
        sub = forward_actions.add_parser(name, help=text, description=text)
        sub.add_argument("address", metavar="ADDRESS", type=validate.address)
        sub.add_argument("target", metavar="TARGET", type=validate.address)
        sub.set_defaults(handler=handler)
    forward_clear = forward_actions.add_parser(
        "clear", help="remove every forward of the address",
        description="Remove every forward of the address.")
    forward_clear.add_argument("address", metavar="ADDRESS",
                               type=validate.address)
    forward_clear.set_defaults(handler=_forward_clear)

    block = actions.add_parser(
        "block", help="add or remove blocked sender patterns",
        description="Change the sender patterns blocked for an address, "
                    "or for every address of a domain.  Patterns are "
                    "shell globs matched against the bare sender address, "
                    "ignoring case: 'spam@*.com', '*@bad.example'.")
    block_actions = block.add_subparsers(dest="block_command",
                                         required=True, metavar="ACTION")
    for name, text, handler in (
            ("add", "block senders matching PATTERN", _block_add),
            ("remove", "remove PATTERN from the blocklist", _block_remove)):
        sub = block_actions.add_parser(name, help=text, description=text)
        sub.add_argument("address", metavar="ADDRESS_OR_DOMAIN",
                         type=validate.address_or_domain)
        sub.add_argument("pattern", metavar="PATTERN",
                         type=validate.pattern)
        sub.set_defaults(handler=handler)
    block_clear = block_actions.add_parser(
        "clear", help="remove the whole blocklist of an address or domain",
        description="Remove every blocked pattern of the address or "
                    "domain.")
    block_clear.add_argument("address", metavar="ADDRESS_OR_DOMAIN",
                             type=validate.address_or_domain)
    block_clear.set_defaults(handler=_block_clear)


def run(args: argparse.Namespace, environ: Mapping[str, str],
        out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    settings = settings_from(environ, need_domains=False)
    _warn_unserved(args, served_domains(settings), err)
    tables = RuleTables(clients_for(settings).dynamodb,
                        settings.rules_table, settings.blocked_table)
    args.handler(tables, args, out)
    return EXIT_OK


def _warn_unserved(args: argparse.Namespace, domains: tuple[str, ...],
                   err: TextIO) -> None:
    """Say so when DOMAINS is set and does not cover the address."""
    address = getattr(args, "address", None)
    if not address or not domains:
        return
    domain = address.rpartition("@")[2]
    if domain not in domains:
        print(f"{PROG}: warning: {domain} is not in DOMAINS; the worker "
              f"does not read rules for it", file=err)


# -- show and list ------------------------------------------------------


def _show(tables: RuleTables, args: argparse.Namespace, out: TextIO) -> None:
    key = args.address
    is_domain = "@" not in key
    domain = key.rpartition("@")[2]
    rules = {} if is_domain else _item(tables, tables.rules_table, key)
    own = _patterns(_item(tables, tables.blocked_table, key))
    inherited = [] if is_domain else _patterns(
        _item(tables, tables.blocked_table, domain))
    if args.json:
        document: dict[str, Any] = {"address": key,
                                    "blocked_patterns": own}
        if not is_domain:
            document["rules"] = plain(_without_key(rules))
            document["domain_blocked_patterns"] = inherited
        print(json.dumps(document, sort_keys=True), file=out)
        return
    print(key, file=out)
    if not is_domain:
        for line in describe_rules(rules):
            print(f"  {line}", file=out)
    print(f"  blocked_patterns: {_join(own)}", file=out)
    if not is_domain:
        print(f"  blocked_patterns of {domain}: {_join(inherited)}",
              file=out)


def describe_rules(rules: dict[str, Any]) -> list[str]:
    """Return ``name: value`` lines for a rules item, known ones first."""
    if not _without_key(rules):
        return ["(no rules)"]
    lines = []
    order = OOO_ATTRIBUTES + ("forwards",)
    names = [n for n in order if n in rules] + sorted(
        n for n in rules if n not in order and n != KEY)
    for name in names:
        value = plain(rules[name])
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = _join([str(v) for v in value])
        else:
            text = str(value)
        lines.append(f"{name}: {text}")
    return lines


def _list(tables: RuleTables, args: argparse.Namespace, out: TextIO) -> None:
    entries: dict[str, dict[str, Any]] = {}
    for item in tables.scan(tables.rules_table):
        key = str(item.get(KEY, ""))
        entries.setdefault(key, {})["rules"] = item
    for item in tables.scan(tables.blocked_table):
        key = str(item.get(KEY, ""))
        entries.setdefault(key, {})["blocked_patterns"] = _patterns(item)
    if args.json:
        document = [{"address": key,
                     "rules": plain(_without_key(entry.get("rules", {}))),
                     "blocked_patterns": entry.get("blocked_patterns", [])}
                    for key, entry in sorted(entries.items())]
        print(json.dumps(document, sort_keys=True), file=out)
        return
    for key, entry in sorted(entries.items()):
        print(" ".join([key] + summary(entry.get("rules"),
                                       entry.get("blocked_patterns"))),
              file=out)


def summary(rules: dict[str, Any] | None,
            patterns: list[str] | None) -> list[str]:
    """Return the ``name=value`` words of one ``rules list`` line."""
    words = []
    if rules is not None:
        if "ooo_active" in rules or "ooo_message" in rules:
            state = "on" if flag(rules, "ooo_active") else "off"
            days = plain(rules.get("ooo_days", DEFAULT_DAYS))
            words.append(f"ooo={state}" + (f",{days}d" if state == "on"
                                           else ""))
        forwards = string_list(rules.get("forwards"))
        if forwards:
            words.append("forwards=" + ",".join(forwards))
    if patterns:
        words.append("blocked=" + ",".join(patterns))
    return words or ["(empty)"]


def _item(tables: RuleTables, table: str, key: str) -> dict[str, Any]:
    raw = tables.get(table, key)
    return deserialise(raw) if raw else {}


def _patterns(item: dict[str, Any]) -> list[str]:
    value = string_list(item.get("blocked_patterns"))
    return sorted(value) if isinstance(item.get("blocked_patterns"), set) \
        else list(value or [])


def _without_key(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != KEY}


def _join(values: list[str]) -> str:
    return ", ".join(values) if values else "(none)"


# -- out-of-office ------------------------------------------------------


def _ooo_set(tables: RuleTables, args: argparse.Namespace,
             out: TextIO) -> None:
    update = Update()
    update.set("ooo_active", True)
    update.set("ooo_message", args.message)
    update.set("ooo_content_type", "text/html" if args.html
               else "text/plain")
    if args.subject is not None:
        update.set("ooo_subject", args.subject)
    else:
        update.remove("ooo_subject")
    if args.days is not None:
        update.set("ooo_days", args.days)
    else:
        update.remove("ooo_days")
    tables.update(tables.rules_table, args.address, update)
    days = args.days or DEFAULT_DAYS
    print(f"{args.address}: out-of-office on, one reply per sender every "
          f"{days} day{'s' if days != 1 else ''}", file=out)


def _ooo_clear(tables: RuleTables, args: argparse.Namespace,
               out: TextIO) -> None:
    update = Update()
    for name in OOO_ATTRIBUTES:
        update.remove(name)
    try:
        item = tables.update(tables.rules_table, args.address, update,
                             must_exist=True)
    except NotFound:
        print(f"{args.address}: no rules item; nothing to clear", file=out)
        return
    tables.drop_if_empty(tables.rules_table, args.address, item)
    print(f"{args.address}: out-of-office off", file=out)


# -- forwards -----------------------------------------------------------


def _forward_add(tables: RuleTables, args: argparse.Namespace,
                 out: TextIO) -> None:
    if args.target == args.address:
        raise invalid(f"{args.address} cannot forward to itself")

    def add(current: list[str]) -> list[str]:
        if args.target in (f.lower() for f in current):
            return current
        return current + [args.target]
    before, after = tables.change_list(tables.rules_table, args.address,
                                       "forwards", add)
    note = "" if after != before else " (already there)"
    print(f"{args.address}: forwards {_join(after)}{note}", file=out)


def _forward_remove(tables: RuleTables, args: argparse.Namespace,
                    out: TextIO) -> None:
    def remove(current: list[str]) -> list[str]:
        return [f for f in current if f.lower() != args.target]
    before, after = tables.change_list(tables.rules_table, args.address,
                                       "forwards", remove)
    note = "" if after != before else \
        f" ({args.target} was not among them; nothing changed)"
    print(f"{args.address}: forwards {_join(after)}{note}", file=out)


def _forward_clear(tables: RuleTables, args: argparse.Namespace,
                   out: TextIO) -> None:
    _clear(tables, tables.rules_table, args.address, "forwards", out)


# -- blocklist ----------------------------------------------------------


def _block_add(tables: RuleTables, args: argparse.Namespace,
               out: TextIO) -> None:
    def add(current: list[str]) -> list[str]:
        if args.pattern in (p.lower() for p in current):
            return current
        return current + [args.pattern]
    before, after = tables.change_list(tables.blocked_table, args.address,
                                       "blocked_patterns", add)
    note = "" if after != before else " (already there)"
    print(f"{args.address}: blocked_patterns {_join(after)}{note}",
          file=out)
    if set(args.pattern) <= {"*", "@"}:
        print(f"{PROG}: warning: {args.pattern!r} matches every sender, so "
              f"{args.address} receives no mail", file=sys.stderr)


def _block_remove(tables: RuleTables, args: argparse.Namespace,
                  out: TextIO) -> None:
    def remove(current: list[str]) -> list[str]:
        return [p for p in current if p.lower() != args.pattern]
    before, after = tables.change_list(tables.blocked_table, args.address,
                                       "blocked_patterns", remove)
    note = "" if after != before else \
        f" ({args.pattern} was not among them; nothing changed)"
    print(f"{args.address}: blocked_patterns {_join(after)}{note}",
          file=out)


def _block_clear(tables: RuleTables, args: argparse.Namespace,
                 out: TextIO) -> None:
    _clear(tables, tables.blocked_table, args.address, "blocked_patterns",
           out)


def _clear(tables: RuleTables, table: str, key: str, attribute: str,
           out: TextIO) -> None:
    try:
        item = tables.update(table, key, Update().remove(attribute),
                             must_exist=True)
    except NotFound:
        print(f"{key}: no item in {table}; nothing to clear", file=out)
        return
    tables.drop_if_empty(table, key, item)
    print(f"{key}: {attribute} cleared", file=out)
