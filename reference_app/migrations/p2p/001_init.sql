-- P2P: offers, trades and their history. The money itself stays in the wallet: a trade's
-- escrow is the wallet's lock 'p2p:trade:<trade id>'.

-- remaining: what trades may still take; it drops when a trade opens (under the row lock)
-- and comes back when a trade ends with the seller keeping the crypto.
CREATE TABLE p2p.offers (
    id            uuid PRIMARY KEY,
    seller        uuid NOT NULL,
    currency      text NOT NULL,
    fiat          text NOT NULL,
    price         numeric(38, 18) NOT NULL CHECK (price > 0),
    amount        numeric(38, 18) NOT NULL CHECK (amount > 0),
    remaining     numeric(38, 18) NOT NULL,
    min_amount    numeric(38, 18) NOT NULL CHECK (min_amount > 0),
    max_amount    numeric(38, 18) NOT NULL,
    state         text NOT NULL CHECK (state IN ('open', 'cancelled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    cancelled_at  timestamptz,
    CHECK (currency <> fiat),
    CHECK (min_amount <= max_amount AND max_amount <= amount),
    CONSTRAINT never_oversold CHECK (remaining >= 0 AND remaining <= amount),
    CHECK ((state = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX offers_open ON p2p.offers (currency, fiat, price, created_at) WHERE state = 'open';
CREATE INDEX offers_seller ON p2p.offers (seller);

-- state: see TRANSITIONS in reference_app/services/p2p/domain.py.
-- moving_to: while a transition that moves money is under way, the state it will reach
-- (recorded before the wallet is called, cleared with the state's update after it answered).
CREATE TABLE p2p.trades (
    id               uuid PRIMARY KEY,
    offer_id         uuid NOT NULL REFERENCES p2p.offers (id),
    seller           uuid NOT NULL,
    buyer            uuid NOT NULL,
    currency         text NOT NULL,
    fiat             text NOT NULL,
    amount           numeric(38, 18) NOT NULL CHECK (amount > 0),
    price            numeric(38, 18) NOT NULL CHECK (price > 0),
    fiat_total       numeric(38, 18) NOT NULL CHECK (fiat_total >= 0),
    fee              numeric(38, 18) CHECK (fee >= 0),
    state            text NOT NULL CHECK (state IN (
                         'pending', 'open', 'paid', 'released', 'cancelled', 'expired',
                         'disputed', 'resolved_buyer', 'resolved_seller', 'failed')),
    moving_to        text CHECK (moving_to IN (
                         'open', 'released', 'cancelled', 'expired', 'resolved_buyer',
                         'resolved_seller')),
    moving_by        text CHECK (moving_by IN ('buyer', 'seller', 'admin', 'system')),
    idempotency_key  text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (buyer, idempotency_key),
    CHECK (buyer <> seller),
    CHECK ((moving_to IS NULL) = (moving_by IS NULL))
);
CREATE INDEX trades_offer ON p2p.trades (offer_id);
CREATE INDEX trades_buyer ON p2p.trades (buyer, created_at);
CREATE INDEX trades_seller ON p2p.trades (seller, created_at);
CREATE INDEX trades_due ON p2p.trades (expires_at) WHERE state IN ('pending', 'open');
CREATE INDEX trades_in_flight ON p2p.trades (updated_at) WHERE moving_to IS NOT NULL;

-- Every state a trade reached, who asked for it and when: the record a dispute is judged on.
CREATE TABLE p2p.trade_events (
    id          bigserial PRIMARY KEY,
    trade_id    uuid NOT NULL REFERENCES p2p.trades (id),
    state       text NOT NULL,
    actor       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trade_events_trade ON p2p.trade_events (trade_id, id);
