"""The local stack: PostgreSQL, the Toxiproxy server with one proxy per link, the provider
fakes and the app, as processes the harness starts, records, watches and stops."""
