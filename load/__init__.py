"""Load generation with Locust: users, runner, distributed runs."""
