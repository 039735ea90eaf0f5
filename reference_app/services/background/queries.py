"""All SQL of the background service (its own schema: the price history)."""

# One statement per poll, whatever the number of pairs.
RECORD_PRICES = """
INSERT INTO background.price_history (pair, price, as_of, fetched_at)
SELECT pair, price, as_of, %(fetched_at)s
FROM unnest(%(pairs)s::text[], %(prices)s::numeric[], %(as_of)s::timestamptz[])
     AS p (pair, price, as_of)
"""

PRICE_HISTORY = """
SELECT pair, price, as_of, fetched_at
FROM background.price_history
WHERE pair = %(pair)s AND as_of >= %(since)s
ORDER BY as_of DESC, id DESC
LIMIT %(limit)s
"""

# Several workers may prune at once: each takes rows the others have not locked.
PRUNE_PRICE_HISTORY = """
DELETE FROM background.price_history
WHERE id IN (
    SELECT id FROM background.price_history
    WHERE fetched_at < %(before)s
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
"""
