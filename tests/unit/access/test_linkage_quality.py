"""The extract's linkage-quality summary: link rates overall and by group, share unlinked."""

from services.access.domain.linkage_quality import linkage_summary


def test_rates_are_counted_per_group_and_missing_values_are_a_group_of_their_own() -> None:
    columns = {
        "ALF_E": ["a", None, "b", None, "c"],
        "GNDR_CD": [1, 1, 2, 2, None],
        "ALF_STS_CD": [1, 99, 50, 99, 4],
    }
    s = linkage_summary(columns)
    assert s is not None
    assert (s["rows"], s["linked"], s["unlinked"]) == (5, 3, 2)
    assert s["link_rate"] == 0.6 and s["share_unlinked"] == 0.4
    by_sex = {g["group"]: (g["rows"], g["linked"]) for g in s["by"]["GNDR_CD"]["groups"]}
    assert by_sex == {"1": (2, 1), "2": (2, 1), "missing": (1, 1)}
    by_status = {g["group"]: g["link_rate"] for g in s["by"]["ALF_STS_CD"]["groups"]}
    assert by_status == {"1": 1.0, "4": 1.0, "50": 1.0, "99": 0.0}


def test_a_table_without_people_has_no_summary_and_an_empty_one_no_rate() -> None:
    assert linkage_summary({"CASE_ID_E": ["x"]}) is None
    empty = linkage_summary({"ALF_E": []})
    assert empty is not None and empty["link_rate"] is None and empty["by"] == {}
