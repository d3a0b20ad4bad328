"""Split's two bucketing hashes.

Split hashes a key with the flag's seed and maps the result to a bucket
between 1 and 100. Which hash a flag uses is its ``algo`` field:

* ``2``: murmur3 (x86, 32-bit) over the key's UTF-8 bytes, seed taken as an
  unsigned 32-bit value, result unsigned; ``bucket = hash % 100 + 1``.
* ``1`` or missing: the legacy hash, Java's ``String.hashCode`` over UTF-16
  code units with 32-bit wrap-around, XOR-ed with the seed; the bucket uses
  Java's truncated remainder, ``abs(hash % 100) + 1``.

The JavaScript SDK always uses murmur3; flagedge follows Java and honours
``algo``, so a key outside the Basic Multilingual Plane counts as two code
units, as it does in Java (the Python SDK counts code points instead).

CPython uses the ``mmh3`` extension. The Worker's Pyodide has no ``mmh3``
wheel, so the pure-Python murmur3 below takes over there; both give the same
values on every published test vector.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = [
    "bucket",
    "legacy_hash",
    "murmur3_32",
    "murmur3_32_pure",
]

_MASK = 0xFFFFFFFF
_C1 = 0xCC9E2D51
_C2 = 0x1B873593


_BLOCK_CACHE: dict[str, tuple[tuple[int, ...], int, int]] = {}
_BLOCK_CACHE_SIZE = 4096


def _mixed_blocks(key: str) -> tuple[tuple[int, ...], int, int]:
    """The seed-independent half of murmur3 for ``key``: mixed blocks, mixed tail, length.

    A key is hashed with many seeds (allocation, partitions, every flag of a
    bulk call), so the Worker keeps the last few thousand keys' blocks.
    """
    cached = _BLOCK_CACHE.get(key)
    if cached is not None:
        return cached
    data = key.encode("utf-8")
    length = len(data)
    body = length & ~3
    blocks = []
    for (k,) in struct.iter_unpack("<I", data[:body]):
        k = (k * _C1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        blocks.append((k * _C2) & _MASK)
    tail = 0
    if length & 3:
        k = int.from_bytes(data[body:], "little")
        k = (k * _C1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        tail = (k * _C2) & _MASK
    if len(_BLOCK_CACHE) >= _BLOCK_CACHE_SIZE:
        _BLOCK_CACHE.clear()
    result = _BLOCK_CACHE[key] = (tuple(blocks), tail, length)
    return result


def murmur3_32_pure(key: str, seed: int) -> int:
    """Murmur3 x86 32-bit of ``key``'s UTF-8 bytes, as an unsigned int."""
    blocks, tail, length = _mixed_blocks(key)
    h = seed & _MASK
    for k in blocks:
        h ^= k
        h = ((h << 13) | (h >> 19)) & _MASK
        h = (h * 5 + 0xE6546B64) & _MASK
    h ^= tail  # a zero tail leaves h unchanged, as the algorithm does when there is none
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def _mmh3_or_pure() -> Callable[[str, int], int]:
    try:
        import mmh3
    except ImportError:  # Pyodide in the Worker: no mmh3 wheel there.
        return murmur3_32_pure

    mmh3_hash = mmh3.hash

    def murmur3_32(key: str, seed: int) -> int:
        # UTF-8 bytes made here: mmh3 5.3 crashes the process on a lone
        # surrogate, where encoding raises an error the evaluator contains.
        # The seed's low 32 bits are what the algorithm uses.
        return mmh3_hash(key.encode("utf-8"), seed & _MASK, signed=False)

    return murmur3_32


murmur3_32: Callable[[str, int], int] = _mmh3_or_pure()
"""Murmur3 x86 32-bit, unsigned: ``mmh3`` when importable, else pure Python."""


def legacy_hash(key: str, seed: int) -> int:
    """Java's ``String.hashCode`` of ``key`` XOR ``seed``, as a signed int32."""
    h = 0
    if key.isascii() or max(key) <= "\uffff":
        for ch in key:
            h = (31 * h + ord(ch)) & _MASK
    else:
        # Outside the BMP a character is a surrogate pair: two code units.
        units = key.encode("utf-16-le", "surrogatepass")
        for (unit,) in struct.iter_unpack("<H", units):
            h = (31 * h + unit) & _MASK
    if h & 0x80000000:
        h -= 0x100000000
    return h ^ _int32(seed)


def _int32(value: int) -> int:
    value &= _MASK
    return value - 0x100000000 if value & 0x80000000 else value


def bucket(key: str, seed: int, legacy: bool) -> int:
    """The bucket (1..100) of ``key`` for ``seed`` under the chosen hash."""
    if legacy:
        return abs(legacy_hash(key, seed)) % 100 + 1
    return murmur3_32(key, seed) % 100 + 1
