"""The project's one import name: ``isolation_harness.chaos`` (the harness),
``isolation_harness.load`` (the load users and runner), ``isolation_harness.reference_app``
(the backend it proves things about) and ``isolation_harness.topology`` (their contract).

The folders stay at the repository's top level; the entries here are links to them, so an
install puts nothing but ``isolation_harness`` beside a user's own packages: PyPI's ``load``
or ``chaos`` can be installed next to the harness and neither hides the other.
"""
