"""installer.httpdate.http_date against the stdlib (email.utils) as the oracle."""

from __future__ import annotations

import random
from email.utils import formatdate, parsedate_to_datetime

import pytest

from installer.httpdate import http_date


def test_imf_fixdate_matches_email_utils() -> None:
    rng = random.Random(7)
    stamps = [0, 68_256_000, 951_782_400, 951_868_800, 1_709_251_199, 4_107_542_400,
              *(rng.randrange(0, 4_000_000_000) for _ in range(500))]
    for stamp in stamps:  # leap days, century years and 2000 included above
        text = formatdate(stamp, usegmt=True)
        assert http_date(text) == stamp == parsedate_to_datetime(text).timestamp(), text


@pytest.mark.parametrize("text", ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"])
def test_obsolete_forms_still_read(text: str) -> None:
    assert http_date(text) == 784111777.0


@pytest.mark.parametrize("text", ["", "yesterday", "Sun, 06 Foo 1994 08:49:37 GMT",
                                  "Sun, 06 Nov 1994 25:49:37 GMT"])
def test_not_a_date(text: str) -> None:
    with pytest.raises((ValueError, TypeError, IndexError)):
        http_date(text)
