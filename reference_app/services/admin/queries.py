"""All SQL of the admin dashboard: reads of the other services' schemas, never a write.

The dashboard is one statement, the parts below joined by ``UNION ALL``: one round trip to
the admin's database (which may be slow) and one snapshot, so that every figure is of the
same instant. Each row is ``(section, label, detail, currency, amount, number)``.
"""

# Credits to the revenue account in the period, per transaction kind, reference prefix and
# currency. Debits from it (a payout, a correction) are not fees.
FEE_CREDITS = """
SELECT 'revenue'::text AS section, t.kind AS label,
       nullif(split_part(coalesce(t.reference, ''), ':', 1), '') AS detail,
       e.currency AS currency, sum(e.amount) AS amount, count(DISTINCT t.id) AS number
FROM wallet.accounts a
JOIN wallet.entries e ON e.account_id = a.id
JOIN wallet.transactions t ON t.id = e.transaction_id
WHERE a.owner = %(revenue_account)s AND a.kind = 'system'
  AND e.amount > 0 AND e.created_at >= %(start)s AND e.created_at < %(end)s
GROUP BY t.kind, 3, e.currency
"""

LIQUIDITY = """
SELECT 'liquidity', NULL, NULL, currency, balance, NULL
FROM wallet.accounts
WHERE owner = %(liquidity_account)s AND kind = 'system'
"""

DEPOSITS_BY_STATUS = """
SELECT 'deposits', status, NULL, NULL, NULL, count(*)
FROM deposits.deposits
WHERE created_at >= %(start)s AND created_at < %(end)s
GROUP BY status
"""

TRADES_BY_STATE = """
SELECT 'p2p_trades', state, NULL, NULL, NULL, count(*)
FROM p2p.trades
WHERE created_at >= %(start)s AND created_at < %(end)s
GROUP BY state
"""

# An open quote past its deadline is expired, though the cleanup job may not have said so.
QUOTES_BY_STATE = """
SELECT 'swap_quotes',
       CASE WHEN state = 'open' AND expires_at <= now() THEN 'expired' ELSE state END,
       NULL, NULL, NULL, count(*)
FROM swap.quotes
WHERE created_at >= %(start)s AND created_at < %(end)s
GROUP BY 2
"""

DASHBOARD = "\nUNION ALL\n".join(
    f"({part.strip()})"
    for part in (FEE_CREDITS, LIQUIDITY, DEPOSITS_BY_STATUS, TRADES_BY_STATE, QUOTES_BY_STATE)
)
