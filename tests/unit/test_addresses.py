"""Addresses are compared bare and lower-case."""

from __future__ import annotations

import pytest

from email_worker.mail.addresses import (domain_of, normalise,
                                         parse_address_list,
                                         unique_for_domain)


@pytest.mark.parametrize("raw,expected", [
    ("alice@example.com", "alice@example.com"),
    ("<Alice@Example.COM>", "alice@example.com"),
    ("  < bob@example.com >  ", "bob@example.com"),
    ("<>", ""),
    ("", "")])
def test_normalise_strips_and_lowercases(raw, expected):
    assert normalise(raw) == expected


def test_domain_of_last_at_sign():
    assert domain_of('"a@b"@example.com') == "example.com"


def test_domain_of_without_at_sign():
    assert domain_of("postmaster") == "postmaster"


def test_unique_for_domain_filters_other_domains():
    found = unique_for_domain(["a@example.com", "b@example.net"],
                              "example.com")
    assert found == ["a@example.com"]


def test_unique_for_domain_excludes_subdomains():
    assert unique_for_domain(["a@mail.example.com"], "example.com") == []


def test_unique_for_domain_deduplicates_case_variants():
    found = unique_for_domain(["Bob@Example.com", "bob@example.com",
                               "<BOB@EXAMPLE.COM>"], "example.com")
    assert found == ["bob@example.com"]


def test_unique_for_domain_keeps_first_order():
    found = unique_for_domain(["c@example.com", "a@example.com",
                               "c@example.com", "b@example.com"],
                              "example.com")
    assert found == ["c@example.com", "a@example.com", "b@example.com"]


def test_unique_for_domain_drops_bare_names():
    assert unique_for_domain(["example.com", ""], "example.com") == []


def test_parse_address_list_display_names():
    found = parse_address_list(['Alice Example <Alice@Example.com>, '
                                '"Smith, Bob" <bob@example.net>'])
    assert found == ["alice@example.com", "bob@example.net"]


def test_parse_address_list_several_values():
    found = parse_address_list(["a@example.com", "b@example.com"])
    assert found == ["a@example.com", "b@example.com"]


def test_parse_address_list_deduplicates():
    found = parse_address_list(["a@example.com", "A <A@EXAMPLE.COM>"])
    assert found == ["a@example.com"]


def test_parse_address_list_group_syntax():
    found = parse_address_list(["team: a@example.com, b@example.com;"])
    assert found == ["a@example.com", "b@example.com"]


def test_parse_address_list_comment_form():
    assert parse_address_list(["a@example.com (Alice)"]) == \
        ["a@example.com"]


def test_parse_address_list_quoted_address_in_name_ignored():
    found = parse_address_list(['"spam@bad.example" <good@example.net>'])
    assert found == ["good@example.net"]


def test_parse_address_list_skips_undisclosed_recipients():
    assert parse_address_list(["undisclosed-recipients:;"]) == []


def test_parse_address_list_empty():
    assert parse_address_list([]) == []
