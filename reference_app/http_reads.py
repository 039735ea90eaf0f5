"""Answers of the services the app calls (the payment provider, the price source), read with
a size limit: a provider that answers without end cannot fill the app's memory."""

from __future__ import annotations

import aiohttp

#: the largest answer read from a provider: theirs are a few hundred bytes
MAX_ANSWER_BYTES = 64 * 1024


class AnswerTooLarge(ValueError):
    """The answer's body went past the limit; the rest was not read."""


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The whole body of ``response``, or :class:`AnswerTooLarge` past ``limit`` bytes."""
    if response.content_length is not None and response.content_length > limit:
        raise AnswerTooLarge(f"answer of {response.content_length} bytes (at most {limit})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(f"answer larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
