"""Background: the price feed and the scheduled jobs."""
