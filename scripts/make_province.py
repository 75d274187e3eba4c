"""Write examples/quang-ngai-2026/config/units.yaml: the units of UBND tỉnh Quảng Ngãi.

Since 1 July 2025 the province (merged with Kon Tum) collects directly from its 96
communal-level units (86 xã, 9 phường, đặc khu Lý Sơn) and from its departments. The list is
generated, deterministically (the same file every run): codes XA-001.., PH-001.., DK-001;
groups `communes` (xã), `wards` (phường), `special-zones` and `cap-xa` (all communal-level
units); an address on .quangngai.gov.vn for each; a head with an illustrative name.

The names of the communes and wards are recalled from the 2025 arrangement (Nghị quyết
1677/NQ-UBTVQH15 of 16/6/2025, as public lists cite it): most are real, grouped by the former
district or town they come from, but the list was not checked name by name against the
resolution; use the official list before sending anything to anyone.

    .venv/bin/python scripts/make_province.py
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "examples" / "quang-ngai-2026" / "config" / "units.yaml"
DOMAIN = "quangngai.gov.vn"

# The 86 xã, by the former district they come from (as recalled; see the docstring).
COMMUNES = {
    "TP Quảng Ngãi": ["Tịnh Khê", "An Phú"],
    "TX Đức Phổ": ["Nguyễn Nghiêm", "Khánh Cường"],
    "Bình Sơn": ["Bình Minh", "Bình Chương", "Bình Sơn", "Vạn Tường", "Đông Sơn"],
    "Sơn Tịnh": ["Trường Giang", "Ba Gia", "Sơn Tịnh", "Thọ Phong"],
    "Tư Nghĩa": ["Tư Nghĩa", "Vệ Giang", "Nghĩa Giang", "Trà Giang"],
    "Nghĩa Hành": ["Nghĩa Hành", "Đình Cương", "Thiện Tín", "Phước Giang"],
    "Mộ Đức": ["Long Phụng", "Mỏ Cày", "Mộ Đức", "Lân Phong"],
    "Minh Long": ["Minh Long", "Sơn Mai"],
    "Sơn Hà": ["Sơn Hà", "Sơn Hạ", "Sơn Linh", "Sơn Kỳ", "Sơn Thủy"],
    "Sơn Tây": ["Sơn Tây", "Sơn Tây Thượng", "Sơn Tây Hạ"],
    "Trà Bồng": ["Trà Bồng", "Đông Trà Bồng", "Tây Trà", "Thanh Bồng", "Cà Đam", "Tây Trà Bồng"],
    "Ba Tơ": ["Ba Tơ", "Ba Vì", "Ba Tô", "Ba Dinh", "Ba Vinh", "Ba Động", "Ba Xa", "Đặng Thùy Trâm"],
    "Kon Tum (cũ)": [
        "Ngọk Bay", "Ia Chim", "Đăk Rơ Wa", "Đăk Pxi", "Đăk Mar", "Ngọk Réo", "Đăk Hà",
        "Đăk Tô", "Kon Đào", "Ngọk Tụ", "Đăk Sao", "Đăk Tờ Kan", "Tu Mơ Rông", "Măng Ri",
        "Bờ Y", "Sa Loong", "Dục Nông", "Xốp", "Ngọc Linh", "Đăk Plô", "Đăk Pék", "Đăk Môn",
        "Đăk Long", "Đăk Glei", "Sa Thầy", "Sa Bình", "Ya Ly", "Ia Đal", "Ia Tơi", "Mô Rai",
        "Rờ Kơi", "Đăk Kôi", "Kon Braih", "Đăk Rve", "Măng Đen", "Măng Bút", "Kon Plông",
    ],
}  # fmt: skip
WARDS = [
    "Trương Quang Trọng", "Cẩm Thành", "Nghĩa Lộ", "Đức Phổ", "Trà Câu", "Sa Huỳnh",
    "Kon Tum", "Đăk Cấm", "Đăk Bla",
]  # fmt: skip
SPECIAL_ZONE = "Lý Sơn"

# The departments (sở and the province's offices) that own indicators of its reports, with
# the reports they answer (the tag of their mailbox): the first six the CCHC report, Thanh tra
# tỉnh and Ban Tiếp công dân tỉnh the monthly citizen-reception report (tcd-monthly).
DEPARTMENTS = [
    ("SNV", "Sở Nội vụ", "department", "sonoivu", "Giám đốc Sở", "cchc"),
    ("STP", "Sở Tư pháp", "department", "sotuphap", "Giám đốc Sở", "cchc"),
    ("STC", "Sở Tài chính", "department", "sotaichinh", "Giám đốc Sở", "cchc"),
    ("SKHCN", "Sở Khoa học và Công nghệ", "department", "sokhcn", "Giám đốc Sở", "cchc"),
    ("TTPVHCC", "Trung tâm Phục vụ hành chính công tỉnh", "desk", "ttpvhcc", "Giám đốc Trung tâm", "cchc"),
    ("VPUBND", "Văn phòng UBND tỉnh", "department", "vpubnd", "Chánh Văn phòng", "cchc"),
    ("TTT", "Thanh tra tỉnh", "department", "thanhtra", "Chánh Thanh tra tỉnh", "tcd"),
    ("BTCD", "Ban Tiếp công dân tỉnh", "desk", "bantiepcongdan", "Trưởng Ban", "tcd"),
]  # fmt: skip

# Illustrative heads' names, picked by position so the file is the same every run.
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đinh", "Hồ", "Bùi", "Đặng", "Trương"]
MIDDLES = ["Văn", "Thị", "Minh", "Ngọc", "Công", "Thanh", "Hữu", "Đức"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hùng", "Khoa", "Lan", "Linh", "Long",
         "Mai", "Nam", "Nga", "Phúc", "Quang", "Sơn", "Tâm", "Thảo", "Trung", "Tuấn", "Vy"]  # fmt: skip


def ascii_slug(name: str) -> str:
    """'Đăk Rơ Wa' -> 'dakrowa': the name without marks or spaces, for an address."""
    plain = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in plain if c.isalnum() and c.isascii()).lower()


def head_name(n: int) -> str:
    """An illustrative name for the n-th unit's head."""
    return (
        f"{SURNAMES[n % len(SURNAMES)]} {MIDDLES[n % 7 % len(MIDDLES)]} {GIVEN[n * 5 % len(GIVEN)]}"
    )


def communal(code: str, kind_word: str, name: str, groups: list[str], n: int, slug: str) -> dict:
    """A communal-level unit: its People's Committee, its chairman, its addresses."""
    return {
        "code": code,
        "name": f"UBND {kind_word} {name}",
        "kind": "commune",
        "groups": [*groups, "cap-xa"],
        "head": {
            "name": head_name(n),
            "title": f"Chủ tịch UBND {kind_word}",
            "contacts": [{"email": f"chutich.{slug}@{DOMAIN}"}],
        },
        "contacts": [{"email": f"ubnd.{slug}@{DOMAIN}", "tags": ["cchc", "tcd"]}],
    }


def department(code: str, name: str, kind: str, mailbox: str, title: str, tag: str, n: int) -> dict:
    """A department of the province: its head and its mailbox, tagged with its report."""
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "head": {
            "name": head_name(n),
            "title": title,
            "contacts": [{"email": f"giamdoc.{mailbox}@{DOMAIN}"}],
        },
        "contacts": [{"email": f"{mailbox}@{DOMAIN}", "tags": [tag]}],
    }


def unique_slugs(names: list[str]) -> list[str]:
    """Each name's slug, numbered from the second on where two names share one (Sơn Hà,
    Sơn Hạ -> sonha, sonha2): one address is one unit's."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        slug = ascii_slug(name)
        seen[slug] = seen.get(slug, 0) + 1
        out.append(slug if seen[slug] == 1 else f"{slug}{seen[slug]}")
    return out


def units() -> list[dict]:
    """Departments first, then the xã, the phường and the special zone, numbered in order."""
    xa = [name for names in COMMUNES.values() for name in names]
    kinds = (
        [("XA", i, "xã", name, "communes") for i, name in enumerate(xa, 1)]
        + [("PH", i, "phường", name, "wards") for i, name in enumerate(WARDS, 1)]
        + [("DK", 1, "đặc khu", SPECIAL_ZONE, "special-zones")]
    )
    out = [department(*d, n) for n, d in enumerate(DEPARTMENTS)]
    slugs = unique_slugs([name for _, _, _, name, _ in kinds])
    for (prefix, i, word, name, group), slug in zip(kinds, slugs, strict=True):
        out.append(communal(f"{prefix}-{i:03d}", word, name, [group], len(out), slug))
    return out


HEADER = """\
# GENERATED by scripts/make_province.py: edit that script, then run it again.
# The reporting units of UBND tỉnh Quảng Ngãi since 1 July 2025 (two-level local government):
# its 8 departments, and its 96 communal-level units (86 xã, 9 phường, đặc khu Lý Sơn), which
# the reports name as @cap-xa (or @communes, @wards, @special-zones): both reports
# (cchc-quarterly, tcd-monthly) collect from them; each department answers one report.
# Names of communes and wards are recalled from the 2025 arrangement, not checked one by one
# against Nghị quyết 1677/NQ-UBTVQH15; heads' names and the addresses are illustrative.
"""


def render() -> str:
    data = yaml.safe_dump(
        {"units": units()}, allow_unicode=True, sort_keys=False, default_flow_style=None, width=110
    )
    return HEADER + data


def main() -> None:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(render(), encoding="utf-8")
    n = len(units())
    print(f"{TARGET.relative_to(ROOT)}: {n} units")


if __name__ == "__main__":
    main()
