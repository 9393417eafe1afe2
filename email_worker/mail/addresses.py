"""Address normalisation and extraction from header values."""

from __future__ import annotations

from email.utils import getaddresses
from typing import Iterable


def normalise(address: str) -> str:
    """Return the bare address, stripped of brackets and lower-cased."""
    return address.strip().strip("<>").strip().lower()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def unique_for_domain(addresses: Iterable[str], domain: str) -> list[str]:
    """Normalise, de-duplicate in order and keep only ``domain``."""
    result: list[str] = []
    for address in addresses:
        bare = normalise(address)
        if "@" in bare and domain_of(bare) == domain and bare not in result:
            result.append(bare)
    return result


def parse_address_list(values: Iterable[str]) -> list[str]:
    """Return the normalised addresses in header values such as To or Cc."""
    found: list[str] = []
    for _name, address in getaddresses([str(v) for v in values]):
        bare = normalise(address)
        if "@" in bare and bare not in found:
            found.append(bare)
    return found
