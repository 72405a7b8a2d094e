"""Retention durations such as ``7y``, ``6m``, ``90d``, ``2w`` or ``1y6m``.

Years and months are calendar units, not fixed day counts: seven years after 2020-02-29 is
2027-02-28 (the day is clamped to the end of a shorter month), which is what a records
schedule means by "seven years". Because of that, two durations only compare for a given
start time; :meth:`Duration.after` is the one operation the rule engine needs.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

# Longer periods than this are almost certainly typos, and datetime cannot represent
# many millennia anyway.
MAX_YEARS = 1000

_PART = re.compile(r"([0-9]+)\s*([ymwd])", re.IGNORECASE | re.ASCII)
_WHOLE = re.compile(r"\s*(?:[0-9]+\s*[ymwd]\s*)+", re.IGNORECASE | re.ASCII)


class DurationError(ValueError):
    pass


@dataclass(frozen=True)
class Duration:
    years: int = 0
    months: int = 0
    days: int = 0

    def __str__(self) -> str:
        parts = [(self.years, "y"), (self.months, "m"), (self.days, "d")]
        text = "".join(f"{n}{unit}" for n, unit in parts if n)
        return text or "0d"

    def after(self, start: datetime) -> datetime:
        """The moment this long after ``start`` (calendar arithmetic, day clamped)."""
        month_index = start.month - 1 + self.months + 12 * self.years
        year = start.year + month_index // 12
        month = month_index % 12 + 1
        try:
            day = min(start.day, calendar.monthrange(year, month)[1])
            return start.replace(year=year, month=month, day=day) + timedelta(days=self.days)
        except (ValueError, OverflowError):
            # Beyond year 9999: for retention that is "forever", which is what we return.
            return datetime.max.replace(tzinfo=start.tzinfo)


def parse_duration(text: str) -> Duration:
    """``<number><unit>`` groups, units y(ears), m(onths), w(eeks), d(ays); e.g. ``1y6m``."""
    if not isinstance(text, str):
        raise DurationError(f'duration must be a string like "7y" or "90d", not {text!r}')
    if not _WHOLE.fullmatch(text):
        raise DurationError(
            f'not a duration: {text!r} (use a number and a unit y/m/w/d, e.g. "7y", "90d", "1y6m")'
        )
    totals = {"y": 0, "m": 0, "w": 0, "d": 0}
    for number, unit in _PART.findall(text):
        if len(number.lstrip("0")) > 9:
            raise DurationError(f"duration {text!r} is longer than {MAX_YEARS} years")
        totals[unit.lower()] += int(number)
    years = totals["y"] + totals["m"] // 12
    months = totals["m"] % 12
    days = totals["d"] + 7 * totals["w"]
    if (years * 12 + months) * 31 + days > MAX_YEARS * 12 * 31:
        raise DurationError(f"duration {text!r} is longer than {MAX_YEARS} years")
    return Duration(years, months, days)
