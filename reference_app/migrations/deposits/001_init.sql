-- Deposits through the payment provider, and every IPN callback received.

CREATE TABLE deposits.deposits (
    id                     uuid PRIMARY KEY,
    user_id                uuid NOT NULL,
    currency               text NOT NULL,
    amount                 numeric(38, 18) NOT NULL CHECK (amount > 0),
    status                 text NOT NULL,
    idempotency_key        text NOT NULL,
    provider_payment_id    text UNIQUE,
    pay_address            text,
    pay_amount             numeric(38, 18),
    pay_currency           text,
    wallet_transaction_id  bigint,
    credited_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key),
    CHECK ((status = 'finished') = (credited_at IS NOT NULL))
);
CREATE INDEX deposits_user ON deposits.deposits (user_id, created_at DESC);
CREATE INDEX deposits_open ON deposits.deposits (status, created_at)
    WHERE status NOT IN ('finished', 'failed', 'refunded', 'expired');

CREATE TABLE deposits.ipn_events (
    id                   bigserial PRIMARY KEY,
    provider_payment_id  text NOT NULL,
    status               text NOT NULL,
    outcome              text NOT NULL,
    body                 jsonb NOT NULL,
    received_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ipn_events_payment ON deposits.ipn_events (provider_payment_id, id);
