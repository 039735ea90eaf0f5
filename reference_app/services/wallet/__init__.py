"""Wallet: users, balances, a double-entry ledger, escrow locks."""
