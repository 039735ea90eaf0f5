"""JSON Schemas of what requests carry, for the OpenAPI document: the same rules the views
check (currency codes, amounts per currency, ids), written once here from their sources."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from isolation_harness.reference_app.money import (
    MAX_AMOUNT,
    MAX_INTEGER_DIGITS,
    amount_pattern,
    unit,
)

Schema = dict[str, Any]

UUID_SCHEMA: Schema = {"type": "string", "format": "uuid"}


def currency_schema(codes: Iterable[str]) -> Schema:
    """One of ``codes``, exactly (upper-case)."""
    return {"type": "string", "enum": sorted(codes)}


def amount_schema(places: int) -> Schema:
    """An amount of a currency with ``places`` decimal places: a plain decimal string."""
    largest = "9" * MAX_INTEGER_DIGITS + ("." + "9" * places if places else "")
    return {
        "type": "string",
        "pattern": amount_pattern(places),
        "description": f"a positive decimal string below {MAX_AMOUNT:f} with at most "
        f"{places} decimal places",
        "examples": [format(unit(places), "f"), "1", largest],
    }


def object_schema(
    properties: Mapping[str, Schema], required: Iterable[str], *, title: str | None = None
) -> Schema:
    """A JSON object with these properties and no others."""
    schema: Schema = {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }
    if title is not None:
        schema["title"] = title
    return schema


def one_of(variants: Iterable[Schema], description: str) -> Schema:
    """One of several objects (e.g. one per currency, where an amount's places depend on
    it): every variant names its currencies with ``const``, so exactly one matches."""
    return {"type": "object", "description": description, "oneOf": list(variants)}


def amount_of_currency(
    currencies: Mapping[str, int], extra: Mapping[str, Schema] | None = None
) -> Schema:
    """``{"currency", "amount"}`` (and the ``extra`` properties, all required): one of
    ``currencies`` (code -> decimal places), and an amount in that one's places."""
    more = dict(extra or {})
    return one_of(
        (object_schema({"currency": const(code), "amount": amount_schema(places),
                        **more}, ["currency", "amount", *more])
         for code, places in currencies.items()),
        "currency, and amount with at most that currency's decimal places",
    )  # fmt: skip


def exchange(currencies: Mapping[str, int], measured: str, other: str) -> Schema:
    """``{measured, other, "amount"}``: two different currencies of ``currencies``, and an
    amount in the places of the one named ``measured`` (the one sold, or bought)."""
    return one_of(
        (object_schema({measured: const(one), other: const(two),
                        "amount": amount_schema(currencies[one])}, [measured, other, "amount"])
         for one in currencies for two in currencies if one != two),
        f"{measured}, {other} (another currency), and the amount in the places of {measured}",
    )  # fmt: skip


def const(value: str) -> Schema:
    return {"type": "string", "const": value}
