-- Express buy: quotes promised to users and the orders placed on them. The money (the
-- platform's liquidity, the users' balances) lives in the wallet, never here.

-- A quote: the user buys buy_amount of buy_currency and pays pay_amount of pay_currency
-- (cost at the market price into liquidity, fee = the markup to revenue), if ordered before
-- expires_at. state: open -> ordered | expired.
CREATE TABLE express.quotes (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL,
    buy_currency  text NOT NULL,
    pay_currency  text NOT NULL,
    buy_amount    numeric(38, 18) NOT NULL CHECK (buy_amount > 0),
    pay_amount    numeric(38, 18) NOT NULL CHECK (pay_amount > 0),
    cost          numeric(38, 18) NOT NULL CHECK (cost > 0),
    fee           numeric(38, 18) NOT NULL CHECK (fee >= 0),
    price         numeric(38, 18) NOT NULL CHECK (price > 0),
    markup        numeric(38, 18) NOT NULL CHECK (markup >= 0),
    rate          numeric(38, 18) NOT NULL CHECK (rate >= price),
    price_as_of   timestamptz NOT NULL,
    state         text NOT NULL CHECK (state IN ('open', 'ordered', 'expired')),
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    CHECK (buy_currency <> pay_currency),
    CHECK (pay_amount = cost + fee),
    CHECK (expires_at > created_at)
);
CREATE INDEX quotes_user ON express.quotes (user_id, created_at DESC);
-- for the cleanup of expired quotes
CREATE INDEX quotes_open_by_expiry ON express.quotes (expires_at) WHERE state = 'open';

-- An order: at most one per quote, at its terms. state: pending -> filled | rejected (the
-- wallet refused: nothing moved; reason is its error code), rejected -> pending (retried
-- before the quote's deadline) | filled. transaction_id is the wallet's ledger transaction.
CREATE TABLE express.orders (
    id               uuid PRIMARY KEY,
    quote_id         uuid NOT NULL UNIQUE REFERENCES express.quotes (id),
    user_id          uuid NOT NULL,
    -- the Idempotency-Key of the request that placed it: unique per user
    idempotency_key  text NOT NULL,
    state            text NOT NULL CHECK (state IN ('pending', 'filled', 'rejected')),
    reason           text,
    created_at       timestamptz NOT NULL,
    filled_at        timestamptz,
    transaction_id   bigint,
    UNIQUE (user_id, idempotency_key),
    CHECK ((state = 'filled') = (filled_at IS NOT NULL)),
    CHECK ((state = 'filled') = (transaction_id IS NOT NULL)),
    CHECK ((state = 'rejected') = (reason IS NOT NULL))
);
CREATE INDEX orders_user ON express.orders (user_id, created_at DESC);
