"""HTTP dates (RFC 9110 5.6.7): Last-Modified for heuristic freshness, Retry-After."""

from __future__ import annotations

import re

# RFC 9110 5.6.7 IMF-fixdate, the form servers must send: "Sun, 06 Nov 1994 08:49:37 GMT".
_IMF_FIXDATE = re.compile(r"[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT")
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def http_date(text: str) -> float:
    """Seconds since the epoch of an HTTP date; ValueError when it is not one.

    IMF-fixdate is read here (email.utils, which also reads the two obsolete forms, costs
    ~6 ms of imports on every warm run); the obsolete forms go to email.utils.
    """
    m = _IMF_FIXDATE.fullmatch(text.strip())
    if m is None:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(text).timestamp()
    day, mon, year, hour, minute, second = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None or not 1 <= int(day) <= 31 or int(hour) > 23 or int(minute) > 59 \
            or int(second) > 60:
        raise ValueError(f"not an HTTP date: {text!r}")
    return _days_from_civil(int(year), month, int(day)) * 86400.0 + \
        int(hour) * 3600 + int(minute) * 60 + int(second)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to the proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
