"""Locust users, one module per kind of traffic (``load/kinds.py``), on a shared base.

The module of a kind is named after it (``load.users.deposits`` holds ``DepositorUser``);
the locustfile imports only the kinds of the mix. This package imports no Locust itself, so
``load.users.stack`` stays importable where gevent must not be.
"""
