-- Swap: quotes promised to users, and what became of them.

-- A quote: the user sells sell_amount of sell_currency (fee included, in the same currency)
-- and gets buy_amount of buy_currency, if executed before expires_at.
-- state: open -> executing -> executed, open -> expired, executing -> open (the wallet
-- refused: nothing moved). transaction_id is the wallet's ledger transaction of the swap.
CREATE TABLE swap.quotes (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL,
    sell_currency   text NOT NULL,
    buy_currency    text NOT NULL,
    sell_amount     numeric(38, 18) NOT NULL CHECK (sell_amount > 0),
    buy_amount      numeric(38, 18) NOT NULL CHECK (buy_amount > 0),
    fee             numeric(38, 18) NOT NULL,
    price           numeric(38, 18) NOT NULL CHECK (price > 0),
    rate            numeric(38, 18) NOT NULL CHECK (rate > 0),
    price_as_of     timestamptz NOT NULL,
    state           text NOT NULL CHECK (state IN ('open', 'executing', 'executed', 'expired')),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    -- the Idempotency-Key of the request that first claimed the quote for execution
    execution_key   text,
    executed_at     timestamptz,
    transaction_id  bigint,
    CHECK (sell_currency <> buy_currency),
    CHECK (fee >= 0 AND fee < sell_amount),
    CHECK (expires_at > created_at),
    CHECK ((state = 'executed') = (executed_at IS NOT NULL)),
    CHECK ((state = 'executed') = (transaction_id IS NOT NULL))
);
CREATE INDEX quotes_user ON swap.quotes (user_id, created_at DESC);
-- for the cleanup of expired quotes
CREATE INDEX quotes_open_by_expiry ON swap.quotes (expires_at) WHERE state = 'open';
