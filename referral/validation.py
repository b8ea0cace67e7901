"""Field rules shared by the schemas: identifiers from US dental billing and addresses."""

from __future__ import annotations

import re

US_STATES = frozenset(
    [
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
        "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
        "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
        "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI",
    ]
)

# CMS place-of-service codes a capture can physically happen at. 02 and 10 describe telehealth and
# belong on the reader's claim, so they are not a capture site.
CAPTURE_PLACES_OF_SERVICE = {
    "03": "school",
    "04": "homeless shelter",
    "11": "office",
    "12": "home",
    "13": "assisted living facility",
    "14": "group home",
    "15": "mobile unit",
    "22": "outpatient hospital",
    "31": "skilled nursing facility",
    "32": "nursing facility",
    "33": "custodial care facility",
    "49": "independent clinic",
    "50": "federally qualified health center",
    "71": "public health clinic",
    "72": "rural health clinic",
}

_TAXONOMY = re.compile(r"^[0-9]{3}[0-9A-Z]{6}X$")
_ZIP = re.compile(r"^[0-9]{5}([0-9]{4})?$")


def npi_is_valid(value: str) -> bool:
    """Ten digits whose last is the Luhn check digit computed over ``80840`` + the first nine."""
    if not (len(value) == 10 and value.isascii() and value.isdigit()):
        return False
    digits = [int(c) for c in "80840" + value[:9]]
    total = 0
    # Luhn: double every second digit counting from the right of the payload
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    check = (10 - total % 10) % 10
    return check == int(value[9])


def npi_with_check_digit(first_nine: str) -> str:
    """Complete a nine-digit NPI stem with its check digit (used by fixtures and seed data)."""
    for digit in "0123456789":
        candidate = first_nine + digit
        if npi_is_valid(candidate):
            return candidate
    raise ValueError("no check digit fits")  # unreachable for nine digits


def normalize_tax_id(value: str) -> str:
    digits = value.replace("-", "").strip()
    if not (len(digits) == 9 and digits.isascii() and digits.isdigit()):
        raise ValueError("tax_id must be a nine-digit EIN, e.g. 12-3456789")
    return digits


def normalize_zip(value: str) -> str:
    digits = value.replace("-", "").strip()
    if not _ZIP.match(digits):
        raise ValueError("zip must be five or nine digits")
    # No ZIP code is 00000, and the ZIP+4 add-on 0000 names no delivery segment: both are typing slips.
    if digits[:5] == "00000":
        raise ValueError("00000 is not a ZIP code")
    if len(digits) == 9 and digits[5:] == "0000":
        raise ValueError("the last four digits of a ZIP+4 cannot be 0000; give the full ZIP+4 or only five digits")
    return digits


def taxonomy_is_valid(value: str) -> bool:
    return bool(_TAXONOMY.match(value))
