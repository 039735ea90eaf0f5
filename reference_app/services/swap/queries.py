"""All SQL of the swap service."""

_COLUMNS = """
id, user_id, sell_currency, buy_currency, sell_amount, buy_amount, fee, price, rate,
price_as_of, state, created_at, expires_at, executed_at, transaction_id
"""

INSERT_QUOTE = f"""
INSERT INTO swap.quotes (id, user_id, sell_currency, buy_currency, sell_amount, buy_amount,
                         fee, price, rate, price_as_of, state, created_at, expires_at)
VALUES (%(id)s, %(user_id)s, %(sell_currency)s, %(buy_currency)s, %(sell_amount)s,
        %(buy_amount)s, %(fee)s, %(price)s, %(rate)s, %(price_as_of)s, 'open',
        %(created_at)s, %(expires_at)s)
RETURNING {_COLUMNS}
"""  # noqa: S608 (constant column list, no input)

USER_QUOTE = f"""
SELECT {_COLUMNS} FROM swap.quotes WHERE id = %(id)s AND user_id = %(user_id)s
"""  # noqa: S608

# The claim is one conditional UPDATE, so that of concurrent executions of an open quote
# exactly one moves it on, and none does once the deadline has passed.
CLAIM_FOR_EXECUTION = f"""
UPDATE swap.quotes SET state = 'executing', execution_key = %(key)s
WHERE id = %(id)s AND user_id = %(user_id)s AND state = 'open' AND expires_at > %(now)s
RETURNING {_COLUMNS}
"""  # noqa: S608

EXPIRE = f"""
UPDATE swap.quotes SET state = 'expired'
WHERE id = %(id)s AND state = 'open' AND expires_at <= %(now)s
RETURNING {_COLUMNS}
"""  # noqa: S608

GIVE_BACK = """
UPDATE swap.quotes SET state = 'open' WHERE id = %(id)s AND state = 'executing'
"""

MARK_EXECUTED = f"""
UPDATE swap.quotes
SET state = 'executed', executed_at = %(now)s, transaction_id = %(transaction_id)s
WHERE id = %(id)s AND state IN ('executing', 'open')
RETURNING {_COLUMNS}
"""  # noqa: S608
