-- Wallet: users, accounts with balances, an append-only double-entry ledger, escrow locks.

CREATE TABLE wallet.users (
    id          uuid PRIMARY KEY,
    username    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- owner: a user id, or a system account name such as 'system:deposits'.
-- kind: 'available' and 'escrow' for users (never negative), 'system' for the platform.
CREATE TABLE wallet.accounts (
    id          bigserial PRIMARY KEY,
    owner       text NOT NULL,
    currency    text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('available', 'escrow', 'system')),
    balance     numeric(38, 18) NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, currency, kind),
    CONSTRAINT no_overdraft CHECK (kind = 'system' OR balance >= 0)
);

CREATE TABLE wallet.transactions (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL,
    reference        text,
    idempotency_key  text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Every transaction's entries sum to zero per currency (checked by the service and by the
-- invariants oracle); entries and transactions are never updated nor deleted.
CREATE TABLE wallet.entries (
    id              bigserial PRIMARY KEY,
    transaction_id  bigint NOT NULL REFERENCES wallet.transactions (id),
    account_id      bigint NOT NULL REFERENCES wallet.accounts (id),
    currency        text NOT NULL,
    amount          numeric(38, 18) NOT NULL CHECK (amount <> 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entries_account ON wallet.entries (account_id, id);
CREATE INDEX entries_transaction ON wallet.entries (transaction_id);

CREATE FUNCTION wallet.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON wallet.transactions
    FOR EACH ROW EXECUTE FUNCTION wallet.append_only();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON wallet.entries
    FOR EACH ROW EXECUTE FUNCTION wallet.append_only();

-- reference: the caller's id for the lock (e.g. 'trade:<uuid>'), unique, so locking is
-- idempotent. state: held -> released (to another user) | unlocked (back to the owner).
CREATE TABLE wallet.escrow_locks (
    reference    text PRIMARY KEY,
    owner        uuid NOT NULL,
    currency     text NOT NULL,
    amount       numeric(38, 18) NOT NULL CHECK (amount > 0),
    state        text NOT NULL CHECK (state IN ('held', 'released', 'unlocked')),
    released_to  uuid,
    fee          numeric(38, 18),
    created_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    CHECK ((state = 'held') = (closed_at IS NULL)),
    CHECK ((state = 'released') = (released_to IS NOT NULL))
);
