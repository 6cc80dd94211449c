"""The Data Quality status vocabulary and outcome rules (status.py), and what importing the gate costs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from airflow_provider_dataworks.status import DataQualityEvaluation, DataQualityRuleResult, DataQualityStatus


def evaluation(status: str, *results: dict) -> DataQualityEvaluation:
    return DataQualityEvaluation.from_api({"Id": 7, "Status": status, "Results": list(results)})


@pytest.mark.parametrize(
    ("status", "terminal", "opens", "opens_with_fail_on_warn"),
    [
        ("Running", False, False, False),
        ("Passed", True, True, True),
        ("Warned", True, True, False),
        ("Critical", True, False, False),
        ("Error", True, False, False),
        ("Paused", False, False, False),  # unknown: not finished, never success
        ("", False, False, False),
    ],
)
def test_status_table(status, terminal, opens, opens_with_fail_on_warn):
    record = evaluation(status)
    assert record.is_terminal is terminal
    assert record.passes() is opens
    assert record.passes(fail_on_warn=True) is opens_with_fail_on_warn


def test_vocabulary_is_spelled_as_dataworks_does():
    assert [s.value for s in DataQualityStatus] == ["Running", "Passed", "Warned", "Critical", "Error"]


RESULT = {
    "Status": "Critical",
    "Rule": {
        "Id": 11,
        "Name": "amount_not_negative",
        "Severity": "High",
        "CheckingConfig": {
            "Thresholds": {
                "Critical": {"Operator": ">", "Value": "0"},
                "Warned": {"Expression": "$checkValue > 5"},
                "Expected": {"Operator": "=", "Value": "0"},
            }
        },
    },
    "Details": [{"CheckedValue": "3", "Status": "Passed"}, {"CheckedValue": "17", "Status": "Critical"}],
}


def test_rule_result_takes_the_crossed_threshold_and_the_deciding_value():
    rule = DataQualityRuleResult.from_api(RESULT)
    assert (rule.rule_id, rule.rule_name, rule.severity) == (11, "amount_not_negative", "High")
    assert (rule.threshold, rule.expected, rule.checked_value) == ("> 0", "= 0", "17")
    warned = DataQualityRuleResult.from_api({**RESULT, "Status": "Warned"})
    assert warned.threshold == "$checkValue > 5"


def test_failure_names_only_the_rules_that_did_not_pass():
    passed = {"Status": "Passed", "Rule": {"Id": 12, "Name": "row_count"}, "Details": [{"CheckedValue": "9"}]}
    text = evaluation("Critical", RESULT, passed).describe_failure()
    assert "rule 'amount_not_negative' (11) Critical: actual value 17, critical threshold > 0, expected = 0" in text
    assert "row_count" not in text


def test_json_round_trip():
    record = DataQualityEvaluation.from_api(
        {"Id": 7, "Status": "Warned", "Parameters": '{"triggerTime": 1700000000000}', "Results": [RESULT]},
        request_id="R1",
    )
    assert DataQualityEvaluation.from_json(record.to_json()) == record
    assert record.trigger_time_ms == 1_700_000_000_000


def test_importing_the_gate_does_not_import_the_sdk():
    script = textwrap.dedent(
        """
        import sys
        import airflow_provider_dataworks.operators.data_quality
        import airflow_provider_dataworks.triggers.data_quality
        import airflow_provider_dataworks.hooks.data_quality
        import airflow_provider_dataworks.report
        print(sorted(m for m in sys.modules if m.startswith(("alibabacloud", "darabonba", "Tea"))))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
