"""All SQL of the express service.

Every statement that reads a quote returns the same columns, in the order
:func:`reference_app.services.express.service._quote` reads them; every one that reads an
order returns the order's columns followed by its quote's, as
:func:`reference_app.services.express.service._order` reads them.
"""

INSERT_QUOTE = """
INSERT INTO express.quotes (id, user_id, buy_currency, pay_currency, buy_amount, pay_amount,
                            cost, fee, price, markup, rate, price_as_of, state, created_at,
                            expires_at)
VALUES (%(id)s, %(user_id)s, %(buy_currency)s, %(pay_currency)s, %(buy_amount)s,
        %(pay_amount)s, %(cost)s, %(fee)s, %(price)s, %(markup)s, %(rate)s, %(price_as_of)s,
        'open', %(created_at)s, %(expires_at)s)
RETURNING id, user_id, buy_currency, pay_currency, buy_amount, pay_amount, cost, fee, price,
       markup, rate, price_as_of, state, created_at, expires_at
"""

USER_QUOTE = """
SELECT id, user_id, buy_currency, pay_currency, buy_amount, pay_amount, cost, fee, price,
       markup, rate, price_as_of, state, created_at, expires_at
FROM express.quotes WHERE id = %(id)s AND user_id = %(user_id)s
"""

# Placing an order locks its quote: concurrent placements on one quote take turns for the
# few statements that decide whether and which order exists (never across the wallet call).
LOCK_USER_QUOTE = USER_QUOTE + " FOR UPDATE"

EXPIRE_QUOTE = """
UPDATE express.quotes SET state = 'expired'
WHERE id = %(id)s AND state = 'open' AND expires_at <= %(now)s
"""

MARK_QUOTE_ORDERED = """
UPDATE express.quotes SET state = 'ordered' WHERE id = %(id)s AND state = 'open'
"""

# For the scheduled cleanup: SKIP LOCKED and the repeated condition let several workers run
# it at once, each quote expired once; a quote being ordered (locked) is left alone.
EXPIRE_QUOTES = """
UPDATE express.quotes SET state = 'expired'
WHERE id IN (SELECT id FROM express.quotes
             WHERE state = 'open' AND expires_at <= %(now)s
             ORDER BY expires_at
             LIMIT %(limit)s
             FOR UPDATE SKIP LOCKED)
  AND state = 'open'
"""

#: an order with its quote, as ``_order`` reads it
ORDER_SELECT = """
SELECT o.id, o.state, o.reason, o.created_at, o.filled_at, o.transaction_id,
       q.id, q.user_id, q.buy_currency, q.pay_currency, q.buy_amount, q.pay_amount,
       q.cost, q.fee, q.price, q.markup, q.rate, q.price_as_of, q.state, q.created_at,
       q.expires_at
FROM express.orders o JOIN express.quotes q ON q.id = o.quote_id
"""

ORDER_OF_QUOTE = (
    ORDER_SELECT
    + """\
WHERE o.quote_id = %(quote_id)s
"""
)

# Orders placed and never finished, on quotes whose deadline was before ``before``: their
# wallet answer was lost.
STALE_ORDERS = (
    ORDER_SELECT
    + """\
WHERE o.state = 'pending' AND q.expires_at <= %(before)s
ORDER BY q.expires_at
LIMIT %(limit)s
"""
)

USER_ORDER = (
    ORDER_SELECT
    + """\
WHERE o.id = %(id)s AND o.user_id = %(user_id)s
"""
)

USER_ORDER_BY_KEY = (
    ORDER_SELECT
    + """\
WHERE o.user_id = %(user_id)s AND o.idempotency_key = %(key)s
"""
)

# ON CONFLICT covers both unique keys: the quote's one order (never concurrently: the quote
# is locked) and the user's idempotency key (reused for another quote).
INSERT_ORDER = """
INSERT INTO express.orders (id, quote_id, user_id, idempotency_key, state, created_at)
VALUES (%(id)s, %(quote_id)s, %(user_id)s, %(key)s, 'pending', %(now)s)
ON CONFLICT DO NOTHING
RETURNING id
"""

# Each change of an order's state is one conditional UPDATE: ``%(from)s`` is the tuple of
# states the transition table allows it from, so that concurrent callers cannot both make
# the same change.
RETRY_ORDER = """
UPDATE express.orders SET state = 'pending', reason = NULL
WHERE id = %(id)s AND state IN %(from)s
RETURNING id
"""

REJECT_ORDER = """
UPDATE express.orders SET state = 'rejected', reason = %(reason)s
WHERE id = %(id)s AND state IN %(from)s
RETURNING id
"""

MARK_FILLED = """
UPDATE express.orders
SET state = 'filled', reason = NULL, filled_at = %(now)s, transaction_id = %(transaction_id)s
WHERE id = %(id)s AND state IN %(from)s
"""
