"""The services of the reference backend, one package each (domain, queries, service, views)."""
