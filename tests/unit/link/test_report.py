from datetime import date

from services.link.report import summarise


def test_the_report_counts_links_reviews_and_scores_precision_recall_and_f1():
    preds = [
        {"incoming_id": "a", "spine_id": "S1", "match_probability": "0.99", "status": "50"},
        {"incoming_id": "b", "spine_id": "S9", "match_probability": "1.0", "status": "4"},
        {"incoming_id": "c", "spine_id": "", "match_probability": "0.6", "status": "90"},
        {"incoming_id": "d", "spine_id": "", "match_probability": "0.0", "status": "99"},
    ]
    incoming = {
        "a": {"sex": "F", "date_of_birth": "2024-06-01", "postcode": "CF10 1AA"},
        "b": {"sex": "M", "date_of_birth": "1990-01-02", "postcode": "SA1 2BB"},
        "c": {"sex": "F", "date_of_birth": "", "postcode": ""},
        "d": {"sex": "F", "date_of_birth": "2015-03-03", "postcode": "CF10 2AA"},
    }
    truth = {"a": "S1", "b": "S2", "c": "S3", "d": ""}
    rep = summarise(preds, incoming, truth, today=date(2025, 1, 1))
    assert rep["linked"] == 2
    assert rep["review_queue"] == 1
    assert rep["accuracy"] == {
        "precision": 0.5,
        "recall": 0.3333,
        "f1": 0.4,
        "tp": 1,
        "fp": 1,
        "fn": 2,
    }
    assert rep["link_rate_by"]["sex"] == {"F": 0.3333, "M": 1.0}
    assert rep["link_rate_by"]["age_band"]["<1"] == 1.0


def test_the_html_report_escapes_what_the_csvs_hold(tmp_path):
    import csv

    from services.link.report import build_report

    with open(tmp_path / "p.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["incoming_id", "spine_id", "match_probability", "status"])
        w.writeheader()
        w.writerow({"incoming_id": "a", "spine_id": "S1", "match_probability": "1", "status": "4"})
    with open(tmp_path / "i.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["id", "sex", "date_of_birth", "postcode"])
        w.writeheader()
        w.writerow({"id": "a", "sex": "<img src=x>", "date_of_birth": "", "postcode": ""})
    html = build_report(tmp_path / "p.csv", tmp_path / "out", incoming=tmp_path / "i.csv")
    text = html.read_text()
    assert "&lt;img src=x&gt;" in text and "<img" not in text
    assert "<title>fjo linkage quality</title>" in text and "<svg" in text
