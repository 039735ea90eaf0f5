"""JSON Schemas of what requests carry, for the OpenAPI document: the same rules the views
check (currency codes, amounts per currency, ids), written once here from their sources."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from isolation_harness.reference_app.http_api import MAX_LIMIT
from isolation_harness.reference_app.http_api import Schema as Schema  # views take it from here
from isolation_harness.reference_app.money import (
    MAX_AMOUNT,
    MAX_INTEGER_DIGITS,
    amount_pattern,
    unit,
)
from isolation_harness.reference_app.settings import SERVICES

UUID_SCHEMA: Schema = {"type": "string", "format": "uuid"}
#: a service's name in a path (readiness, the fault API)
SERVICE_SCHEMA: Schema = {"type": "string", "enum": list(SERVICES)}


def service_path(_: Mapping[str, int]) -> Schema:
    return {"service": SERVICE_SCHEMA}


def limit_query(_: Mapping[str, int]) -> Schema:
    """``?limit=`` of a listing (:func:`http_api.query_int` with :data:`http_api.MAX_LIMIT`)."""
    return {"limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}}


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


def object_schema(properties: Mapping[str, Schema], required: Iterable[str]) -> Schema:
    """A JSON object with these properties and no others."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


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
