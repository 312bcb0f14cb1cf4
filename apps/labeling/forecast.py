"""The plan's labeling forecast, from the project's own annotations.

A labeler's seconds per item are read from the annotations' timing: the gaps between one labeler's
consecutive annotations, where a gap longer than ``BREAK_SECONDS`` is a break, not work. The pace is
the items that got their first label in the last ``PACE_DAYS`` days; at that pace the rest of the
items (the plan's expected count where it is larger than today's) are labeled around ``finish``."""

import datetime as dt
import math
from statistics import median

from apps.core.stages import Forecast
from apps.datasets.models import Item

from .models import Annotation, ItemLabel, LabelChange

BREAK_SECONDS = 15 * 60
PACE_DAYS = 7
SAMPLE = 5000  # the newest annotations read for the timing


def seconds_per_item(project):
    """({username: median seconds per item}, every working gap, seconds worked in all)."""
    rows = list(
        Annotation.objects.filter(item__project=project)
        .order_by("-created_at")
        .values_list("user__username", "created_at")[:SAMPLE]
    )
    by_user = {}
    for name, at in sorted(rows, key=lambda r: (r[0] or "", r[1])):
        by_user.setdefault(name, []).append(at)
    rates, gaps = {}, []
    for name, times in by_user.items():
        mine = [
            g
            for g in ((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))
            if 0 < g <= BREAK_SECONDS
        ]
        if mine:
            rates[name] = round(median(mine), 1)
            gaps.extend(mine)
    return rates, gaps, sum(gaps)


def labeling_forecast(project, plan, now):
    total = Item.objects.filter(project=project).count()
    expected = max(total, (plan.planned_items or 0) if plan else 0)
    labeled = ItemLabel.objects.filter(item__project=project).count()
    remaining = max(expected - labeled, 0)
    rates, gaps, worked = seconds_per_item(project)
    since = now - dt.timedelta(days=PACE_DAYS)
    recent = (
        LabelChange.objects.filter(item__project=project, scope="final", old="", at__gte=since)
        .exclude(new="")
        .values("item_id")
        .distinct()
        .count()
    )
    per_day = recent / PACE_DAYS
    finish = None
    if remaining == 0 and expected:
        pace = "every item is labeled"
    elif per_day > 0:
        finish = (now + dt.timedelta(days=math.ceil(remaining / per_day))).date()
        pace = f"labeling finishes around {finish:%d %b} at the last {PACE_DAYS} days' pace ({per_day:.1f} items a day)"
    else:
        pace = f"no item was labeled in the last {PACE_DAYS} days, so no finish date"
    if not gaps:
        return Forecast(
            "labeling_hours",
            None,
            f"No labeling timed yet (two annotations by one labeler make a rate); {labeled} of {expected} labeled; {pace}.",
            unit="h",
            stage="labeling",
            finish=finish,
            rates={"per_day": per_day, "remaining": remaining},
        )
    each = median(gaps)
    hours = (worked + remaining * each) / 3600
    who = ", ".join(f"{name} {s:g} s" for name, s in sorted(rates.items()))
    basis = (
        f"{each:.0f} s per item (median over {len(rates)} labeler{'s' if len(rates) != 1 else ''}: {who}); "
        f"{worked / 3600:.1f} h spent, {remaining} of {expected} items to go; {pace}."
    )
    return Forecast(
        "labeling_hours",
        round(hours, 2),
        basis,
        unit="h",
        stage="labeling",
        finish=finish,
        rates={"seconds_per_item": rates, "per_day": per_day, "remaining": remaining},
    )
