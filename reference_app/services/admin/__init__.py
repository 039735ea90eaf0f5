"""Admin dashboard: revenue, fees, liquidity, counts by state, pool metrics."""
