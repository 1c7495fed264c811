"""Pure rules of notify: quiet hours, criticality, recipient resolution, templates."""

# ruff: noqa: RUF001  # Chinese built-ins use full-width punctuation.
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from services.notify.domain import categories
from services.notify.domain.quiet_hours import QuietWindow, hold_until
from services.notify.domain.recipients import Member, escalation_targets, holders, managers
from services.notify.domain.templates import (
    BUILT_INS,
    LOCALES,
    TemplateError,
    TemplateSpec,
    Variable,
    built_in_templates,
    check_variables,
    context,
    render,
    validate,
)

NIGHT = QuietWindow(time(21, 0), time(8, 0))


@pytest.mark.parametrize(
    ("utc", "zone", "expected"),
    [
        # 22:30 in Shanghai (UTC+8) -> held until 08:00 local the next day = 00:00 UTC.
        (datetime(2026, 3, 2, 14, 30, tzinfo=UTC), "Asia/Shanghai", datetime(2026, 3, 3, 0, 0, tzinfo=UTC)),
        # 02:00 local, after midnight, still in the window that started the evening before.
        (datetime(2026, 3, 2, 18, 0, tzinfo=UTC), "Asia/Shanghai", datetime(2026, 3, 3, 0, 0, tzinfo=UTC)),
        # 08:00 local sharp: the window is over.
        (datetime(2026, 3, 3, 0, 0, tzinfo=UTC), "Asia/Shanghai", None),
        # 20:59 local: not yet.
        (datetime(2026, 3, 2, 12, 59, tzinfo=UTC), "Asia/Shanghai", None),
        # The same instant is daytime in Berlin (15:30 CET) but night in Shanghai.
        (datetime(2026, 3, 2, 14, 30, tzinfo=UTC), "Europe/Berlin", None),
        # 23:00 in New York (UTC-5) -> 08:00 local = 13:00 UTC.
        (datetime(2026, 3, 3, 4, 0, tzinfo=UTC), "America/New_York", datetime(2026, 3, 3, 13, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_across_midnight_and_time_zones(
    utc: datetime, zone: str, expected: datetime | None
) -> None:
    assert hold_until(utc, NIGHT, zone, critical=False) == expected


def test_critical_deliveries_ignore_quiet_hours() -> None:
    night = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 23:00 Shanghai
    assert hold_until(night, NIGHT, "Asia/Shanghai", critical=False) is not None
    assert hold_until(night, NIGHT, "Asia/Shanghai", critical=True) is None
    assert categories.is_critical("sla_breach", categories.NORMAL)
    assert categories.is_critical("sla_reminder", categories.LOW)
    assert categories.is_critical("dwell_alert", categories.CRITICAL)
    assert not categories.is_critical("dwell_alert", categories.HIGH)
    # A tenant may turn a category's criticality on or off.
    assert not categories.is_critical("sla_reminder", categories.NORMAL, {"sla_reminder": False})
    assert categories.is_critical("anomaly", categories.NORMAL, {"anomaly": True})


def test_quiet_window_on_selected_start_days_only() -> None:
    weekend_nights = QuietWindow(time(20, 0), time(9, 0), frozenset({4, 5}))  # Fri and Sat evenings
    friday_late = datetime(2026, 3, 6, 14, 0, tzinfo=UTC)  # Fri 22:00 Shanghai
    sunday_early = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)  # Sun 07:00, in the window started Saturday
    monday_late = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # Mon 22:00
    assert hold_until(friday_late, weekend_nights, "Asia/Shanghai", critical=False) == datetime(
        2026, 3, 7, 1, 0, tzinfo=UTC
    )
    assert hold_until(sunday_early, weekend_nights, "Asia/Shanghai", critical=False) is not None
    assert hold_until(monday_late, weekend_nights, "Asia/Shanghai", critical=False) is None


def test_same_day_window_and_dst_change() -> None:
    lunch = QuietWindow(time(12, 0), time(13, 30))
    assert hold_until(
        datetime(2026, 3, 2, 4, 15, tzinfo=UTC), lunch, "Asia/Shanghai", critical=False
    ) == datetime(2026, 3, 2, 5, 30, tzinfo=UTC)
    # Berlin springs forward on 2026-03-29: 21:00 CET = 20:00 UTC, end 08:00 CEST = 06:00 UTC.
    held = hold_until(datetime(2026, 3, 28, 21, 0, tzinfo=UTC), NIGHT, "Europe/Berlin", critical=False)
    assert held == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        QuietWindow(time(8, 0), time(8, 0))
    with pytest.raises(ValueError):
        hold_until(datetime(2026, 3, 2, 12, 0), NIGHT, "Asia/Shanghai", critical=False)


ORG = [
    Member("director-east", "east", frozenset({"director"})),
    Member("sup-a", "east/team-a", frozenset({"supervisor"})),
    Member("sup-a2", "east/team-a", frozenset({"supervisor"}), active=False),
    Member("rep-a1", "east/team-a", frozenset({"rep"})),
    Member("rep-a2", "east/team-a", frozenset({"rep"})),
    Member("rep-b1", "east/team-b", frozenset({"rep"})),
    Member("rep-x", "eastern", frozenset({"rep"})),
]


def test_role_holders_in_a_unit_and_below() -> None:
    assert holders(ORG, "rep", "east/team-a") == ["rep-a1", "rep-a2"]
    assert holders(ORG, "rep", "east") == []
    assert holders(ORG, "rep", "east", descendants=True) == ["rep-a1", "rep-a2", "rep-b1"]  # not "eastern"
    assert holders(ORG, "supervisor", "east/team-a") == ["sup-a"]  # inactive skipped


def test_managers_walk_up_the_tree_to_the_nearest_holder() -> None:
    assert managers(ORG, "rep-a1", "supervisor") == ["sup-a"]
    assert managers(ORG, "rep-b1", "supervisor") == []  # team-b has none, nor does east
    assert managers(ORG, "rep-b1", "director") == ["director-east"]
    assert managers(ORG, "sup-a", "supervisor") == []  # never the user themself
    assert managers(ORG, "nobody", "supervisor") == []
    assert escalation_targets(ORG, ["rep-a1", "rep-a2", "rep-b1"], "director") == ["director-east"]


def test_every_category_ships_valid_zh_cn_and_en_templates() -> None:
    keys = {t.key for t in built_in_templates()}
    assert keys == set(categories.POLICIES)
    for key in keys:
        for locale in LOCALES:
            validate(BUILT_INS[(key, locale)])


def test_validation_reports_every_problem() -> None:
    bad = TemplateSpec(
        "Bad Key",
        "fr",
        "system",
        "{{ title }",
        "{{ secret }} {{ title|shout }}",
        (Variable("title", "string"),),
    )
    with pytest.raises(TemplateError) as err:
        validate(bad)
    fields = [f for f, _ in err.value.problems]
    assert "template.locale" in fields and "template.template_key" in fields
    assert "template.title" in fields and "template.body" in fields
    text = str(err.value)
    assert "unbalanced" in text and "shout" in text
    undeclared = TemplateSpec("ok", "en", "system", "Hi", "{{ secret }}", ())
    with pytest.raises(TemplateError, match="secret"):
        validate(undeclared)
    with pytest.raises(TemplateError, match="block tags"):
        validate(TemplateSpec("ok", "en", "system", "Hi", "{% if x %}x{% endif %}", ()))


def test_variables_are_checked_against_declarations() -> None:
    spec = BUILT_INS[("dwell_alert", "en")]
    check_variables(spec, {"deal_name": "Big deal", "days": 12})
    with pytest.raises(TemplateError, match="deal_name"):
        check_variables(spec, {"days": 3})
    with pytest.raises(TemplateError, match="whole number"):
        check_variables(spec, {"deal_name": "x", "days": "many"})
    with pytest.raises(TemplateError, match="not declared"):
        check_variables(spec, {"deal_name": "x", "extra": 1})


def test_render_formats_times_in_the_recipients_zone_and_truncates() -> None:
    due = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    values = context(
        {"lead_name": "A" * 60}, recipient_name="Rep", due_time=due, now=due - timedelta(hours=1)
    )
    zh = render(BUILT_INS[("sla_reminder", "zh-CN")], values, time_zone="Asia/Shanghai")
    assert zh.title == "线索即将超时：" + "A" * 39 + "…"
    assert "2026-03-02 14:30" in zh.body
    en = render(BUILT_INS[("sla_reminder", "en")], values, time_zone="Europe/Berlin")
    assert "2026-03-02 07:30" in en.body
    breach = render(
        BUILT_INS[("sla_breach", "zh-CN")],
        context({"lead_name": "x"}, recipient_name="r", due_time=due, now=due),
    )
    assert "未分配" in breach.body  # default filter


def test_rate_limit_is_only_ever_stricter_and_never_folds_critical() -> None:
    from services.notify.domain import rate_limit as rl

    tenant = rl.Limit(5, timedelta(minutes=10))
    assert rl.effective(tenant, 0, None) == tenant
    assert rl.effective(tenant, 3, timedelta(minutes=30)) == rl.Limit(3, timedelta(minutes=30))
    assert rl.effective(tenant, 50, timedelta(minutes=1)) == tenant  # looser asks are ignored
    assert rl.effective(rl.Limit(0), 4, None).max_deliveries == 4
    assert not rl.must_fold(tenant, 4, critical=False)
    assert rl.must_fold(tenant, 5, critical=False)
    assert not rl.must_fold(tenant, 50, critical=True)
    assert not rl.must_fold(rl.Limit(0), 50, critical=False)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert rl.summary_due(start, tenant) == start + timedelta(minutes=10)
    assert (
        rl.summary_detail({"dwell_alert": 3, "sla_reminder": 4}, "en") == "4 x sla_reminder, 3 x dwell_alert"
    )
