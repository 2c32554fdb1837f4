"""The reader's atoms: strings, characters, numbers, tags, names, and error positions.

Each function turns one token's text into its value (or an
:class:`~garrison.exceptions.EdnSyntaxError` that says where), for the token
loop in :mod:`garrison.edn._reader`.
"""

from __future__ import annotations

import json.decoder
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

from garrison.edn._types import CHAR_NAMES, BigInt, Char, Tagged
from garrison.exceptions import EdnSyntaxError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MAX_DIGITS",
    "MIN_MAX_DIGITS",
    "SYMBOL_TEXT",
    "TOKEN_CHAR",
    "apply_tag",
    "check_digits",
    "check_named",
    "long_int",
    "parse_inst",
    "read_char",
    "read_number",
    "syntax_error",
    "unescape",
    "where",
]

# json's C string scanner (its pure-Python twin where the C module is missing);
# typeshed does not declare json.decoder.scanstring, which exists at run time.
_scanstring: Final[Callable[[str, int, bool], tuple[str, int]]] = (
    getattr(json.decoder, "c_scanstring", None) or json.decoder.scanstring  # type: ignore[attr-defined]
)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1

# Characters that end a token (EDN whitespace, commas, delimiters, and the
# macro characters Clojure's reader stops at).
TOKEN_CHAR: Final = r'[^\s,()\[\]{}"\\;]'  # noqa: S105 - a regex, not a password

# A symbol (or nil, true, false): a sign followed by a digit starts a number.
# The writer refuses symbols that do not read back as this.
SYMBOL_TEXT: Final = rf"(?:[+-](?![0-9])|[^\s,()\[\]{{}}\"\\;#0-9:+-]){TOKEN_CHAR}*"

# A string body whose escapes are all EDN's (Clojure's reader): \t \r \n \b \f \\ \"
# \uXXXX and octal up to \377 (three digits at most, as Clojure reads them).
_VALID_ESCAPES: Final = re.compile(
    r'(?:[^\\]++|\\(?:[tnrbf"\\]|u[0-9a-fA-F]{4}|[0-3][0-7]{0,2}|[4-7][0-7]?(?![0-7])))*+',
    re.DOTALL,
)
_ESCAPE: Final = re.compile(r"\\(?:[tnrbf\"\\]|u[0-9a-fA-F]{4}|[0-7]{1,3}|.?)", re.DOTALL)
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
# Numbers other than plain ints and floats, in the order Clojure's reader tries them.
_NUMBER_FORMS: Final = re.compile(
    r"(?P<sign>[+-]?)(?:"
    r"(?P<int>0|[1-9][0-9]*)(?P<int_n>N)?"
    r"|0[xX](?P<hex>[0-9A-Fa-f]+)(?P<hex_n>N)?"
    r"|0(?P<octal>[0-7]+)(?P<octal_n>N)?"
    r"|(?P<radix>[1-9][0-9]?)[rR](?P<digits>[0-9A-Za-z]+)(?P<radix_n>N)?"
    r"|(?P<bad_octal>0[0-9]+)"
    r"|(?P<numerator>[0-9]+)/(?P<denominator>[0-9]+)"
    r"|(?P<float>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)(?P<decimal>M)?"
    r")"
)
# Clojure's own symbol pattern (LispReader/EdnReader ``symbolPat``), for strict mode.
_CLOJURE_SYMBOL: Final = re.compile(r":?([^0-9/].*/)?(/|[^0-9/][^/]*)", re.DOTALL)
_INST: Final = re.compile(
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})"
    r"(?:[Tt]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?)?)?)?)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)


def where(text: str, pos: int) -> dict[str, Any]:
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    excerpt = text[max(line_start, pos - 20) : pos + 20].split("\n", 1)[0].rstrip("\r")
    return {"line": line, "column": pos - line_start + 1, "excerpt": excerpt}


def syntax_error(text: str, pos: int, message: str) -> EdnSyntaxError:
    """An :class:`EdnSyntaxError` for ``pos`` in ``text`` (1-based line and column, excerpt)."""
    return EdnSyntaxError(message, **where(text, pos))


def unescape(body: str, text: str, pos: int) -> str:
    """Decode the escapes of a string body that holds at least one backslash.

    ``pos`` is where the body starts in ``text``.
    """
    if "\\u" not in body and "\\/" not in body:
        # JSON's string escapes without \u and \/ are exactly EDN's short
        # escapes (\" \\ \b \f \n \r \t), and json's C scanner decodes them
        # in place; any other escape (octal, invalid) makes it raise, and the
        # full decoder below decides. strict=False: EDN strings may hold raw
        # control characters.
        try:
            # The C scanner takes its arguments by position only.
            return _scanstring(text, pos, False)[0]  # noqa: FBT003
        except ValueError:
            pass
    if _VALID_ESCAPES.fullmatch(body) is None:
        raise _bad_escape(body, text, pos)
    # EDN's escapes are a subset of Python's, so the C codec decodes them;
    # backslashreplace carries the non-Latin-1 text through it unchanged.
    out = body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    if "\\u" in body and _SURROGATE.search(out):
        # \uD83D\uDE00 is one code point written as a UTF-16 pair; lone halves stay.
        out = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return out


def _bad_escape(body: str, text: str, pos: int) -> EdnSyntaxError:
    for m in _ESCAPE.finditer(body):
        escape = m.group()
        if escape[1:2] in set("01234567") and int(escape[1:], 8) > 0o377:
            return syntax_error(text, pos + m.start(), "octal escape out of range")
        if escape[1:2] == "u" and len(escape) != 6:
            return syntax_error(text, pos + m.start(), "\\u needs four hex digits")
        if len(escape) < 2 or escape[1] not in 'tnrbf"\\u01234567':
            return syntax_error(text, pos + m.start(), f"unsupported escape {escape}")
    return syntax_error(text, pos, "invalid escape")


def read_char(token: str, text: str, pos: int) -> Char:
    if len(token) == 1:
        if ord(token) > 0xFFFF:  # as Clojure: a char is one UTF-16 unit, and dumps refuses it
            raise syntax_error(text, pos, f"unsupported character \\{token} (use a string)")
        return Char(token)
    named = CHAR_NAMES.get(token)
    if named is not None:
        return Char(named)
    if token[0] == "u" and len(token) == 5:
        try:
            return Char(chr(int(token[1:], 16)))
        except ValueError:
            pass
    if token[0] == "o" and 2 <= len(token) <= 4:
        try:
            code = int(token[1:], 8)
        except ValueError:
            code = -1
        if 0 <= code <= 0o377:
            return Char(chr(code))
    raise syntax_error(text, pos, f"unsupported character \\{token}")


#: The reader's default limit on the digits of one number (``max_digits=`` of
#: ``loads``, ``load`` and ``iter_values``; see ``docs/edn.md``, "Limits").
MAX_DIGITS: Final = 10_000
#: The lowest ``max_digits``: CPython's own ``int(str)`` limit, which the
#: reader's fast path for plain integers relies on.
MIN_MAX_DIGITS: Final = 4300
# long_int converts pieces this short with int(str): below the lowest value
# sys.set_int_max_str_digits accepts (640), so the application's setting never
# matters.
_INT_PIECE: Final = 600


def long_int(digits: str) -> int:
    """``int(digits)`` for decimal integers past Python's ``int(str)`` digit limit.

    Divide and conquer: each half is converted on its own and joined with one
    multiplication, so a long number costs what CPython's multiplication costs,
    not the quadratic time of ``int(str)`` or ``int(Decimal(str))``.
    """
    if digits[:1] in "+-":
        value = long_int(digits[1:])
        return -value if digits[0] == "-" else value
    if len(digits) <= _INT_PIECE:
        return int(digits)
    low = len(digits) // 2
    scale: int = 10**low
    return long_int(digits[:-low]) * scale + long_int(digits[-low:])


def check_digits(token: str, text: str, pos: int, max_digits: int) -> None:
    """Refuse a number literal with more than ``max_digits`` digits.

    Digits are the literal's digits and letters (those of hex and radix
    numbers, and an exponent's ``e``), not counting a final ``N`` or ``M``;
    only a literal longer than the limit is counted.
    """
    if len(token) > max_digits:
        count = sum(map(str.isalnum, token)) - (token[-1] in "NM")
        if count > max_digits:
            raise syntax_error(
                text,
                pos,
                f"number with {count} digits: more than the reader's limit of {max_digits}"
                " (max_digits= raises it)",
            )


def read_number(token: str, text: str, pos: int, max_digits: int = MAX_DIGITS) -> Any:
    check_digits(token, text, pos, max_digits)
    try:
        return _number_form(token, text, pos)
    except EdnSyntaxError:
        raise
    except ValueError:
        # int(str) refuses more than 4300 digits: big N integers and ratios.
        m = _NUMBER_FORMS.fullmatch(token)
        if m is None or (m["int"] is None and m["numerator"] is None):
            raise syntax_error(text, pos, f"invalid number {token[:40]}") from None
        if m["int"] is not None:
            value = long_int(m["sign"] + m["int"])
            return BigInt(value) if m["int_n"] else value
        ratio = Fraction(long_int(m["sign"] + m["numerator"]), long_int(m["denominator"]))
        return ratio if ratio.denominator != 1 else BigInt(ratio.numerator)


def _number_form(token: str, text: str, pos: int) -> Any:
    m = _NUMBER_FORMS.fullmatch(token)
    if m is None or m["bad_octal"] is not None:
        raise syntax_error(text, pos, f"invalid number {token}")
    sign = -1 if m["sign"] == "-" else 1
    if m["float"] is not None:
        if m["decimal"]:
            try:
                return Decimal(m["sign"] + m["float"])
            except InvalidOperation:  # an exponent past what Decimal holds
                raise syntax_error(text, pos, f"invalid number {token[:40]}") from None
        return float(m["sign"] + m["float"])
    if m["numerator"] is not None:
        denominator = int(m["denominator"])
        if denominator == 0:
            raise syntax_error(text, pos, f"ratio with zero denominator {token}")
        ratio = Fraction(sign * int(m["numerator"]), denominator)
        if ratio.denominator != 1:
            return ratio
        # Clojure's reader turns a whole ratio (6/1, 0/5) into an integer.
        whole = ratio.numerator
        return whole if _LONG_MIN <= whole <= _LONG_MAX else BigInt(whole)
    for digits, base, big in (("int", 10, "int_n"), ("hex", 16, "hex_n"), ("octal", 8, "octal_n")):
        if m[digits] is not None:
            value = sign * int(m[digits], base)
            return BigInt(value) if m[big] else value
    radix = int(m["radix"])
    try:
        if not 2 <= radix <= 36:
            raise ValueError(radix)
        value = sign * int(m["digits"], radix)
    except ValueError:
        raise syntax_error(text, pos, f"invalid number {token}") from None
    return BigInt(value) if m["radix_n"] else value


def parse_inst(value: str) -> datetime | None:
    """Parse the text of an ``#inst`` as Clojure does; ``None`` when it is not one.

    Partial forms (``"2024"``, ``"2024-05-01T10:00"``) mean the start of that
    period, like ``clojure.instant``. A missing offset means UTC.
    """
    m = _INST.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = m.groups()
    if fraction is not None and len(fraction) > 6:
        return None
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    if sign is None:
        tz: timezone = UTC
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            return None
        tz = timezone(-offset if sign == "-" else offset) if offset else UTC
    try:
        return datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError:
        return None


def apply_tag(tag: str, value: Any, text: str, pos: int) -> Any:
    if tag == "inst":
        if type(value) is not str:
            raise syntax_error(text, pos, "#inst needs a string")
        when = parse_inst(value)
        if when is not None:
            return when
        fine = _INST.fullmatch(value)
        if fine is not None and fine.group(7) is not None and len(fine.group(7)) > 6:
            # Nanosecond timestamps: keep the text rather than round it.
            return Tagged(tag, value)
        raise syntax_error(text, pos, f"invalid #inst {value!r}")
    if tag == "uuid":
        if type(value) is not str:
            raise syntax_error(text, pos, "#uuid needs a string")
        try:
            return uuid.UUID(value)
        except ValueError:
            raise syntax_error(text, pos, f"invalid #uuid {value!r}") from None
    return Tagged(tag, value)


def check_named(text: str, body: str, pos: int, *, keyword: bool, strict: bool) -> None:
    what = "keyword" if keyword else "symbol"
    if not body or (keyword and body.startswith(":")):
        if keyword and body.startswith(":"):
            raise syntax_error(text, pos, f"auto-resolved keyword ::{body[1:]} is not EDN")
        raise syntax_error(text, pos, f"empty {what}")
    if strict:
        full = (":" if keyword else "") + body
        m = _CLOJURE_SYMBOL.fullmatch(full)
        ns = m.group(1) if m else None
        if m is None or (ns is not None and ns.endswith(":/")) or m.group(2).endswith(":"):
            raise syntax_error(text, pos, f"invalid {what} {full} (strict mode)")
