"""All SQL of the deposits service."""

INSERT_DEPOSIT = """
INSERT INTO deposits.deposits
    (id, user_id, currency, amount, status, idempotency_key, provider_payment_id, pay_address,
     pay_amount, pay_currency)
VALUES (%(id)s, %(user_id)s, %(currency)s, %(amount)s, 'waiting', %(key)s, %(payment_id)s,
        %(pay_address)s, %(pay_amount)s, %(pay_currency)s)
ON CONFLICT (user_id, idempotency_key) DO NOTHING
RETURNING id, user_id, currency, amount, status, provider_payment_id, pay_address,
          pay_amount, pay_currency, credited_at, created_at
"""

DEPOSIT_BY_KEY = """
SELECT id, user_id, currency, amount, status, provider_payment_id, pay_address,
       pay_amount, pay_currency, credited_at, created_at
FROM deposits.deposits
WHERE user_id = %(user_id)s AND idempotency_key = %(key)s
"""

DEPOSIT_BY_ID = """
SELECT id, user_id, currency, amount, status, provider_payment_id, pay_address,
       pay_amount, pay_currency, credited_at, created_at
FROM deposits.deposits WHERE id = %(id)s
"""

USER_DEPOSITS = """
SELECT id, user_id, currency, amount, status, provider_payment_id, pay_address,
       pay_amount, pay_currency, credited_at, created_at
FROM deposits.deposits
WHERE user_id = %(user_id)s
ORDER BY created_at DESC
LIMIT %(limit)s
"""

DEPOSIT_BY_PAYMENT_FOR_UPDATE = """
SELECT id, user_id, currency, amount, status, provider_payment_id, pay_address,
       pay_amount, pay_currency, credited_at, created_at
FROM deposits.deposits WHERE provider_payment_id = %(payment_id)s FOR UPDATE
"""

SET_STATUS = """
UPDATE deposits.deposits SET status = %(status)s, updated_at = now() WHERE id = %(id)s
"""

MARK_FINISHED = """
UPDATE deposits.deposits
SET status = 'finished', credited_at = now(), wallet_transaction_id = %(transaction_id)s,
    updated_at = now()
WHERE id = %(id)s
"""

RECORD_IPN = """
INSERT INTO deposits.ipn_events (provider_payment_id, status, outcome, body)
VALUES (%(payment_id)s, %(status)s, %(outcome)s, %(body)s)
"""

# Deposits still waiting for their payment, created before ``before``, locked for this
# transaction, skipping those another holds (an IPN being applied, another worker's
# expiry): the expiry asks the wallet about them under the lock, and a credit for one can
# only be made under it (the IPN credits while it holds the row).
LOCK_UNPAID = """
SELECT id FROM deposits.deposits
WHERE status = 'waiting' AND created_at <= %(before)s
ORDER BY created_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

EXPIRE = """
UPDATE deposits.deposits SET status = 'expired', updated_at = now()
WHERE id = ANY(%(ids)s::uuid[]) AND status = 'waiting'
RETURNING id
"""
