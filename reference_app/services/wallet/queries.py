"""All SQL of the wallet service."""

INSERT_USER = """
INSERT INTO wallet.users (id, username) VALUES (%(id)s, %(username)s)
ON CONFLICT (username) DO NOTHING
RETURNING id
"""

USER_EXISTS = "SELECT 1 FROM wallet.users WHERE id = %(id)s"

INSERT_TRANSACTION = """
INSERT INTO wallet.transactions (kind, reference, idempotency_key)
VALUES (%(kind)s, %(reference)s, %(key)s)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""

TRANSACTION_BY_KEY = "SELECT id FROM wallet.transactions WHERE idempotency_key = %(key)s"

TRANSACTION_KIND_BY_KEY = """
SELECT id, kind FROM wallet.transactions WHERE idempotency_key = %(key)s
"""

TRANSACTIONS_BY_KEYS = """
SELECT idempotency_key, id FROM wallet.transactions WHERE idempotency_key = ANY(%(keys)s)
"""

ENSURE_ACCOUNT = """
INSERT INTO wallet.accounts (owner, currency, kind, slot)
VALUES (%(owner)s, %(currency)s, %(kind)s, %(slot)s)
ON CONFLICT (owner, currency, kind, slot) DO NOTHING
"""

# Rows are locked in id order, so that concurrent movements never deadlock.
LOCK_ACCOUNTS = """
SELECT id, owner, currency, kind, slot, balance FROM wallet.accounts
WHERE (owner, currency, kind, slot) IN %(keys)s
ORDER BY id
FOR UPDATE
"""

ADD_TO_BALANCE = "UPDATE wallet.accounts SET balance = balance + %(amount)s WHERE id = %(id)s"

INSERT_ENTRY = """
INSERT INTO wallet.entries (transaction_id, account_id, currency, amount)
VALUES (%(transaction_id)s, %(account_id)s, %(currency)s, %(amount)s)
"""

BALANCES = """
SELECT currency,
       coalesce(sum(balance) FILTER (WHERE kind = 'available'), 0) AS available,
       coalesce(sum(balance) FILTER (WHERE kind = 'escrow'), 0) AS escrow
FROM wallet.accounts
WHERE owner = %(owner)s AND kind IN ('available', 'escrow')
GROUP BY currency
ORDER BY currency
"""

# the sum of the account's slots (one for the express liquidity)
SYSTEM_BALANCES = """
SELECT currency, sum(balance) FROM wallet.accounts
WHERE owner = %(owner)s AND kind = 'system'
GROUP BY currency
ORDER BY currency
"""

TRANSACTION_LEGS = """
SELECT a.owner, a.currency, a.kind, e.amount
FROM wallet.entries e JOIN wallet.accounts a ON a.id = e.account_id
WHERE e.transaction_id = %(transaction_id)s
"""

USER_ENTRIES = """
SELECT t.id AS transaction_id, t.kind, t.reference, e.currency, a.kind AS account,
       e.amount, a.balance AS balance_now, e.created_at
FROM wallet.entries e
JOIN wallet.accounts a ON a.id = e.account_id
JOIN wallet.transactions t ON t.id = e.transaction_id
WHERE a.owner = %(owner)s
ORDER BY e.id DESC
LIMIT %(limit)s
"""

INSERT_LOCK = """
INSERT INTO wallet.escrow_locks (reference, owner, currency, amount, state)
VALUES (%(reference)s, %(owner)s, %(currency)s, %(amount)s, 'held')
ON CONFLICT (reference) DO NOTHING
RETURNING reference
"""

LOCK_BY_REFERENCE = """
SELECT reference, owner, currency, amount, state, released_to, fee
FROM wallet.escrow_locks WHERE reference = %(reference)s
"""

LOCK_FOR_UPDATE = LOCK_BY_REFERENCE + " FOR UPDATE"

CLOSE_LOCK = """
UPDATE wallet.escrow_locks
SET state = %(state)s, released_to = %(released_to)s, fee = %(fee)s, closed_at = now()
WHERE reference = %(reference)s AND state = 'held'
"""
