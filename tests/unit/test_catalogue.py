"""The procedure catalogue: the packaged file matches DOMAIN.md, and bad files fail clearly."""

from datetime import date, datetime, time, timezone

import pytest

from onestop.catalogue import (COLUMNS, CatalogueError, TimeUnit, UnknownProcedure, default_catalogue,
                               load_catalogue)

WD, SAME = TimeUnit.WORKING_DAYS, TimeUnit.SAME_DAY
# DOMAIN.md's table of typical commune procedures: code → (field, legal time, unit).
DOMAIN_TABLE = {
    "1.001193": ("Hộ tịch", 0, SAME), "1.000689": ("Hộ tịch", 3, WD),
    "1.000894": ("Hộ tịch", 0, SAME), "1.000656": ("Hộ tịch", 0, SAME),
    "2.000635": ("Hộ tịch", 0, SAME), "1.004884": ("Hộ tịch", 5, WD),
    "1.004873": ("Hộ tịch", 3, WD), "2.000815": ("Chứng thực", 0, SAME),
    "2.000884": ("Chứng thực", 0, SAME), "1.013978": ("Đất đai", 20, WD),
    "1.013949": ("Đất đai", 15, WD), "1.001776": ("Bảo trợ xã hội", 10, WD),
    "1.001731": ("Bảo trợ xã hội", 5, WD), "1.001699": ("Bảo trợ xã hội", 20, WD),
    "1.010833": ("Người có công", 10, WD), "2.000720": ("Hộ kinh doanh", 3, WD),
}


@pytest.mark.parametrize(("code", "expected"), sorted(DOMAIN_TABLE.items()))
def test_the_packaged_catalogue_has_domain_md_procedures(code, expected):
    procedure = default_catalogue().get(code)
    assert (procedure.field, procedure.legal_time, procedure.time_unit) == expected
    assert procedure.version and procedure.name


def test_seventeen_procedures_including_a_clearly_local_code():
    catalogue = default_catalogue()
    assert len(catalogue) >= 17
    local = [p for p in catalogue if p.is_local_code]
    assert [(p.field, p.legal_time, p.time_unit) for p in local] == [("Chứng thực", 2, WD)]
    assert local[0].code.startswith("LOCAL-")


def test_same_day_procedures_have_the_15_00_cut_off():
    same_day = [p for p in default_catalogue() if p.time_unit is SAME]
    assert len(same_day) == 6 and all(p.cutoff == time(15, 0) for p in same_day)


def test_only_land_procedures_exclude_the_financial_wait():
    assert {p.code for p in default_catalogue() if p.financial_wait_pauses} == {"1.013978", "1.013949"}


def test_unsettled_times_are_marked():
    unsettled = {p.code for p in default_catalogue() if p.is_unsettled}
    assert unsettled == {"1.004873", "1.001776", "1.001731", "1.001699", "1.010833"}


def test_verification_and_hardship_ceilings_are_exceptions():
    catalogue = default_catalogue()
    assert (catalogue.get("1.000689").exception_time, catalogue.get("1.000689").exception_unit) == (8, WD)
    assert catalogue.get("1.013978").exception_time == 30


def test_an_unknown_code_raises_or_returns_none():
    with pytest.raises(UnknownProcedure):
        default_catalogue().get("9.999999")
    assert default_catalogue().find("9.999999") is None


HEADER = ",".join(COLUMNS)
ROW = "2.000720,Đăng ký thay đổi hộ kinh doanh,Hộ kinh doanh,3,working_days,,false,,,,{version},{valid_from},"


def write(tmp_path, *rows: str, header: str = HEADER):
    path = tmp_path / "procedures.csv"
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


def test_the_version_in_force_on_the_acceptance_date_is_used(tmp_path):
    path = write(tmp_path, ROW.format(version="v1", valid_from="2025-07-01"),
                 ROW.format(version="v2", valid_from="2027-03-01").replace(",3,", ",5,"))
    catalogue = load_catalogue(path)
    assert catalogue.get("2.000720", at=date(2026, 1, 5)).version == "v1"
    assert catalogue.get("2.000720", at=datetime(2027, 3, 1, 8, 0)).legal_time == 5
    assert catalogue.get("2.000720", at=date(2024, 1, 1)).version == "v1"  # before the file: earliest
    # 18:00 UTC on 28 Feb 2027 is already 1 March in Vietnam.
    assert catalogue.get("2.000720", at=datetime(2027, 2, 28, 18, 0, tzinfo=timezone.utc)).version == "v2"
    assert catalogue.version.startswith("procedures.csv@")


@pytest.mark.parametrize(("row", "problem"), [
    (ROW.replace("working_days", "fortnights"), "column 'time_unit' ('fortnights')"),
    (ROW.replace(",3,", ",zero,"), "column 'legal_time' ('zero')"),
    (ROW.replace(",false,", ",perhaps,"), "column 'financial_wait_pauses' ('perhaps')"),
    (ROW.replace("working_days,,", "working_days,25:00,"), "column 'cutoff' ('25:00')"),
    (ROW.replace(",3,working_days", ",3,same_day"), "legal_time must be 0 for same_day"),
    (ROW.replace("false,,,", "false,5,,"), "exception_time and exception_unit must be given together"),
    (ROW.replace("2.000720,", ","), "column 'code' (''): Field required"),
    (ROW + ",extra", "more cell(s) than the header"),
])
def test_an_invalid_row_fails_naming_file_line_and_problem(tmp_path, row, problem):
    good = ROW.format(version="v1", valid_from="2025-07-01")
    path = write(tmp_path, good.replace("2.000720", "2.000721"), row.format(version="v1", valid_from="2025-07-01"))
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    error = caught.value
    assert (error.path, error.line) == (str(path), 3)
    assert problem in error.problem
    assert str(error).startswith(f"{path}, line 3: ")


def test_a_duplicate_version_names_both_lines(tmp_path):
    row = ROW.format(version="v1", valid_from="2025-07-01")
    with pytest.raises(CatalogueError, match=r"line 3: procedure 2.000720 valid from 2025-07-01 is already "
                                             r"defined on line 2"):
        load_catalogue(write(tmp_path, row, row))


@pytest.mark.parametrize(("header", "problem"), [
    ("code,name", "line 1: missing column(s): field, legal_time"),
    (HEADER + ",colour", "line 1: unknown column(s): colour"),
])
def test_a_bad_header_fails_on_line_1(tmp_path, header, problem):
    with pytest.raises(CatalogueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_catalogue(write(tmp_path, header=header))


def test_a_missing_file_names_the_path(tmp_path):
    with pytest.raises(CatalogueError, match="nowhere.csv: cannot read"):
        load_catalogue(tmp_path / "nowhere.csv")
