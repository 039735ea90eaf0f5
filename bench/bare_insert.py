"""The baselines of bench/deposit_throughput.py: bare aiohttp + aiopg, nothing else.

``python bench/bare_insert.py --dsn DSN --port N --workers 2 [--provider URL --api-key K]``

- ``POST /deposit``: one INSERT per request. No validation, no provider call, no ledger:
  the least an HTTP endpoint that writes one row can do with these libraries.
- ``POST /deposit-flow`` (with ``--provider``): the round trips a create-deposit cannot do
  without, done the bare way: look the idempotency key up, ask the payment provider for a
  payment (``POST /v1/payment``), insert the deposit. No auth, no validation, no error
  boundary, no metrics: the ceiling of any implementation of that flow on this machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import sys
import uuid
from dataclasses import dataclass

import aiohttp
import aiopg
from aiohttp import web


@dataclass(frozen=True)
class Provider:
    url: str
    api_key: str


POOL = web.AppKey("pool", aiopg.Pool)
HTTP = web.AppKey("http", aiohttp.ClientSession)
PROVIDER = web.AppKey("provider", Provider)
SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_bare_deposits (
    id uuid PRIMARY KEY, idempotency_key text NOT NULL, currency text NOT NULL,
    amount numeric(38, 18) NOT NULL, pay_address text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS bench_bare_deposits_key ON bench_bare_deposits (idempotency_key);
"""
INSERT = (
    "INSERT INTO bench_bare_deposits (id, idempotency_key, currency, amount, pay_address) "
    "VALUES (%s, %s, %s, %s, %s)"
)


def created(deposit_id: uuid.UUID) -> web.Response:
    return web.Response(text=json.dumps({"id": str(deposit_id)}), status=201,
                        content_type="application/json")  # fmt: skip


async def deposit(request: web.Request) -> web.Response:
    body = await request.json()
    deposit_id = uuid.uuid4()
    key = request.headers.get("Idempotency-Key", "")
    async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(INSERT, (str(deposit_id), key, body["currency"], body["amount"], None))
    return created(deposit_id)


async def deposit_flow(request: web.Request) -> web.Response:
    body = await request.json()
    key = request.headers.get("Idempotency-Key", "")
    async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT id FROM bench_bare_deposits WHERE idempotency_key = %s", (key,))
        found = await cur.fetchone()
    if found is not None:
        return created(found[0])
    deposit_id = uuid.uuid4()
    provider = request.app[PROVIDER]
    ticker = body["currency"].lower()
    async with request.app[HTTP].post(
        f"{provider.url}/v1/payment",
        json={"price_amount": body["amount"], "price_currency": ticker, "pay_currency": ticker,
              "order_id": str(deposit_id)},
        headers={"x-api-key": provider.api_key},
    ) as answer:  # fmt: skip
        payment = await answer.json()
    async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(INSERT, (str(deposit_id), key, body["currency"], body["amount"],
                                   payment["pay_address"]))  # fmt: skip
    return created(deposit_id)


def serve(dsn: str, port: int, pool_size: int, provider: Provider | None) -> None:
    async def resources(app: web.Application):  # type: ignore[no-untyped-def]
        async with (
            aiopg.create_pool(dsn, minsize=1, maxsize=pool_size) as pool,
            aiohttp.ClientSession() as http,
        ):
            app[POOL] = pool
            app[HTTP] = http
            yield

    app = web.Application()
    app.cleanup_ctx.append(resources)
    app.router.add_post("/deposit", deposit)
    if provider is not None:
        app[PROVIDER] = provider
        app.router.add_post("/deposit-flow", deposit_flow)
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, print=None, access_log=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=50)
    parser.add_argument("--provider", help="payment provider base URL (enables /deposit-flow)")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args()
    import psycopg2

    with psycopg2.connect(args.dsn) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
    provider = Provider(args.provider.rstrip("/"), args.api_key) if args.provider else None
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # run `finally` below
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=serve, args=(args.dsn, args.port, args.pool_size, provider))
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=10)


if __name__ == "__main__":
    main()
