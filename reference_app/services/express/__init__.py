"""Express buy: admin-funded liquidity, quotes at price plus markup, orders."""
