"""The baseline of bench/deposit_throughput.py: bare aiohttp + aiopg, one INSERT per request.

``python bench/bare_insert.py --dsn DSN --port N --workers 2``: no validation, no provider
call, no ledger: the least an HTTP endpoint that writes one row can do with these libraries.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import sys
import uuid

import aiopg
from aiohttp import web

POOL = web.AppKey("pool", aiopg.Pool)
SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_bare_deposits (
    id uuid PRIMARY KEY, idempotency_key text NOT NULL, currency text NOT NULL,
    amount numeric(38, 18) NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
)
"""


async def deposit(request: web.Request) -> web.Response:
    body = await request.json()
    deposit_id = uuid.uuid4()
    async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO bench_bare_deposits (id, idempotency_key, currency, amount) "
            "VALUES (%s, %s, %s, %s)",
            (str(deposit_id), request.headers.get("Idempotency-Key", ""), body["currency"],
             body["amount"]),
        )  # fmt: skip
    return web.Response(text=json.dumps({"id": str(deposit_id)}), status=201,
                        content_type="application/json")  # fmt: skip


def serve(dsn: str, port: int, pool_size: int) -> None:
    async def pool_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        async with aiopg.create_pool(dsn, minsize=1, maxsize=pool_size) as pool:
            app[POOL] = pool
            yield

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/deposit", deposit)
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, print=None, access_log=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=50)
    args = parser.parse_args()
    import psycopg2

    with psycopg2.connect(args.dsn) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # run `finally` below
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=serve, args=(args.dsn, args.port, args.pool_size))
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
