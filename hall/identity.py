"""Resident ID numbers (居民身份证号码, GB 11643-1999) entered at a kiosk: checked, read for the
birth date, and turned into a keyed hash. The number itself is never stored, logged or echoed:
a hall keeps only ``person_hash`` (HMAC-SHA256 under a key of its own deployment), which lets it
hold one live ticket per person and category without being able to list whose they were.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

from hall.domain.errors import InvalidInput

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class InvalidIdNumber(InvalidInput):
    code = "invalid_id_number"


def birth_date(number: str, today: date) -> date:
    """The birth date of a valid 18-character ID number; InvalidIdNumber (which never repeats
    the number) when its shape, its birth date or its check character is wrong."""
    number = number.strip().upper()
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        raise InvalidIdNumber("an ID number has 17 digits and a check digit or X (18 in all)")
    if number[17] not in "0123456789X":
        raise InvalidIdNumber("the last character of an ID number is a digit or X")
    total = sum(int(digit) * weight for digit, weight in zip(number, _WEIGHTS, strict=False))
    if _CHECK[total % 11] != number[17]:
        raise InvalidIdNumber("that ID number's check digit is wrong: please check the number")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber("that ID number holds no valid birth date") from None
    if born.year < 1890 or born > today:
        raise InvalidIdNumber("that ID number holds no valid birth date")
    return born


def age_on(born: date, day: date) -> int:
    """Whole years from ``born`` to ``day`` (a 29 February birthday counts on 1 March)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def person_hash(key: bytes, number: str) -> str:
    """The keyed hash a hall keeps instead of an ID number: 128 bits, hex."""
    digest = hmac.new(key, number.strip().upper().encode(), hashlib.sha256).hexdigest()
    return digest[:32]
