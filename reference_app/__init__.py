"""Reference backend: the crypto wallet/exchange the harness tests (system under test)."""
