# ruff: noqa: RUF001  # Chinese templates use full-width punctuation on purpose.
"""A small, safe template language and the built-in templates (zh-CN and en per category).

Syntax: `{{ name }}`, `{{ name|filter }}`, `{{ name|filter(arg) }}`; names may be
dotted (`recipient.display_name`). No code runs: only lookups and the filters
below. Validation at save time finds syntax errors, undeclared variables and
unknown filters, so a bad template never reaches a send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

LOCALES = ("zh-CN", "en")
TYPES = (
    "string",
    "integer",
    "decimal",
    "boolean",
    "timestamp",
    "date",
    "duration",
    "money",
    "user",
    "resource",
    "url",
    "list",
    "object",
)
# Always available to every template, whatever it declares.
CONTEXT_NAMES = frozenset({"recipient", "subject", "action_url", "due_time", "now", "tenant"})
FILTERS = frozenset({"truncate", "default", "datetime", "date", "time", "duration", "money", "upper"})
TITLE_MAX = 200
# Size limits (characters): a template as saved or previewed, and what one renders to.
SOURCE_MAX = 20_000
RENDERED_MAX = 100_000
TRUNCATE_MAX = 10_000

_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
_FILTER = re.compile(r"^([a-z_]+)(?:\((.*)\))?$", re.S)


class TemplateError(ValueError):
    """A template or its variables are invalid; `problems` holds (field, description) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {d}" for f, d in problems))
        self.problems = problems


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    required: bool = False


@dataclass(frozen=True)
class TemplateSpec:
    key: str
    locale: str
    category: str
    title: str
    body: str
    variables: tuple[Variable, ...] = ()
    built_in: bool = False


@dataclass(frozen=True)
class _Expr:
    name: str
    filters: tuple[tuple[str, str | None], ...]


@dataclass
class Rendered:
    title: str
    body: str
    warnings: list[str] = field(default_factory=list)


def _pieces(source: str) -> list[str | tuple[str]]:
    """Literal text and `{{ ... }}` contents (as 1-tuples), in order, in one left-to-right pass.

    Same matches as the regex `{{(.*?)}}` (leftmost `{{`, nearest `}}` after it), but each
    `find` starts where the previous stopped, so the scan is linear in the source: a
    regex retried at every `{{` without a closing `}}` was quadratic.
    """
    out: list[str | tuple[str]] = []
    pos = 0
    while True:
        start = source.find("{{", pos)
        end = source.find("}}", start + 2) if start >= 0 else -1
        if end < 0:
            out.append(source[pos:])
            return out
        out.append(source[pos:start])
        out.append((source[start + 2 : end],))
        pos = end + 2


def _filter_arg(where: str, name: str, arg: str | None) -> str | None:
    value = arg.strip().strip("'\"") if arg is not None else None
    if name == "truncate" and value is not None and not (value.isdigit() and 1 <= int(value) <= TRUNCATE_MAX):
        raise TemplateError([(where, f"truncate takes a length from 1 to {TRUNCATE_MAX}, not {value!r}")])
    return value


def _expr(where: str, inner: str) -> _Expr:
    parts = [p.strip() for p in inner.split("|")]
    name = parts[0]
    if not _NAME.match(name):
        raise TemplateError([(where, f"bad variable reference {name[:40]!r}")])
    filters = []
    for raw in parts[1:]:
        fm = _FILTER.match(raw)
        if fm is None or fm.group(1) not in FILTERS:
            raise TemplateError([(where, f"unknown filter {raw[:40]!r}")])
        filters.append((fm.group(1), _filter_arg(where, fm.group(1), fm.group(2))))
    return _Expr(name, tuple(filters))


def _parse(source: str, where: str) -> list[_Expr]:
    if len(source) > SOURCE_MAX:
        raise TemplateError([(where, f"at most {SOURCE_MAX} characters")])
    if source.count("{{") != source.count("}}"):
        raise TemplateError([(where, "unbalanced '{{' / '}}'")])
    if "{%" in source:
        raise TemplateError([(where, "block tags ({% ... %}) are not supported")])
    return [_expr(where, p[0]) for p in _pieces(source) if isinstance(p, tuple)]


def validate(spec: TemplateSpec) -> None:
    """Raise TemplateError listing every problem of a template about to be saved."""
    problems: list[tuple[str, str]] = []
    if spec.locale not in LOCALES:
        problems.append(("template.locale", f"must be one of {', '.join(LOCALES)}"))
    if not re.match(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", spec.key):
        problems.append(("template.template_key", "lower_snake_case with dots"))
    if not spec.title.strip():
        problems.append(("template.title", "required"))
    if not spec.body.strip():
        problems.append(("template.body", "required"))
    declared = set()
    for i, var in enumerate(spec.variables):
        if not re.match(r"^[a-z][a-z0-9_]*$", var.name):
            problems.append((f"template.variables[{i}].name", "lower_snake_case"))
        if var.type not in TYPES:
            problems.append((f"template.variables[{i}].type", "unknown type"))
        if var.name in declared:
            problems.append((f"template.variables[{i}].name", "declared twice"))
        declared.add(var.name)
    for where, source in (("template.title", spec.title), ("template.body", spec.body)):
        try:
            exprs = _parse(source, where)
        except TemplateError as exc:
            problems.extend(exc.problems)
            continue
        for expr in exprs:
            root = expr.name.split(".")[0]
            if root not in declared and root not in CONTEXT_NAMES:
                problems.append((where, f"variable {expr.name!r} is not declared"))
    if problems:
        raise TemplateError(problems)


def check_variables(spec: TemplateSpec, values: Mapping[str, Any]) -> None:
    """A send's variables against the declarations: unknown or missing required ones fail."""
    problems = []
    declared = {v.name: v for v in spec.variables}
    for name in values:
        if name not in declared:
            problems.append((f"notification.template.variables.{name}", "not declared by the template"))
    for var in spec.variables:
        value = values.get(var.name)
        if value is None:
            if var.required:
                problems.append((f"notification.template.variables.{var.name}", "required"))
            continue
        problem = _type_problem(var.type, value)
        if problem:
            problems.append((f"notification.template.variables.{var.name}", problem))
    if problems:
        raise TemplateError(problems)


def _type_problem(kind: str, value: Any) -> str | None:
    if kind in ("string", "user", "url") and not isinstance(value, str):
        return f"expected a {kind} string"
    if kind == "integer" and (
        isinstance(value, bool)
        or not (
            isinstance(value, int)
            or (isinstance(value, float) and value.is_integer())
            or (isinstance(value, str) and value.lstrip("-").isdigit())
        )
    ):
        return "expected a whole number"
    if kind == "timestamp":
        try:
            _parse_time(value)
        except (TypeError, ValueError):
            return "expected an RFC 3339 timestamp"
    if kind == "boolean" and not isinstance(value, bool):
        return "expected true or false"
    return None


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise TypeError("not a string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    return parsed


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    current: Any = values
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _apply(name: str, arg: str | None, value: Any, locale: str, tz: ZoneInfo) -> Any:
    if name == "default":
        return value if value not in (None, "") else (arg or "")
    if value is None:
        return ""
    if name == "truncate":
        limit = int(arg or 40)
        text = str(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    if name == "upper":
        return str(value).upper()
    if name in ("datetime", "date", "time"):
        when = _parse_time(value).astimezone(tz)
        return when.strftime({"datetime": "%Y-%m-%d %H:%M", "date": "%Y-%m-%d", "time": "%H:%M"}[name])
    if name == "duration":
        seconds = int(str(value).rstrip("s")) if isinstance(value, str) else int(value)
        minutes = seconds // 60
        if minutes >= 60:
            return f"{minutes // 60} 小时" if locale == "zh-CN" else f"{minutes // 60} h"
        return f"{minutes} 分钟" if locale == "zh-CN" else f"{minutes} min"
    if name == "money" and isinstance(value, Mapping):
        try:
            amount = Decimal(str(value.get("amount_minor", "0"))) / 100
        except InvalidOperation:
            return str(value)
        return f"{value.get('currency', '')} {amount:,.2f}".strip()
    return value


def render_text(source: str, values: Mapping[str, Any], *, locale: str, time_zone: str) -> str:
    """Render one text; TemplateError if it is malformed or renders past RENDERED_MAX."""
    tz = ZoneInfo(time_zone)
    if len(source) > SOURCE_MAX:
        raise TemplateError([("template", f"at most {SOURCE_MAX} characters")])

    def one(inner: str) -> str:
        expr = _expr("template", inner)
        value = _lookup(values, expr.name)
        for name, arg in expr.filters:
            try:
                value = _apply(name, arg, value, locale, tz)
            except (TypeError, ValueError, ArithmeticError):
                value = "" if value is None else str(value)  # a value the filter cannot read shows as is
        if isinstance(value, datetime):
            return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON (Struct) numbers arrive as floats: "3", not "3.0"
        return "" if value is None else str(value)

    out: list[str] = []
    size = 0
    for piece in _pieces(source):
        text = one(piece[0]) if isinstance(piece, tuple) else piece
        size += len(text)
        if size > RENDERED_MAX:
            raise TemplateError([("template", f"renders to more than {RENDERED_MAX} characters")])
        out.append(text)
    return "".join(out)


def render(spec: TemplateSpec, values: Mapping[str, Any], *, time_zone: str = "Asia/Shanghai") -> Rendered:
    warnings = []
    title = render_text(spec.title, values, locale=spec.locale, time_zone=time_zone)
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1] + "…"
        warnings.append(f"title truncated to {TITLE_MAX} characters")
    body = render_text(spec.body, values, locale=spec.locale, time_zone=time_zone)
    return Rendered(title, body, warnings)


def _v(name: str, kind: str, required: bool = False) -> Variable:
    return Variable(name, kind, required)


_LEAD = (_v("lead_name", "string", True), _v("lead_id", "string"))
_DEAL = (_v("deal_name", "string", True), _v("deal_id", "string"))
_TEXT = (_v("title", "string", True), _v("message", "string"))
# (category, variables, zh-CN title, zh-CN body, en title, en body)
_BUILT_INS: tuple[tuple[str, tuple[Variable, ...], str, str, str, str], ...] = (
    (
        "sla_reminder",
        _LEAD,
        "线索即将超时：{{ lead_name|truncate(40) }}",
        "请在 {{ due_time|datetime }} 前联系线索 **{{ lead_name }}**。",
        "Lead due soon: {{ lead_name|truncate(40) }}",
        "Contact **{{ lead_name }}** before {{ due_time|datetime }}.",
    ),
    (
        "sla_breach",
        (*_LEAD, _v("owner", "string")),
        "线索已超时：{{ lead_name|truncate(40) }}",
        "线索 **{{ lead_name }}**（负责人 {{ owner|default('未分配') }}）已于 {{ due_time|datetime }} 超时。",
        "Lead SLA breached: {{ lead_name|truncate(40) }}",
        "Lead **{{ lead_name }}** (owner {{ owner|default('unassigned') }}) breached at {{ due_time|datetime }}.",
    ),
    (
        "lead_assigned",
        _LEAD,
        "新线索：{{ lead_name|truncate(40) }}",
        "线索 **{{ lead_name }}** 已分配给你。",
        "New lead: {{ lead_name|truncate(40) }}",
        "Lead **{{ lead_name }}** was assigned to you.",
    ),
    (
        "approval_waiting",
        (*_DEAL, _v("step", "string")),
        "待审批：{{ deal_name|truncate(40) }}",
        "商机 **{{ deal_name }}** 的审批 {{ step|default('') }} 正在等待你处理。",
        "Approval waiting: {{ deal_name|truncate(40) }}",
        "The approval {{ step|default('') }} of **{{ deal_name }}** is waiting for you.",
    ),
    (
        "approval_decided",
        (*_DEAL, _v("decision", "string", True)),
        "审批结果：{{ deal_name|truncate(40) }}",
        "商机 **{{ deal_name }}** 的审批结果：{{ decision }}。",
        "Approval decided: {{ deal_name|truncate(40) }}",
        "The approval of **{{ deal_name }}**: {{ decision }}.",
    ),
    (
        "dwell_alert",
        (*_DEAL, _v("stage", "string"), _v("days", "integer")),
        "商机停留过久：{{ deal_name|truncate(40) }}",
        "商机 **{{ deal_name }}** 已在阶段 {{ stage|default('') }} 停留 {{ days|default('') }} 天。",
        "Deal stuck: {{ deal_name|truncate(40) }}",
        "Deal **{{ deal_name }}** has been in stage {{ stage|default('') }} for {{ days|default('') }} days.",
    ),
    (
        "frozen_deal",
        _DEAL,
        "商机已冻结：{{ deal_name|truncate(40) }}",
        "商机 **{{ deal_name }}** 因未按周更新已被冻结。",
        "Deal frozen: {{ deal_name|truncate(40) }}",
        "Deal **{{ deal_name }}** was frozen: no weekly update.",
    ),
    (
        "feedback_due",
        (_v("card_title", "string", True),),
        "待反馈：{{ card_title|truncate(40) }}",
        "请对 SOP 卡片 **{{ card_title }}** 提交反馈。",
        "Feedback due: {{ card_title|truncate(40) }}",
        "Please give feedback on SOP card **{{ card_title }}**.",
    ),
    (
        "anomaly",
        _TEXT,
        "异常：{{ title|truncate(60) }}",
        "{{ message|default('') }}",
        "Anomaly: {{ title|truncate(60) }}",
        "{{ message|default('') }}",
    ),
    (
        "sync_lag",
        _TEXT,
        "数据同步延迟：{{ title|truncate(60) }}",
        "{{ message|default('') }}",
        "Data sync lagging: {{ title|truncate(60) }}",
        "{{ message|default('') }}",
    ),
    (
        "digest",
        (_v("due_today", "integer"), _v("breached", "integer"), _v("approvals", "integer")),
        "今日摘要",
        "今日到期 {{ due_today|default(0) }} 项，已超时 {{ breached|default(0) }} 项，"
        "待审批 {{ approvals|default(0) }} 项。",
        "Your daily digest",
        "Due today: {{ due_today|default(0) }}; breached: {{ breached|default(0) }}; "
        "approvals waiting: {{ approvals|default(0) }}.",
    ),
    (
        "summary",
        (_v("count", "integer", True), _v("detail", "string")),
        "还有 {{ count }} 条通知",
        "{{ detail|default('') }}",
        "{{ count }} more notifications",
        "{{ detail|default('') }}",
    ),
    (
        "system",
        _TEXT,
        "{{ title|truncate(100) }}",
        "{{ message|default('') }}",
        "{{ title|truncate(100) }}",
        "{{ message|default('') }}",
    ),
)


def built_in_templates() -> list[TemplateSpec]:
    specs = []
    for category, variables, zh_title, zh_body, en_title, en_body in _BUILT_INS:
        specs.append(TemplateSpec(category, "zh-CN", category, zh_title, zh_body, variables, True))
        specs.append(TemplateSpec(category, "en", category, en_title, en_body, variables, True))
    return specs


BUILT_INS: dict[tuple[str, str], TemplateSpec] = {(t.key, t.locale): t for t in built_in_templates()}


def context(
    variables: Mapping[str, Any],
    *,
    recipient_name: str,
    due_time: datetime | None,
    now: datetime,
    action_url: str = "",
    subject: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The values a template sees: the sender's variables plus the always-available names."""
    values = dict(variables)
    values.setdefault("recipient", {"display_name": recipient_name})
    values.setdefault("due_time", due_time)
    values.setdefault("now", now)
    values.setdefault("action_url", action_url)
    values.setdefault("subject", dict(subject or {}))
    values.setdefault("tenant", {"display_name": ""})
    return values


ZERO = timedelta(0)
