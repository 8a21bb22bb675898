import re
from pathlib import Path

import pytest

from sequences.demo import DEMO_SHIPYARD
from sequences.rules.durations import format_duration, parse_duration
from sequences.rules.shipyard import ShipyardError, parse

EXAMPLE = Path(__file__).resolve().parent / "data" / "example-shipyard.yaml"  # every feature of the format

HEAD = "apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata:\n  name: s\nspec:\n  stages:\n"


def test_the_example_shipyard_is_accepted_with_every_feature():
    shipyard = parse(EXAMPLE.read_text())
    assert shipyard.stage_names == ["dev", "staging", "production"]
    test = shipyard.sequence("staging", "delivery").tasks[1]
    assert (test.name, test.start_timeout, test.timeout) == ("test", 180, 1800)
    assert test.properties == {"teststrategy": "performance"}
    approval = shipyard.sequence("production", "delivery").tasks[0]
    assert approval.properties == {"pass": "automatic", "warning": "manual"}
    rollback = shipyard.sequence("production", "rollback")
    assert rollback.triggered_on[0].event == "production.delivery.finished"
    assert rollback.triggered_on[0].selector == {"result": "fail"}
    remediation = shipyard.sequence("production", "remediation")
    assert remediation.tasks[2].triggered_after == 600
    # every stage has the implicit evaluation sequence
    assert [t.name for t in shipyard.sequence("dev", "evaluation").tasks] == ["evaluation"]


def test_chaining_without_selector_fires_on_pass_or_warning_only():
    shipyard = parse(DEMO_SHIPYARD)
    fired = lambda result: [(s.name, q.name) for s, q in shipyard.chained("dev", "delivery", result, {})]  # noqa
    assert fired("pass") == [("staging", "delivery")]
    assert fired("warning") == [("staging", "delivery")]
    assert fired("fail") == []
    rollback = lambda result: [q.name for _, q in shipyard.chained("production", "delivery", result, {})]  # noqa
    assert rollback("fail") == ["rollback"]
    assert rollback("pass") == []


def test_a_task_result_selector_matches_that_tasks_result():
    shipyard = parse(HEAD + """\
    - name: prod
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: release}]
        - name: rollback
          triggeredOn:
            - event: prod.delivery.finished
              selector:
                match:
                  release.result: fail
          tasks: [{name: rollback}]
""")
    assert [q.name for _, q in shipyard.chained("prod", "delivery", "fail", {"release": "fail"})] == ["rollback"]
    assert list(shipyard.chained("prod", "delivery", "fail", {"deployment": "fail"})) == []


@pytest.mark.parametrize("text, message", [
    ("stages: [", "line 1: document: not valid YAML"),
    ("- just\n- a list\n", "line 1: document: must be a mapping"),
    ("kind: Shipyard\nmetadata: {name: s}\nspec: {stages: [{name: dev}]}\n", "apiVersion: is required"),
    ("apiVersion: keptn/0.2.3\nkind: Shipyard\n", "line 1: apiVersion: 'keptn/0.2.3' is not spec.keptn.sh/ followed by a version"),
    ("apiVersion: spec.keptn.sh/0.1.7\nkind: Shipyard\n", "line 1: apiVersion: version 0.1.7 is too old"),
    ("apiVersion: spec.keptn.sh/0.2.3\nkind: Pipeline\n", "line 2: kind: must be Shipyard, not 'Pipeline'"),
    ("apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {}\n", "line 3: metadata.name: is required"),
    ("apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {name: s}\nspec:\n  stages: []\n",
     "line 5: spec.stages: must be a non-empty list of stages"),
    (HEAD + "    - name: Dev\n", "line 7: spec.stages[0].name: 'Dev' is not a valid name"),
    (HEAD + "    - name: dev\n    - name: dev\n", "line 8: spec.stages[1].name: stage 'dev' is defined twice"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: delivery\n          tasks: []\n",
     "line 10: spec.stages[0].sequences[0].tasks: must be a non-empty list of tasks"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: delivery\n          tasks:\n            - properties: {}\n",
     "line 11: spec.stages[0].sequences[0].tasks[0].name: is required"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: d\n          tasks: [{name: t, properties: [1]}]\n",
     "spec.stages[0].sequences[0].tasks[0].properties: must be a mapping"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: d\n          tasks: [{name: t, triggeredAfter: soon}]\n",
     "line 10: spec.stages[0].sequences[0].tasks[0].triggeredAfter: 'soon' is not a duration"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: d\n          tasks: [{name: t, startTimeout: 0s}]\n",
     "tasks[0].startTimeout: must be longer than zero"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: d\n          triggeredOn:\n            - event: dev.build\n"
     "          tasks: [{name: t}]\n",
     "line 11: spec.stages[0].sequences[0].triggeredOn[0].event: 'dev.build' must look like <stage>.<sequence>.finished"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: d\n          tasks: [{name: t}]\n        - name: r\n"
     "          triggeredOn:\n            - event: dev.d.finished\n              selector:\n                match:\n"
     "                  score: 90\n          tasks: [{name: t}]\n",
     "line 16: spec.stages[0].sequences[1].triggeredOn[0].selector.match.score: only result or <task>.result"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: d\n          tasks: [{name: t}]\n        - name: r\n"
     "          triggeredOn:\n            - event: dev.d.finished\n              selector:\n                match:\n"
     "                  result: failed\n          tasks: [{name: t}]\n",
     "selector.match.result: 'failed' must be one of pass, warning, fail"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: d\n          tasks: [{name: t}]\n        - name: d\n"
     "          tasks: [{name: t}]\n", "line 11: spec.stages[0].sequences[1].name: sequence 'd' is defined twice"),
    (HEAD + "    - name: dev\n      sequences:\n        - name: deliver.y\n          tasks: [{name: t}]\n",
     "line 9: spec.stages[0].sequences[0].name: 'deliver.y' is not a valid name"),
    (HEAD + "    - name: prod\n      sequences:\n        - name: d\n          tasks:\n            - name: approval\n"
     "              properties: {pass: sometimes}\n",
     "line 12: spec.stages[0].sequences[0].tasks[0].properties.pass: must be automatic or manual"),
    ("", "line 1: document: the shipyard is empty"),
])
def test_a_malformed_shipyard_is_rejected_naming_line_and_field(text, message):
    with pytest.raises(ShipyardError) as caught:
        parse(text)
    assert message in str(caught.value)


@pytest.mark.parametrize("text, seconds, formatted", [
    ("90s", 90, "1m30s"), ("10m", 600, "10m0s"), ("1h30m", 5400, "1h30m0s"), ("250ms", 0.25, "250ms"),
    ("3m", 180, "3m0s"), ("1.5s", 1.5, "1.5s"),
])
def test_durations_use_go_syntax(text, seconds, formatted):
    assert parse_duration(text) == pytest.approx(seconds)
    assert format_duration(seconds) == formatted


@pytest.mark.parametrize("text", ["", "10", "m", "10 minutes", "-5s", "1h 30m"])
def test_durations_that_are_not_go_syntax_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_trigger_naming_no_sequence_is_a_warning_as_in_keptn():
    shipyard = parse(HEAD + "    - name: dev\n      sequences:\n        - name: d\n          triggeredOn:\n"
                            "            - event: qa.d.finished\n          tasks: [{name: t}]\n")
    assert shipyard.warnings == ("line 11: spec.stages[0].sequences[0].triggeredOn[0].event: 'qa.d.finished' names "
                                 "no sequence of this shipyard, so it never fires",)


@pytest.mark.parametrize("api_version", [
    "spec.keptn.sh/0.2.0", "spec.keptn.sh/0.2.3", "spec.keptn.sh/0.2.x", "spec.keptn.sh/0.2", "spec.keptn.sh/v0.2.4",
    "spec.keptn.sh/0.3.0-dev", "spec.keptn.sh/0.2.3+build.1", "0.2.0", '"0.2"', "0.2",
])
def test_the_apiversion_spellings_keptn_accepts_are_accepted(api_version):
    shipyard = parse(f"apiVersion: {api_version}\nkind: Shipyard\nmetadata: {{name: s}}\nspec:\n  stages: [{{name: dev}}]\n")
    assert shipyard.stage_names == ["dev"]


@pytest.mark.parametrize("api_version, message", [
    ("spec.keptn.sh/0.1.9", "line 1: apiVersion: version 0.1.9 is too old"),
    ("spec.keptn.sh/latest", "line 1: apiVersion: 'spec.keptn.sh/latest' is not spec.keptn.sh/ followed by a version"),
    ("keptn.sh/0.2.0", "line 1: apiVersion: 'keptn.sh/0.2.0' is not spec.keptn.sh/"),
    ("[0.2.0]", "line 1: apiVersion: is required"),
])
def test_other_apiversions_are_refused_with_the_line(api_version, message):
    with pytest.raises(ShipyardError, match=re.escape(message)):
        parse(f"apiVersion: {api_version}\nkind: Shipyard\nmetadata: {{name: s}}\nspec:\n  stages: [{{name: dev}}]\n")
