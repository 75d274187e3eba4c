"""The district's configuration: YAML in config/, validated with pydantic on load.

    config/body.yaml                 the issuing body, its place name, offices, the person to ask
    config/units.yaml                the reporting units and how to reach them
    config/schedule.yaml             opening day, deadlines, reminder policy
    config/reports/<id>.yaml         a report definition (indicators, rules, text, recipients)
    config/plans/<id>/<year>.yaml    the year's plan figures (KH giao), indicator code: number
    config/facts/<id>/<period>.yaml  the period's facts its texts cite (`d.<key>`): the numbers
                                     and dates of documents, inspection rounds

Any mistake stops the load with one message naming the file, the key and the problem.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import yaml
from jinja2 import Environment, TemplateSyntaxError, nodes
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    model_validator,
)

CODE = r"^[A-Za-z0-9_-]+$"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: ×2


class ConfigError(Exception):
    """A configuration mistake, with the file and key in the message."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Model):
    """One channel: an Apprise URL (`tgram://`, `zalo://`, ...) or an e-mail address.

    An `email` is sent through the mail server of `BAOCAO_MAIL_URL`, so server and password
    stay out of config/. `${VAR}` in a URL is replaced from the environment when sending.
    """

    url: str | None = None
    email: str | None = None
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_channel(self) -> Contact:
        if bool(self.url) == bool(self.email):
            raise ValueError("give exactly one of `url` (an Apprise URL) or `email`")
        if self.email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", self.email):
            raise ValueError(f"'{self.email}' is not an e-mail address")
        if self.url and "://" not in self.url:
            raise ValueError(f"'{self.url}' is not an Apprise URL (scheme://...)")
        return self

    @property
    def stored(self) -> str:
        """How the outbox keeps it: the URL as configured (`${VAR}` unresolved) or `email:ADDR`,
        so no password from the environment is ever written to the database."""
        return self.url or f"email:{self.email}"

    @classmethod
    def from_stored(cls, text: str) -> Contact:
        return cls(email=text[6:]) if text.startswith("email:") else cls(url=text)

    def apprise_url(self, mail_url: str) -> str:
        if self.email:
            sep = "&" if "?" in mail_url else "?"
            return f"{mail_url}{sep}to={quote(self.email, safe='@')}"
        return re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), self.url or "")

    @property
    def label(self) -> str:
        return self.email or (self.url or "").split("?")[0]


class Person(_Model):
    name: str
    title: str
    contacts: tuple[Contact, ...] = ()


class ContactPerson(_Model):
    """The person a unit asks about a message (name, phone, e-mail): every message ends with
    them. `body.yaml: contact_person`, overridden per report by the report's own."""

    name: str = Field(min_length=2)
    title: str = ""  # "Chuyên viên Phòng Nội vụ"
    phone: str
    email: str

    @model_validator(mode="after")
    def _check(self) -> ContactPerson:
        digits = re.sub(r"\D", "", self.phone)
        if not re.fullmatch(r"[+0-9 ().-]+", self.phone) or not 8 <= len(digits) <= 15:
            raise ValueError(
                f"'{self.phone}' không phải số điện thoại (8-15 chữ số) / is not a phone number"
            )
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", self.email):
            raise ValueError(f"'{self.email}' không phải địa chỉ thư / is not an e-mail address")
        return self


Language = Literal["vi", "en"]


class Unit(_Model):
    code: str = Field(pattern=CODE)
    name: str
    kind: Literal["department", "desk", "commune", "other"] = "department"
    groups: tuple[str, ...] = ()
    head: Person | None = None
    contacts: tuple[Contact, ...] = Field(min_length=1)


class Body(_Model):
    """The issuing body (cơ quan ban hành) as the header of its documents prints it."""

    name_lines: tuple[str, ...] = Field(min_length=1)  # ["ỦY BAN NHÂN DÂN", "HUYỆN SƠN TÂY"]
    short_name: str  # "UBND huyện Sơn Tây"
    place: str  # "Sơn Tây" as in "Sơn Tây, ngày 05 tháng 4 năm 2022"
    symbol: str = "UBND"  # Số: .../BC-UBND
    sender_name: str = "baocao"
    sender_email: str = "baocao@localhost"  # the From address the demo's mail server shows
    motto: tuple[str, str] = ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc")
    submit_hint: str = "Gửi lại biểu mẫu đã điền qua thư điện tử này hoặc nộp tại Văn phòng."
    offices: dict[str, Person] = {}  # e.g. chairman_office, used by escalation
    contact_person: ContactPerson  # named at the foot of every message
    # Languages of the messages: Vietnamese, then English only when asked for ([vi, en]).
    languages: tuple[Language, ...] = ("vi",)

    @model_validator(mode="after")
    def _vietnamese_first(self) -> Body:
        if not self.languages or self.languages[0] != "vi":
            raise ValueError("languages: Vietnamese comes first (`[vi]` or `[vi, en]`)")
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("languages: a language appears twice")
        return self


class Indicator(_Model):
    code: str = Field(pattern=CODE)
    label: str
    unit: str = ""
    type: Literal["integer", "decimal", "percent", "date", "text"] = "integer"
    owners: tuple[str, ...] = Field(min_length=1)  # unit codes or "@group"
    aggregate: Literal["single", "sum"] = "single"
    required: bool = True
    min: float | None = 0
    max: float | None = None
    decimals: int = 0
    pad: int = 0
    default: str | None = None  # standing text for a `text` indicator a unit may leave empty
    help: str = ""

    @model_validator(mode="after")
    def _check(self) -> Indicator:
        if self.type == "percent" and self.max is None:
            object.__setattr__(self, "max", 100.0)
        if self.aggregate == "sum" and self.type not in ("integer", "decimal"):
            raise ValueError(f"indicator {self.code}: only numbers can be summed across units")
        return self


class SumRule(_Model):
    """total = sum(parts), per unit: "145 = 130 + 15"."""

    id: str = Field(pattern=CODE)
    total: str
    parts: tuple[str, ...] = Field(min_length=1)
    tolerance: float = 0.0005
    severity: Literal["error", "warning"] = "error"


class NotAboveRule(_Model):
    """part <= whole, per unit: disbursed capital cannot exceed the capital."""

    id: str = Field(pattern=CODE)
    part: str
    whole: str
    severity: Literal["error", "warning"] = "error"


class Derived(_Model):
    """A percentage: numerator / denominator * 100, one decimal, rounded half up.

    `denominator` is an indicator code or `plan:<code>` (a plan figure of the year)."""

    code: str = Field(pattern=CODE)
    label: str
    numerator: str
    denominator: str
    decimals: int = 1
    plausible_max: float = 100.0


class Fact(_Model):
    """A fact the texts cite that changes each period (`{{ d.cv_tinh }}`): the clerk writes
    its value in config/facts/<report>/<period>.yaml, never in the standing text."""

    key: str = Field(pattern=CODE)
    label: str  # what the clerk writes: "Văn bản của UBND tỉnh về chế độ báo cáo CCHC"
    example: str = ""  # "Công văn số 900/UBND-TTHC ngày 03/3/2022"


class Section(_Model):
    heading: str
    level: Literal[1, 2] = 1
    paragraphs: tuple[str, ...] = ()


class Recipient(_Model):
    """A line of Nơi nhận; `notify` ones get the report through their contacts."""

    label: str
    contacts: tuple[Contact, ...] = ()


class Layout(_Model):
    margin_top_mm: float = Field(20, ge=20, le=25)
    margin_bottom_mm: float = Field(20, ge=20, le=25)
    margin_left_mm: float = Field(30, ge=30, le=35)
    margin_right_mm: float = Field(15, ge=15, le=20)
    font_name: str = "Times New Roman"
    font_size_pt: float = Field(14, ge=13, le=14)


class Signer(_Model):
    authority: str
    title: str
    name: str


class Approver(_Model):
    """Someone who may approve the report: a decision counts only with the one-time code
    sent to these contacts, so knowing the Prefect API is not enough."""

    key: str = Field(pattern=CODE)  # what the approver types: `baocao approve --by KEY`
    name: str  # recorded with the decision
    title: str = ""
    contacts: tuple[Contact, ...] = Field(min_length=1)


class Approval(_Model):
    """Who may approve (`schedule.yaml: approval_required` turns approval on)."""

    approvers: tuple[Approver, ...] = ()
    max_tries: int = Field(3, ge=1, le=10)  # wrong codes per code before it is void
    code_digits: int = Field(6, ge=6, le=8)
    # the mail is a courtesy copy, not the official report: it may go without a Số
    courtesy_copy: bool = False

    @model_validator(mode="after")
    def _unique_keys(self) -> Approval:
        keys = [a.key for a in self.approvers]
        if dup := sorted({k for k in keys if keys.count(k) > 1}):
            raise ValueError(f"approver key '{dup[0]}' appears twice")
        return self

    def approver(self, key: str) -> Approver | None:
        return next((a for a in self.approvers if a.key == key), None)


class Reminders(_Model):
    """Who is reminded when, in working days around the units' deadline. The steps and the
    escalation are the district's decision: no default stands in for a missing key."""

    working_days_before: tuple[PositiveInt, ...]  # e.g. [7, 3, 1]; [] for none before
    on_the_day: bool = True
    overdue_every_working_days: int = Field(ge=1)
    escalate_after_working_days: int = Field(ge=0)
    escalate_to: tuple[str, ...]  # `head` and/or offices of body.yaml
    hour: int = Field(8, ge=0, le=23)


class Schedule(_Model):
    """When a period opens and when things are due, in working days around the cut-off.

    Deadlines are the district's (and its province's) decision: every one is required, none
    may be negative, and a period opens at least one working day before its cut-off."""

    open_working_days_before_cutoff: int = Field(ge=1)
    unit_deadline_working_days_after_cutoff: int = Field(ge=0)
    report_deadline_working_days_after_cutoff: int = Field(ge=0)
    province_report_day: int = Field(ge=1, le=28)  # MoHA: provinces by the 20th of the last month
    open_hour: int = Field(8, ge=0, le=23)
    reminders: Reminders
    approval_required: bool = False
    approval_timeout_hours: float = Field(72, gt=0)


class ReportDef(_Model):
    id: str = Field(pattern=CODE)
    name: str
    period_kind: Literal["M", "Q", "H", "9M", "Y"] = "Q"  # see baocao/periods.py
    symbol: str = "BC-UBND"
    title: str  # Jinja: "Kết quả ... {{ period.label }} ..."
    preamble: str = ""
    indicators: tuple[Indicator, ...] = Field(min_length=1)
    sum_rules: tuple[SumRule, ...] = ()
    not_above_rules: tuple[NotAboveRule, ...] = ()
    derived: tuple[Derived, ...] = ()
    facts: tuple[Fact, ...] = ()  # what each period's facts file holds (`d.<key>`)
    sections: tuple[Section, ...] = Field(min_length=1)
    footnotes: dict[int, str] = {}
    closing: str = ""
    recipients: tuple[Recipient, ...] = Field(min_length=1)
    signer: Signer
    layout: Layout = Layout()
    approval: Approval = Approval()
    contact_person: ContactPerson | None = None  # this report's own, instead of body.yaml's
    # its own dates: schedule.yaml's, with the keys the report's `schedule:` sets instead
    schedule: Schedule | None = None

    @property
    def indicator_map(self) -> dict[str, Indicator]:
        return {i.code: i for i in self.indicators}


class Config(_Model):
    root: Path
    body: Body
    units: tuple[Unit, ...]
    schedule: Schedule
    reports: dict[str, ReportDef]
    plans: dict[str, dict[int, dict[str, float]]] = {}  # report id -> year -> code -> figure

    _unit_map: dict[str, Unit] = PrivateAttr(default_factory=dict)
    _groups: dict[str, list[str]] = PrivateAttr(default_factory=dict)
    _owned: dict[tuple[str, str], list[Indicator]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context) -> None:
        """Indexes built once: a province has thousands of units, asked for per submission."""
        self._unit_map = {u.code: u for u in self.units}
        for u in self.units:
            for g in u.groups:
                self._groups.setdefault(g, []).append(u.code)
        for report in self.reports.values():
            for ind in report.indicators:
                for code in self.resolve_owners(ind.owners):
                    self._owned.setdefault((report.id, code), []).append(ind)

    @property
    def unit_map(self) -> dict[str, Unit]:
        return self._unit_map

    def report(self, report_id: str | None = None) -> ReportDef:
        if report_id is None:
            if len(self.reports) != 1:
                raise ConfigError(
                    f"cấu hình có {len(self.reports)} báo cáo, hãy chọn một (--report, tham số "
                    f"report): {', '.join(sorted(self.reports))} / several reports: name one"
                )
            return next(iter(self.reports.values()))
        try:
            return self.reports[report_id]
        except KeyError:
            raise ConfigError(
                f"không có báo cáo '{report_id}' trong {self.root}/reports; có: "
                f"{', '.join(sorted(self.reports))} / no such report"
            ) from None

    def plan(self, report_id: str, year: int) -> dict[str, float]:
        """The year's plan figures of a report (config/plans/<id>/<year>.yaml), {} without."""
        return self.plans.get(report_id, {}).get(year, {})

    def contact_for(self, report: ReportDef | None = None) -> ContactPerson:
        """Whom a message about `report` names to ask: the report's person, else body.yaml's."""
        return (report.contact_person if report else None) or self.body.contact_person

    def resolve_owners(self, owners: tuple[str, ...]) -> list[str]:
        """Unit codes of `owners`, where "@group" stands for every unit of the group."""
        codes: list[str] = []
        for o in owners:
            codes += self._groups.get(o[1:], []) if o.startswith("@") else [o]
        return codes

    def expected_units(self, report: ReportDef) -> list[str]:
        """Units that own at least one indicator of the report, in config order."""
        return [u.code for u in self.units if (report.id, u.code) in self._owned]

    def indicators_of(self, report: ReportDef, unit_code: str) -> list[Indicator]:
        """The indicators a unit fills in, in the definition's order."""
        return list(self._owned.get((report.id, unit_code), []))


class _Units(_Model):
    units: tuple[Unit, ...] = Field(min_length=1)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file missing; every config folder needs it") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top")
    return data


def _parse(model: type[BaseModel], path: Path, data: dict, prefix: str = ""):
    """`data` as a `model`; a mistake names `path` and the key (under `prefix`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = prefix + (".".join(str(p) for p in err["loc"]) or "(top)")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{path}: key `{key}`: {_message(err)}{more}") from None


_VI = {  # Vietnamese first for the mistakes people make most in YAML
    "missing": "bắt buộc / required",
    "extra_forbidden": "không có khóa này / unknown key",
    "greater_than_equal": "phải ≥ {ge} / must be at least {ge}",
    "greater_than": "phải > {gt} / must be greater than {gt}",
    "less_than_equal": "phải ≤ {le} / must be at most {le}",
    "less_than": "phải < {lt} / must be less than {lt}",
    "int_parsing": "phải là số nguyên / must be a whole number",
    "int_from_float": "phải là số nguyên / must be a whole number",
}


def _message(err: dict) -> str:
    text = _VI.get(err["type"])
    if text is None:
        return err["msg"]
    try:
        text = text.format(**(err.get("ctx") or {}))
    except (KeyError, IndexError):
        return err["msg"]
    if "input" in err and err["type"] != "missing":
        text += f" (có / got {err['input']!r})"
    return text


def _check_report(cfg_units: dict[str, Unit], report: ReportDef, path: Path) -> None:
    groups = {g for u in cfg_units.values() for g in u.groups}
    codes = report.indicator_map
    if len(codes) != len(report.indicators):
        raise ConfigError(f"{path}: key `indicators`: an indicator code appears twice")
    for i in report.indicators:
        for o in i.owners:
            if (o.startswith("@") and o[1:] not in groups) or (
                not o.startswith("@") and o not in cfg_units
            ):
                raise ConfigError(
                    f"{path}: indicator {i.code} key `owners`: unknown unit or group '{o}'"
                )
        if i.aggregate == "single" and (len(i.owners) > 1 or i.owners[0].startswith("@")):
            raise ConfigError(f"{path}: indicator {i.code}: several owners need `aggregate: sum`")
    for r in report.sum_rules:
        for ref in (r.total, *r.parts):
            if ref not in codes:
                raise ConfigError(f"{path}: sum_rules {r.id}: unknown indicator '{ref}'")
    for r in report.not_above_rules:
        for ref in (r.part, r.whole):
            if ref not in codes:
                raise ConfigError(f"{path}: not_above_rules {r.id}: unknown indicator '{ref}'")
    for d in report.derived:
        if d.code in codes:
            raise ConfigError(f"{path}: derived {d.code}: the code is already an indicator")
        for ref in (d.numerator, d.denominator):
            name = ref.removeprefix("plan:")
            if name not in codes:
                raise ConfigError(f"{path}: derived {d.code}: unknown indicator '{name}'")
    keys = [f.key for f in report.facts]
    if dup := sorted({k for k in keys if keys.count(k) > 1}):
        raise ConfigError(f"{path}: key `facts`: fact '{dup[0]}' appears twice")
    env = Environment()
    known = _text_names(report)
    for key, text in _texts(report):
        try:
            tree = env.parse(text)
        except TemplateSyntaxError as exc:
            raise ConfigError(
                f"{path}: key `{key}`: template error line {exc.lineno}: {exc.message}"
            ) from None
        for prefix, name in _figure_refs(tree):
            if name in known[prefix]:
                continue
            hint = _did_you_mean(name, known[prefix], f"{prefix}.")
            raise ConfigError(
                f"{path}: key `{key}`: `{prefix}.{name}` không có trong {_WHERE[prefix]} / "
                f"unknown name{hint}"
            )


def _did_you_mean(name: str, names, prefix: str = "") -> str:
    """`; có phải `f.tthc_tiep_nhan`? / did you mean it?` for the closest known name, or ""."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"; có phải `{prefix}{close[0]}`? / did you mean it?" if close else ""


def _texts(report: ReportDef) -> list[tuple[str, str]]:
    """Every text of the definition, with the key that names it in the YAML."""
    texts = [("title", report.title), ("preamble", report.preamble), ("closing", report.closing)]
    texts += [(f"sections[{n}].heading", s.heading) for n, s in enumerate(report.sections)]
    texts += [
        (f"sections[{n}].paragraphs[{k}]", p)
        for n, s in enumerate(report.sections)
        for k, p in enumerate(s.paragraphs)
    ]
    return texts + [(f"footnotes.{n}", t) for n, t in report.footnotes.items()]


# What a text may name after each prefix (tasks/render.py `text_context`).
_WHERE = {
    "f": "`indicators` hay `derived`",
    "v": "`indicators` hay `derived`",
    "c": "`indicators` hay `derived`",
    "t": "các chỉ tiêu `type: text`",
    "p": "các chỉ tiêu số (kế hoạch năm ở config/plans)",
    "d": "`facts` của báo cáo",
}


def _text_names(report: ReportDef) -> dict[str, set[str]]:
    figures = {i.code for i in report.indicators} | {d.code for d in report.derived}
    return {
        "f": figures,
        "v": figures,
        "c": figures,
        "t": {i.code for i in report.indicators if i.type == "text"},
        "p": _plannable(report),
        "d": {f.key for f in report.facts},
    }


def _plannable(report: ReportDef) -> set[str]:
    """Indicators that may have a plan figure: the numbers."""
    return {i.code for i in report.indicators if i.type in ("integer", "decimal", "percent")}


def _figure_refs(tree: nodes.Template) -> list[tuple[str, str]]:
    """Every `f.x`, `v.x`, `t.x`, `p.x`, `c.x`, `d.x` (or `f['x']`) a text uses, in order."""
    refs: list[tuple[str, str]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = node.node
        if not (isinstance(base, nodes.Name) and base.name in _WHERE):
            continue
        if isinstance(node, nodes.Getattr):
            refs.append((base.name, node.attr))
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            refs.append((base.name, node.arg.value))
    return refs


def _merged(base: dict, override: dict) -> dict:
    """`base` with `override`'s keys instead, nested mappings merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            value = _merged(base[key], value)
        out[key] = value
    return out


def _schedule(data: dict, body: Body, path: Path, prefix: str = "") -> Schedule:
    """A validated schedule: the office's (schedule.yaml) or a report's own (its `schedule:`
    keys over the office's), mistakes named in `path` under `prefix`."""
    schedule = _parse(Schedule, path, data, prefix)
    if (
        schedule.report_deadline_working_days_after_cutoff
        < schedule.unit_deadline_working_days_after_cutoff
    ):
        raise ConfigError(
            f"{path}: key `{prefix}report_deadline_working_days_after_cutoff`: the report "
            "cannot be due before its units' figures"
        )
    for target in schedule.reminders.escalate_to:
        if target != "head" and target not in body.offices:
            raise ConfigError(
                f"{path}: key `{prefix}reminders.escalate_to`: '{target}' is neither "
                f"`head` nor an office of body.yaml ({', '.join(body.offices) or 'none defined'})"
            )
    return schedule


def plan_keys(report: ReportDef) -> list[str]:
    """The plan figures a report needs each year: `plan:` denominators and `p.` in its texts."""
    keys = [d.denominator[5:] for d in report.derived if d.denominator.startswith("plan:")]
    env = Environment()
    for _key, text in _texts(report):
        keys += [name for prefix, name in _figure_refs(env.parse(text)) if prefix == "p"]
    return list(dict.fromkeys(keys))


# Where a report's period inputs live: one place, keyed by (report id, period or year).
def inputs_file(root: Path, kind: Literal["facts", "plans"], report_id: str, key: str) -> Path:
    """`config/facts/<report>/<period>.yaml` or `config/plans/<report>/<year>.yaml`."""
    return root / kind / report_id / f"{key}.yaml"


def _load_plans(root: Path, report: ReportDef) -> dict[int, dict[str, float]]:
    """Every year's plan file of a report, each key an indicator that takes a plan figure."""
    plans: dict[int, dict[str, float]] = {}
    allowed = _plannable(report)
    for path in sorted(inputs_file(root, "plans", report.id, "*").parent.glob("*.yaml")):
        if not re.fullmatch(r"\d{4}", path.stem):
            raise ConfigError(f"{path}: tên tệp phải là năm, ví dụ 2022.yaml / name it by its year")
        plan: dict[str, float] = {}
        for code, value in _read_yaml(path).items():
            if str(code) not in allowed:
                hint = _did_you_mean(str(code), allowed)
                raise ConfigError(
                    f"{path}: key `{code}`: không phải chỉ tiêu số của báo cáo {report.id} / "
                    f"not a numeric indicator of the report{hint}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{path}: key `{code}`: phải là số / must be a number")
            plan[str(code)] = float(value)
        plans[int(path.stem)] = plan
    return plans


def require_plan(cfg: Config, report: ReportDef, year: int) -> dict[str, float]:
    """The year's plan figures, every one the report needs there; else one line naming the
    file to write and its keys."""
    plan = cfg.plan(report.id, year)
    missing = [k for k in plan_keys(report) if k not in plan]
    if not missing:
        return plan
    path = inputs_file(cfg.root, "plans", report.id, str(year))
    what = "thiếu khóa / missing keys" if path.is_file() else "chưa có tệp / file missing"
    raise ConfigError(
        f"{path}: {what}: {', '.join(missing)}; ghi số liệu kế hoạch (KH giao) năm {year} "
        f"vào tệp này, mỗi dòng `mã_chỉ_tiêu: số` / write the year's plan figures there"
    )


def read_facts(cfg: Config, report: ReportDef, period_code: str) -> dict[str, str]:
    """The period's facts (`d.<key>`), every declared key with a value and no other; else one
    line naming the file, the key and what to write."""
    if not report.facts:
        return {}
    path = inputs_file(cfg.root, "facts", report.id, period_code)
    declared = {f.key: f for f in report.facts}
    if not path.is_file():
        raise ConfigError(
            f"{path}: chưa có tệp dữ kiện của kỳ {period_code}; tạo tệp với các khóa "
            f"{', '.join(declared)} (xem `facts:` trong reports/{report.id}.yaml) / "
            "the period's facts file is missing: write it with these keys"
        )
    data = _read_yaml(path) if path.read_text(encoding="utf-8").strip() else {}
    for key in data:
        if str(key) not in declared:
            hint = _did_you_mean(str(key), declared)
            raise ConfigError(
                f"{path}: key `{key}`: báo cáo không khai báo dữ kiện này (`facts:`) / "
                f"unknown fact{hint}"
            )
    for key, fact in declared.items():
        value = data.get(key)
        if value is None or str(value).strip() == "" or isinstance(value, dict | list):
            example = f', ví dụ "{fact.example}"' if fact.example else ""
            raise ConfigError(
                f"{path}: key `{key}`: chưa có giá trị; ghi {fact.label}{example} / "
                "missing: write this fact of the period"
            )
    return {k: str(data[k]).strip() for k in declared}


def load_config(root: Path | str) -> Config:
    """Read and validate a config folder; raise ConfigError naming file, key and problem."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: config folder not found (set --config or BAOCAO_CONFIG_DIR)")
    body = _parse(Body, root / "body.yaml", _read_yaml(root / "body.yaml"))
    units = _parse(_Units, root / "units.yaml", _read_yaml(root / "units.yaml")).units
    unit_map: dict[str, Unit] = {}
    for u in units:
        if u.code in unit_map:
            raise ConfigError(f"{root / 'units.yaml'}: unit code '{u.code}' appears twice")
        unit_map[u.code] = u
    office_schedule = _read_yaml(root / "schedule.yaml")
    schedule = _schedule(office_schedule, body, root / "schedule.yaml")
    reports: dict[str, ReportDef] = {}
    plans: dict[str, dict[int, dict[str, float]]] = {}
    for path in sorted((root / "reports").glob("*.yaml")):
        data = _read_yaml(path)
        if "plans" in data:
            raise ConfigError(
                f"{path}: key `plans`: kế hoạch năm nằm trong tệp riêng, "
                f"config/plans/<báo cáo>/<năm>.yaml / the year's plan figures go to their own file"
            )
        own = data.pop("schedule", None) or {}
        if not isinstance(own, dict):
            raise ConfigError(f"{path}: key `schedule`: expected a mapping of schedule.yaml's keys")
        report = _parse(ReportDef, path, data)
        if report.id in reports:
            raise ConfigError(f"{path}: key `id`: report '{report.id}' is defined twice")
        _check_report(unit_map, report, path)
        report_schedule = _schedule(_merged(office_schedule, own), body, path, "schedule.")
        if report_schedule.approval_required and not report.approval.approvers:
            raise ConfigError(
                f"{path}: key `approval.approvers`: approval_required is true but no one may "
                "approve; name at least one approver with a contact"
            )
        reports[report.id] = report.model_copy(update={"schedule": report_schedule})
        plans[report.id] = _load_plans(root, report)
    if not reports:
        raise ConfigError(f"{root / 'reports'}: no report definition (*.yaml) found")
    return Config(
        root=root, body=body, units=units, schedule=schedule, reports=reports, plans=plans
    )
