"""Swap: quotes from the price source with spread, fee and expiry; atomic execution."""
