"""What a run leaves for people and CI: the journal, JUnit XML, the terminal summary, the
load's tables, and the pass rates and margins of repeated runs."""
