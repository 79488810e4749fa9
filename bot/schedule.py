"""Digest schedule: crontab lines read as cron reads them, always in an explicit time zone.

Kept apart from bot.digest (which needs telegram) so validating the config stays cheap.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from apscheduler.triggers.cron import CronTrigger

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_day(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    if token[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(token[:3])
    raise ValueError(f"unknown day of week {token!r}")


def crontab_days(field: str) -> str:
    """Rewrite a crontab day-of-week field (0 or 7 = Sunday) as APScheduler 3 day names.

    APScheduler 3 reads numbers Monday-first, so its own from_crontab turns "1-5" (weekdays)
    into Tuesday–Saturday (agronholm/apscheduler#286, fixed only in 4.x). Names are unambiguous;
    every range is expanded to a list because a name range cannot wrap past Sunday.
    """
    if field.strip() in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        rng, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in day of week {field!r}")
        if rng == "*":
            first, last = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            first, last = _cron_day(a), _cron_day(b)
            if b.strip() == "7":
                last = 7  # "1-7": Monday through Sunday
        else:
            first = _cron_day(rng)
            last = first if not step_text else 6
        if last < first:
            last += 7  # "5-1": Friday round to Monday, as cron reads it
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[d] for d in sorted(days))


def cron_trigger(expression: str, timezone: tzinfo) -> CronTrigger:
    """A CronTrigger for a five-field crontab line, read as cron reads it, in an explicit zone.

    A bare CronTrigger uses the machine's zone, not the scheduler's: on a UTC server "0 8 * * *"
    would fire at 16:00 in Lanzhou.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 crontab fields like '0 8 * * *', got {expression!r}")
    minute, hour, day, month, dow = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=crontab_days(dow), timezone=timezone)


def next_run(expression: str, timezone: tzinfo, now: datetime) -> datetime | None:
    """When the digest fires next after `now` (an aware datetime); what /digest and tests show."""
    return cron_trigger(expression, timezone).get_next_fire_time(None, now)
