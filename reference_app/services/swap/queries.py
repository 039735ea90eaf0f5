"""All SQL of the swap service.

Every statement that reads a quote returns the same columns, in the order
:func:`reference_app.services.swap.service._quote` reads them.
"""

INSERT_QUOTE = """
INSERT INTO swap.quotes (id, user_id, sell_currency, buy_currency, sell_amount, buy_amount,
                         fee, spread_amount, price, rate, price_as_of, state, created_at,
                         expires_at)
VALUES (%(id)s, %(user_id)s, %(sell_currency)s, %(buy_currency)s, %(sell_amount)s,
        %(buy_amount)s, %(fee)s, %(spread_amount)s, %(price)s, %(rate)s, %(price_as_of)s,
        'open', %(created_at)s, %(expires_at)s)
RETURNING id, user_id, sell_currency, buy_currency, sell_amount, buy_amount, fee, spread_amount,
          price, rate, price_as_of, state, created_at, expires_at, executed_at, transaction_id
"""

USER_QUOTE = """
SELECT id, user_id, sell_currency, buy_currency, sell_amount, buy_amount, fee, spread_amount,
       price, rate, price_as_of, state, created_at, expires_at, executed_at, transaction_id
FROM swap.quotes WHERE id = %(id)s AND user_id = %(user_id)s
"""

# Each change of state is one conditional UPDATE: ``%(from)s`` is the tuple of states the
# transition table allows it from, so that concurrent callers cannot both make the same
# change. The claim takes no quote past its deadline; the expiry none before it.
CLAIM_FOR_EXECUTION = """
UPDATE swap.quotes SET state = 'executing', execution_key = %(key)s
WHERE id = %(id)s AND user_id = %(user_id)s AND state IN %(from)s AND expires_at > %(now)s
RETURNING id, user_id, sell_currency, buy_currency, sell_amount, buy_amount, fee, spread_amount,
          price, rate, price_as_of, state, created_at, expires_at, executed_at, transaction_id
"""

EXPIRE = """
UPDATE swap.quotes SET state = 'expired'
WHERE id = %(id)s AND state IN %(from)s AND expires_at <= %(now)s
RETURNING id, user_id, sell_currency, buy_currency, sell_amount, buy_amount, fee, spread_amount,
          price, rate, price_as_of, state, created_at, expires_at, executed_at, transaction_id
"""

# An execution cut short, settled after the deadline with nothing posted: expired.
SETTLE_EXPIRED = """
UPDATE swap.quotes SET state = 'expired'
WHERE id = %(id)s AND state IN %(from)s AND expires_at <= %(now)s
"""

# Executions claimed before ``before`` (deadline) and never finished: their answer was lost.
STALE_EXECUTIONS = """
SELECT id, user_id FROM swap.quotes
WHERE state = 'executing' AND expires_at <= %(before)s
ORDER BY expires_at
LIMIT %(limit)s
"""

GIVE_BACK = "UPDATE swap.quotes SET state = 'open' WHERE id = %(id)s AND state IN %(from)s"

MARK_EXECUTED = """
UPDATE swap.quotes
SET state = 'executed', executed_at = %(now)s, transaction_id = %(transaction_id)s
WHERE id = %(id)s AND state IN %(from)s
RETURNING id, user_id, sell_currency, buy_currency, sell_amount, buy_amount, fee, spread_amount,
          price, rate, price_as_of, state, created_at, expires_at, executed_at, transaction_id
"""

# Open quotes past their deadline, for the expiry job: locked by this statement, skipping
# those a concurrent execution or another worker's expiry holds. The state and deadline are
# judged again under the lock, so a quote claimed for execution meanwhile stays claimed.
EXPIRE_DUE = """
UPDATE swap.quotes SET state = 'expired'
WHERE id IN (
    SELECT id FROM swap.quotes
    WHERE state IN %(from)s AND expires_at <= %(now)s
    ORDER BY expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
AND state IN %(from)s AND expires_at <= %(now)s
RETURNING id
"""
