-- An account that stands for the outside world (system:deposits, system:treasury, ...) is
-- spread over slots: each posting takes the row lock of one slot, chosen by its idempotency
-- key, so that postings of one currency do not wait for each other on one row. The
-- account's balance is the sum of its slots; each slot's balance equals its own entries.
-- Users' accounts and the express liquidity (never negative) keep slot 0 only.
ALTER TABLE wallet.accounts ADD COLUMN slot smallint NOT NULL DEFAULT 0
    CHECK (slot >= 0 AND (slot = 0 OR kind = 'system'));
ALTER TABLE wallet.accounts DROP CONSTRAINT accounts_owner_currency_kind_key;
ALTER TABLE wallet.accounts ADD CONSTRAINT accounts_key UNIQUE (owner, currency, kind, slot);
