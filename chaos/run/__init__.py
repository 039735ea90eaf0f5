"""Running a scenario: the stack, the load and the faults in their timeline, the samples of
the server, the facts of the database and the money invariants checked against them."""
