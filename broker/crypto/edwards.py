"""Which 32-byte strings are Ed25519 points Puente may trust: exact big-integer arithmetic. Pure.

Why Puente checks this itself: the Ed25519 verification OpenSSL performs (through ``cryptography``)
is the cofactorless RFC 8032 check ``[S]B == R + [k]A``, and it accepts any 32 bytes as a public
key. Under a public key ``A`` of small order (the identity, or any point whose order divides 8),
``[k]A`` takes at most 8 values whatever the message, so anyone can make a signature that verifies,
e.g. ``R`` = identity and ``S`` = 0 under ``A`` = identity, with no private key at all. So a key
whose point has small order, or whose encoding is not the canonical one (``y >= p``, or a sign bit
set on ``x = 0``: two strings for one point), is refused wherever an Ed25519 public key enters
Puente, and a signature whose ``R`` is such a point, or whose ``S`` is not below the group order
``L``, is refused before it is verified (``broker.crypto.signing``).

The test is computed, not looked up: decode the point as RFC 8032 section 5.1.3 does (refusing a
non-canonical encoding and a ``y`` with no ``x`` on the curve), check it lies on the curve, double
it three times and see whether that gives the identity; then, for a key, multiply it by ``L`` and see
that this gives the identity, so it has no small-order component either (``in_prime_subgroup``). A
blocklist copied by hand would have to be right about all eight small-order points and each of their
non-canonical spellings; the arithmetic cannot miss one. Extended coordinates (RFC 8032 section
5.1.4) keep the additions free of inversions: about 2 ms a key in Python, paid once where it enters.
"""

from __future__ import annotations

import functools

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point
_D = -121665 * pow(121666, P - 2, P) % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)
POINT_LEN = 32

_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T): x = X/Z, y = Y/Z, xy = T/Z


def decode_point(encoded: bytes) -> tuple[int, int] | None:
    """The affine point ``(x, y)`` that ``encoded`` is the canonical RFC 8032 encoding of, or None:
    wrong length, ``y >= p``, no ``x`` on the curve for that ``y``, or ``x = 0`` with its sign bit set."""
    if len(encoded) != POINT_LEN:
        return None
    number = int.from_bytes(encoded, "little")
    sign, y = number >> 255, number & ((1 << 255) - 1)
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (_D * y * y + 1) % P  # x^2 = u / v
    # RFC 8032's one exponentiation for both the inverse and the square root.
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P:
        x = x * _SQRT_M1 % P
    if (v * x * x - u) % P:
        return None  # u / v is not a square: no point has this y
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return x, y


def on_curve(x: int, y: int) -> bool:
    """Whether ``(x, y)`` satisfies the curve equation ``-x^2 + y^2 = 1 + d x^2 y^2`` (mod p)."""
    return (-x * x + y * y - 1 - _D * x * x * y * y) % P == 0


def _add(a: _Point, b: _Point) -> _Point:
    # RFC 8032 section 5.1.4: complete for every pair of points, doubling included.
    big_a = (a[1] - a[0]) * (b[1] - b[0]) % P
    big_b = (a[1] + a[0]) * (b[1] + b[0]) % P
    big_c = 2 * a[3] * b[3] * _D % P
    big_d = 2 * a[2] * b[2] % P
    e, f, g, h = big_b - big_a, big_d - big_c, big_d + big_c, big_b + big_a
    return e * f % P, g * h % P, f * g % P, e * h % P


def has_small_order(x: int, y: int) -> bool:
    """Whether ``[8](x, y)`` is the identity: the point's order divides the cofactor 8."""
    point: _Point = (x, y, 1, x * y % P)
    for _ in range(3):
        point = _add(point, point)
    big_x, big_y, big_z, _ = point
    return big_x % P == 0 and (big_y - big_z) % P == 0


def in_prime_subgroup(x: int, y: int) -> bool:
    """Whether ``[L](x, y)`` is the identity: the point lies in the subgroup the base point generates, with no
    small-order component. A "mixed-order" point ``A + T`` (``T`` of small order) is refused for a key: under
    cofactorless verification a signature made with the key's owner's scalar then verifies for some messages
    and not others, and a verifier with the cofactored equation (RFC 8032 permits either) disagrees with ours
    about which, so two honest auditors could reach different verdicts on one receipt. One scalar multiplication
    by ``L``, some 1-2 ms in Python; keys are checked once where they enter (and cached by ``signing``)."""
    return _identity(_times((x, y, 1, x * y % P), L))


def strong_point(encoded: bytes) -> bool:
    """Whether ``encoded`` is a canonical encoding of a curve point of prime order ``L``: not of small order
    (under such a key anyone can forge), and with no small-order component (``in_prime_subgroup``). The only
    kind of Ed25519 public key Puente accepts."""
    point = decode_point(encoded)
    if point is None or not on_curve(*point):
        return False
    return not has_small_order(*point) and in_prime_subgroup(*point)


def montgomery_prime_order(encoded: bytes) -> bool:
    """Whether ``encoded``, an X25519 public half (a little-endian u-coordinate), is the canonical encoding of the
    u-coordinate of a point of Curve25519 of prime order ``L``: what every key X25519 makes is, since its private
    scalars are multiples of 8. X25519 ignores a small-order component: under ``P + T`` (``T`` of order 2, 4 or
    8), the holder of ``P``'s private half gets the same shared secret as under ``P``, and the bytes differ, so
    one party's key would pass as another's wherever keys are compared by their bytes.

    Curve25519 and Ed25519 are one group under the birational map ``y = (u - 1) / (u + 1)``, so the point is
    checked as an Edwards point (``in_prime_subgroup``). The u-coordinate names a point and its negation, whose
    Edwards ``x`` differ only in sign; both have the same order, so the sign ``decode_point`` picks does not
    matter. A ``y`` with no ``x`` is a u on the quadratic twist, no curve point and no key's; ``u = -1`` is one
    (``A - 2`` is not a square), and the map has no ``y`` for it."""
    if len(encoded) != POINT_LEN:
        return False
    u = int.from_bytes(encoded, "little")
    if u >= P or u == P - 1:
        return False
    y = (u - 1) * pow(u + 1, P - 2, P) % P
    point = decode_point(y.to_bytes(POINT_LEN, "little"))
    if point is None or not on_curve(*point):
        return False
    return not has_small_order(*point) and in_prime_subgroup(*point)


def canonical_scalar(encoded: bytes) -> bool:
    """Whether the 32 bytes ``encoded`` (a signature's ``S``) are a little-endian integer below ``L``;
    ``S + L`` would verify too, giving a second signature for the same message."""
    return len(encoded) == POINT_LEN and int.from_bytes(encoded, "little") < L


def _encode(x: int, y: int) -> bytes:
    return (y | ((x & 1) << 255)).to_bytes(POINT_LEN, "little")


def _times(point: _Point, scalar: int) -> _Point:
    result: _Point = (0, 1, 1, 0)  # the identity
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _identity(point: _Point) -> bool:
    return point[0] % P == 0 and (point[1] - point[2]) % P == 0


def _affine(point: _Point) -> tuple[int, int]:
    inverse = pow(point[2], P - 2, P)
    return point[0] * inverse % P, point[1] * inverse % P


@functools.cache
def small_order_encodings() -> frozenset[bytes]:
    """Every 32-byte string that decodes, under a lenient reading (sign bit and all), to a point of small order:
    the canonical encodings of the eight points of the torsion subgroup, found as the multiples of one of order
    8 (the prime-order part of a curve point multiplied away, ``[L]Q``), and the spellings of those with ``x = 0``
    whose sign bit is set, which RFC 8032 refuses but a lenient decoder reads as the same point. (A ``y >= p``
    spelling is refused before this is asked.) Computed once, a few milliseconds."""
    y = 2
    while True:
        y += 1
        point = decode_point(y.to_bytes(POINT_LEN, "little"))
        if point is None:
            continue
        torsion = _times((point[0], point[1], 1, point[0] * point[1] % P), L)  # order divides 8
        if not _identity(_times(torsion, 4)):
            break  # order 8: its multiples are the whole torsion subgroup
    found = set()
    multiple: _Point = torsion
    for _ in range(8):
        x, y_ = _affine(multiple)
        found.add(_encode(x, y_))
        if x == 0:
            found.add((y_ | (1 << 255)).to_bytes(POINT_LEN, "little"))
        multiple = _add(multiple, torsion)
    return frozenset(found)


def strict_r(encoded: bytes) -> bool:
    """Whether a signature's ``R`` is canonical (``y < p``) and no point of small order: two integer comparisons
    and a set lookup (``small_order_encodings``), where decoding the point costs as much as the verification. A
    string that is no curve point at all fails OpenSSL's verification after this."""
    if len(encoded) != POINT_LEN:
        return False
    if int.from_bytes(encoded, "little") & ((1 << 255) - 1) >= P:
        return False
    return encoded not in small_order_encodings()
