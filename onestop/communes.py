"""Provinces and communes after the 1 July 2025 reform, from the ``vietnam-provinces`` package.

Codes are zero-padded strings (5 digits for a commune, 2 for a province),
never integers: codes like 03595 (Xã Than Uyên, Lai Châu) lose their meaning
without the leading zero.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec
import vietnam_provinces as vp


class Commune(msgspec.Struct, frozen=True):
    code: str  # 5 digits
    name: str
    division_type: str  # xã, phường, đặc khu
    province_code: str  # 2 digits
    province_name: str


class UnknownProvince(LookupError):
    pass


@lru_cache(maxsize=1)
def _province_names() -> dict[str, str]:
    return {f"{int(p.code):02d}": p.name for p in vp.Province.iter_all()}


def province_name(province_code: str) -> str:
    try:
        return _province_names()[province_code]
    except KeyError:
        raise UnknownProvince(f"no province with code {province_code!r} in vietnam-provinces {vp.__version__}") from None


@lru_cache(maxsize=64)
def communes_of(province_code: str) -> tuple[Commune, ...]:
    """All communes of a province, in code order."""
    pname = province_name(province_code)
    wards = vp.Ward.iter_by_province(vp.ProvinceCode(int(province_code)))
    return tuple(
        sorted(
            (Commune(f"{int(w.code):05d}", w.name, w.division_type.value, province_code, pname) for w in wards),
            key=lambda c: c.code,
        )
    )


@lru_cache(maxsize=1)
def all_communes() -> dict[str, Commune]:
    return {c.code: c for p in _province_names() for c in communes_of(p)}


def commune(code: str) -> Commune | None:
    return all_communes().get(code)


DATA_VERSION = f"vietnam-provinces {vp.__version__} ({vp.__data_version__})"
