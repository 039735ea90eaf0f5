"""All SQL of the p2p service."""

# -- offers ---------------------------------------------------------------------------------

INSERT_OFFER = """
INSERT INTO p2p.offers (id, seller, currency, fiat, price, amount, remaining, min_amount,
                        max_amount, state)
VALUES (%(id)s, %(seller)s, %(currency)s, %(fiat)s, %(price)s, %(amount)s, %(amount)s,
        %(min_amount)s, %(max_amount)s, 'open')
RETURNING id, seller, currency, fiat, price, amount, remaining, min_amount, max_amount,
          state, created_at
"""

OFFER = """
SELECT id, seller, currency, fiat, price, amount, remaining, min_amount, max_amount,
       state, created_at
FROM p2p.offers WHERE id = %(id)s
"""

OFFER_FOR_UPDATE = OFFER + " FOR UPDATE"

# Open offers that can still take a trade, cheapest first; a null filter matches all.
OPEN_OFFERS = """
SELECT id, seller, currency, fiat, price, amount, remaining, min_amount, max_amount,
       state, created_at
FROM p2p.offers
WHERE state = 'open' AND remaining >= min_amount
  AND (%(currency)s::text IS NULL OR currency = %(currency)s)
  AND (%(fiat)s::text IS NULL OR fiat = %(fiat)s)
ORDER BY price, created_at
LIMIT %(limit)s
"""

CANCEL_OFFER = """
UPDATE p2p.offers SET state = 'cancelled', cancelled_at = now()
WHERE id = %(id)s AND state = 'open'
RETURNING id, seller, currency, fiat, price, amount, remaining, min_amount, max_amount,
          state, created_at
"""

TAKE_FROM_OFFER = "UPDATE p2p.offers SET remaining = remaining - %(amount)s WHERE id = %(id)s"

RETURN_TO_OFFER = "UPDATE p2p.offers SET remaining = remaining + %(amount)s WHERE id = %(id)s"

# -- trades ---------------------------------------------------------------------------------

# Recorded as pending with its intent 'open': the escrow is locked after this commits.
INSERT_TRADE = """
INSERT INTO p2p.trades (id, offer_id, seller, buyer, currency, fiat, amount, price, fiat_total,
                        state, moving_to, moving_by, idempotency_key, expires_at)
VALUES (%(id)s, %(offer_id)s, %(seller)s, %(buyer)s, %(currency)s, %(fiat)s, %(amount)s,
        %(price)s, %(fiat_total)s, 'pending', 'open', 'system', %(key)s,
        now() + make_interval(secs => %(ttl)s))
ON CONFLICT (buyer, idempotency_key) DO NOTHING
RETURNING id, offer_id, seller, buyer, currency, fiat, amount, price, fiat_total, fee, state,
          moving_to, moving_by, created_at, expires_at, updated_at
"""

TRADE = """
SELECT id, offer_id, seller, buyer, currency, fiat, amount, price, fiat_total, fee, state,
       moving_to, moving_by, created_at, expires_at, updated_at
FROM p2p.trades WHERE id = %(id)s
"""

TRADE_FOR_UPDATE = TRADE + " FOR UPDATE"

TRADE_BY_KEY = """
SELECT id, offer_id, seller, buyer, currency, fiat, amount, price, fiat_total, fee, state,
       moving_to, moving_by, created_at, expires_at, updated_at
FROM p2p.trades WHERE buyer = %(buyer)s AND idempotency_key = %(key)s
"""

USER_TRADES = """
SELECT id, offer_id, seller, buyer, currency, fiat, amount, price, fiat_total, fee, state,
       moving_to, moving_by, created_at, expires_at, updated_at
FROM p2p.trades
WHERE buyer = %(user)s OR seller = %(user)s
ORDER BY created_at DESC
LIMIT %(limit)s
"""

# A transition that moves no money: straight to the new state.
SET_STATE = """
UPDATE p2p.trades SET state = %(state)s, updated_at = now()
WHERE id = %(id)s AND state = %(from)s AND moving_to IS NULL
RETURNING id, offer_id, seller, buyer, currency, fiat, amount, price, fiat_total, fee, state,
          moving_to, moving_by, created_at, expires_at, updated_at
"""

# A transition that moves money, step one: say where the trade is going.
SET_INTENT = """
UPDATE p2p.trades SET moving_to = %(target)s, moving_by = %(actor)s, updated_at = now()
WHERE id = %(id)s AND state = %(from)s AND moving_to IS NULL
RETURNING id, offer_id, seller, buyer, currency, fiat, amount, price, fiat_total, fee, state,
          moving_to, moving_by, created_at, expires_at, updated_at
"""

# Step three, after the wallet answered: the intent becomes the state. Only the first of
# several concurrent finishers matches; the others find the work done.
FINISH_INTENT = """
UPDATE p2p.trades
SET state = %(state)s, moving_to = NULL, moving_by = NULL, fee = coalesce(%(fee)s, fee),
    updated_at = now()
WHERE id = %(id)s AND moving_to = %(intent)s
RETURNING id, offer_id, seller, buyer, currency, fiat, amount, price, fiat_total, fee, state,
          moving_to, moving_by, created_at, expires_at, updated_at
"""

INSERT_EVENT = """
INSERT INTO p2p.trade_events (trade_id, state, actor) VALUES (%(trade_id)s, %(state)s, %(actor)s)
"""

TRADE_EVENTS = """
SELECT state, actor, created_at FROM p2p.trade_events WHERE trade_id = %(trade_id)s ORDER BY id
"""

DUE_TRADES = """
SELECT id FROM p2p.trades
WHERE state IN ('pending', 'open') AND expires_at <= %(now)s
ORDER BY expires_at
LIMIT %(limit)s
"""

# Paid trades whose seller has not released them since ``before``.
UNRELEASED_TRADES = """
SELECT id FROM p2p.trades
WHERE state = 'paid' AND moving_to IS NULL AND updated_at <= %(before)s
ORDER BY updated_at
LIMIT %(limit)s
"""

# One buyer's openings, one at a time (a transaction-scoped lock on the buyer), so that
# counting the trades under way and adding one cannot race past the limit.
LOCK_BUYER = "SELECT pg_advisory_xact_lock(hashtextextended('p2p.buyer:' || %(buyer)s, 0))"

TRADES_UNDER_WAY = """
SELECT count(*) FROM p2p.trades
WHERE buyer = %(buyer)s AND state IN ('pending', 'open', 'paid')
"""

INTERRUPTED_TRADES = """
SELECT id FROM p2p.trades
WHERE moving_to IS NOT NULL AND updated_at <= %(before)s
ORDER BY updated_at
LIMIT %(limit)s
"""
