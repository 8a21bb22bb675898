"""Shipyard files (Keptn's spec.keptn.sh/0.2.x): parse, validate, and answer questions about them.

Plain dataclasses, no ORM. Every validation error names the line and the field, e.g.
"line 14: spec.stages[1].sequences[0].tasks: must be a non-empty list of tasks".
"""

import difflib
import re
from dataclasses import dataclass, field

from sequences.rules import yamlsafe
from sequences.rules.durations import parse_duration
from sequences.rules.yamlsafe import Locator

NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
TASK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RESULTS = ("pass", "warning", "fail")
APPROVAL_MODES = ("automatic", "manual")


class ShipyardError(ValueError):
    """A shipyard that cannot be used; the message names the line and the field."""


@dataclass(frozen=True)
class Task:
    name: str
    properties: dict | None = None
    triggered_after: float | None = None  # seconds
    start_timeout: float | None = None  # seconds; None means the settings default
    timeout: float | None = None
    heartbeat_timeout: float | None = None
    approval: dict | None = None  # Bosun's approval rule (rules/approvals.py), on a task named approval
    retry: dict | None = None  # Bosun's retry policy: {limit, backoff (seconds), on: [fail, errored, timedOut]}
    where: str = ""  # "line 12: spec.stages[1].sequences[0].tasks[1]" (the line of its approval rule, if it has
    # one), for checks made after parsing

    def as_keptn(self) -> dict:
        return {"name": self.name, "properties": self.properties}


@dataclass(frozen=True)
class Trigger:
    stage: str
    sequence: str
    selector: dict = field(default_factory=dict)  # {"result": "fail"} or {"release.result": "fail"}

    @property
    def event(self) -> str:
        return f"{self.stage}.{self.sequence}.finished"

    def matches(self, result: str, task_results: dict[str, str]) -> bool:
        """Without a selector a trigger fires on pass or warning; with one, on exactly what it names."""
        if not self.selector:
            return result in ("pass", "warning")
        for key, wanted in self.selector.items():
            got = result if key == "result" else task_results.get(key.removesuffix(".result"))
            if got != wanted:
                return False
        return True


@dataclass(frozen=True)
class Sequence:
    name: str
    tasks: tuple[Task, ...]
    triggered_on: tuple[Trigger, ...] = ()
    queue: str = "fifo"  # Bosun's extension: fifo | newest | cancel-in-progress | parallel


@dataclass(frozen=True)
class Stage:
    name: str
    sequences: tuple[Sequence, ...]

    def sequence(self, name: str) -> Sequence | None:
        return next((s for s in self.sequences if s.name == name), None)


@dataclass(frozen=True)
class Shipyard:
    name: str
    api_version: str
    stages: tuple[Stage, ...]
    warnings: tuple[str, ...] = ()  # what Keptn accepts but will never fire, e.g. a triggeredOn naming nothing

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def sequence(self, stage: str, name: str) -> Sequence | None:
        found = self.stage(stage)
        return found.sequence(name) if found else None

    def chained(self, stage: str, sequence: str, result: str, task_results: dict[str, str]):
        """(stage, sequence) pairs that `<stage>.<sequence>.finished` with this result triggers."""
        for candidate_stage in self.stages:
            for candidate in candidate_stage.sequences:
                for trigger in candidate.triggered_on:
                    if (trigger.stage, trigger.sequence) == (stage, sequence) and trigger.matches(
                        result, task_results
                    ):
                        yield candidate_stage, candidate
                        break


# --- parsing ---------------------------------------------------------------------------------

# The keys Bosun reads at each level; any other is named in a warning with its line (a typo such as
# `sequence:` for `sequences:` would otherwise be ignored in silence).
KNOWN_KEYS = {
    "document": ("apiVersion", "kind", "metadata", "spec"),
    "spec": ("stages",),
    "stage": ("name", "sequences"),
    "sequence": ("name", "tasks", "triggeredOn", "queue"),
    "task": ("name", "properties", "triggeredAfter", "startTimeout", "timeout", "heartbeatTimeout", "approval",
             "retry"),
    "retry": ("limit", "backoff", "on"),
    "approval": ("required", "group", "preventSelfApproval"),
    "trigger": ("event", "selector"),
}


def _unknown_keys(check: "_Checker", raw, path: str, level: str, warnings: list):
    if not isinstance(raw, dict):
        return
    known = KNOWN_KEYS[level]
    for key in raw:
        if key in known or (key is True and "on" in known):  # YAML 1.1 reads a bare `on:` key as true
            continue
        where = f"{path}.{key}" if path else str(key)
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (a {level} has {', '.join(known)})"
        line = check.locator.lines.get(where + "#key") or check.locator.line(where)
        warnings.append(f"line {line}: {where}: Bosun does not know this key{hint}; "
                        "it is ignored")


def _key_warnings(check: "_Checker", data: dict) -> list[str]:
    warnings: list[str] = []
    _unknown_keys(check, data, "", "document", warnings)
    _unknown_keys(check, data.get("spec"), "spec", "spec", warnings)
    for i, stage in enumerate(data["spec"]["stages"]):
        _unknown_keys(check, stage, f"spec.stages[{i}]", "stage", warnings)
        for j, sequence in enumerate(stage.get("sequences") or []):
            path = f"spec.stages[{i}].sequences[{j}]"
            _unknown_keys(check, sequence, path, "sequence", warnings)
            for k, task in enumerate(sequence.get("tasks") or []):
                _unknown_keys(check, task, f"{path}.tasks[{k}]", "task", warnings)
                if isinstance(task, dict):
                    _unknown_keys(check, task.get("approval"), f"{path}.tasks[{k}].approval", "approval", warnings)
                    _unknown_keys(check, task.get("retry"), f"{path}.tasks[{k}].retry", "retry", warnings)
            for k, trigger in enumerate(sequence.get("triggeredOn") or []):
                _unknown_keys(check, trigger, f"{path}.triggeredOn[{k}]", "trigger", warnings)
    return warnings


class _Checker:
    def __init__(self, locator: Locator):
        self.locator = locator

    def fail(self, path: str, message: str):
        raise ShipyardError(f"line {self.locator.line(path)}: {path or 'document'}: {message}")

    def mapping(self, value, path, what="a mapping"):
        if not isinstance(value, dict):
            self.fail(path, f"must be {what}")
        return value

    def name(self, value, path, pattern=NAME_RE):
        if not isinstance(value, str) or not value:
            self.fail(path, "is required and must be a string")
        if not pattern.match(value):
            self.fail(
                path,
                f"'{value}' is not a valid name: use lowercase letters, digits and hyphens, "
                "starting with a letter",
            )
        return value

    def duration(self, value, path):
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(path, str(exc))


def parse(text: str) -> Shipyard:
    """YAML text -> Shipyard, or ShipyardError naming the line and the field."""
    if not isinstance(text, str) or not text.strip():
        raise ShipyardError("line 1: document: the shipyard is empty")
    root, data = yamlsafe.load(text, ShipyardError)
    if root is None:
        raise ShipyardError("line 1: document: the shipyard is empty")
    check = _Checker(Locator(root))
    check.mapping(data, "", "a mapping with apiVersion, kind, metadata and spec")

    api_version = _check_api_version(check, data.get("apiVersion"))
    if data.get("kind") != "Shipyard":
        check.fail("kind", f"must be Shipyard, not {data.get('kind')!r}")
    metadata = check.mapping(data.get("metadata"), "metadata", "a mapping with a name")
    name = metadata.get("name")
    if not isinstance(name, str) or not name.strip():
        check.fail("metadata.name", "is required")
    spec = check.mapping(data.get("spec"), "spec", "a mapping with stages")
    raw_stages = spec.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        check.fail("spec.stages", "must be a non-empty list of stages")

    stages, seen_stages = [], set()
    for i, raw_stage in enumerate(raw_stages):
        path = f"spec.stages[{i}]"
        check.mapping(raw_stage, path, "a mapping with a name and sequences")
        stage_name = check.name(raw_stage.get("name"), f"{path}.name")
        if stage_name in seen_stages:
            check.fail(f"{path}.name", f"stage '{stage_name}' is defined twice")
        seen_stages.add(stage_name)
        stages.append((stage_name, path, _parse_sequences(check, raw_stage, path)))

    # triggeredOn may name any stage of the file, before or after this one: check once all are known.
    known = {(stage_name, seq.name) for stage_name, _, seqs in stages for seq in seqs}
    known |= {(stage_name, "evaluation") for stage_name, _, _ in stages}
    warnings = _key_warnings(check, data)
    for stage_name, path, seqs in stages:
        for j, seq in enumerate(seqs):
            for k, trigger in enumerate(seq.triggered_on):
                if (trigger.stage, trigger.sequence) not in known:  # Keptn accepts it; it never fires
                    where = f"{path}.sequences[{j}].triggeredOn[{k}].event"
                    warnings.append(f"line {check.locator.line(where)}: {where}: '{trigger.event}' names no "
                                    "sequence of this shipyard, so it never fires")

    built = []
    for stage_name, _, seqs in stages:
        if not any(s.name == "evaluation" for s in seqs):
            seqs.append(Sequence("evaluation", (Task("evaluation"),)))
        built.append(Stage(stage_name, tuple(seqs)))
    return Shipyard(name=name.strip(), api_version=api_version, stages=tuple(built), warnings=tuple(warnings))


VERSION_RE = re.compile(
    r"^v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def _check_api_version(check: _Checker, api_version) -> str:
    """Keptn's spellings: spec.keptn.sh/0.2.3, 0.2.0 without the prefix, v0.2.4, 0.2, 0.2.x, 0.3.0-dev."""
    if isinstance(api_version, (int, float)) and not isinstance(api_version, bool):
        api_version = str(api_version)  # `apiVersion: 0.2` reads as a number in YAML
    if not isinstance(api_version, str) or not api_version.strip():
        check.fail("apiVersion", "is required, e.g. spec.keptn.sh/0.2.3")
    api_version = api_version.strip()
    version = api_version.removeprefix("spec.keptn.sh/")
    match = VERSION_RE.match(version)
    if not match:
        check.fail("apiVersion", f"'{api_version}' is not spec.keptn.sh/ followed by a version such as 0.2.3")
    major = int(match.group(1))
    minor = int(match.group(2)) if (match.group(2) or "x").isdigit() else None
    if major == 0 and (minor is None or minor < 2):
        check.fail("apiVersion", f"version {version} is too old: Bosun reads spec.keptn.sh/0.2.0 and later")
    return api_version


QUEUE_POLICIES = ("fifo", "newest", "cancel-in-progress", "parallel")


def _parse_sequences(check: _Checker, raw_stage: dict, stage_path: str) -> list[Sequence]:
    raw_sequences = raw_stage.get("sequences", [])
    if raw_sequences is None:
        raw_sequences = []
    if not isinstance(raw_sequences, list):
        check.fail(f"{stage_path}.sequences", "must be a list of sequences")
    sequences, seen = [], set()
    for j, raw in enumerate(raw_sequences):
        path = f"{stage_path}.sequences[{j}]"
        check.mapping(raw, path, "a mapping with a name and tasks")
        seq_name = check.name(raw.get("name"), f"{path}.name")
        if seq_name in seen:
            check.fail(f"{path}.name", f"sequence '{seq_name}' is defined twice in this stage")
        seen.add(seq_name)
        raw_tasks = raw.get("tasks")
        if not isinstance(raw_tasks, list) or not raw_tasks:
            check.fail(f"{path}.tasks", "must be a non-empty list of tasks")
        tasks = tuple(_parse_task(check, t, f"{path}.tasks[{k}]") for k, t in enumerate(raw_tasks))
        raw_triggers = raw.get("triggeredOn") or []
        if not isinstance(raw_triggers, list):
            check.fail(f"{path}.triggeredOn", "must be a list of {event: <stage>.<sequence>.finished}")
        triggers = tuple(
            _parse_trigger(check, t, f"{path}.triggeredOn[{k}]") for k, t in enumerate(raw_triggers)
        )
        queue = raw.get("queue", "fifo")
        if queue not in QUEUE_POLICIES:
            check.fail(f"{path}.queue", f"{queue!r} is not a queue policy: use one of {', '.join(QUEUE_POLICIES)}")
        sequences.append(Sequence(seq_name, tasks, triggers, queue))
    return sequences


def _parse_task(check: _Checker, raw, path: str) -> Task:
    check.mapping(raw, path, "a mapping with a name")
    name = check.name(raw.get("name"), f"{path}.name", TASK_NAME_RE)
    properties = raw.get("properties")
    if properties is not None:
        check.mapping(properties, f"{path}.properties", "a mapping")
    if name == "approval" and properties:
        for key in ("pass", "warning"):
            if key in properties and properties[key] not in APPROVAL_MODES:
                check.fail(f"{path}.properties.{key}", "must be automatic or manual")
    durations = {}
    for key in ("triggeredAfter", "startTimeout", "timeout", "heartbeatTimeout"):
        durations[key] = check.duration(raw.get(key), f"{path}.{key}")
        if key != "triggeredAfter" and durations[key] is not None and durations[key] <= 0:
            check.fail(f"{path}.{key}", "must be longer than zero")
    approval = _parse_approval(check, raw.get("approval"), f"{path}.approval", name)
    retry = _parse_retry(check, raw.get("retry"), f"{path}.retry")
    return Task(
        name=name,
        properties=properties,
        triggered_after=durations["triggeredAfter"],
        start_timeout=durations["startTimeout"],
        timeout=durations["timeout"],
        heartbeat_timeout=durations["heartbeatTimeout"],
        approval=approval,
        retry=retry,
        where=f"line {check.locator.line(path + '.approval' if approval else path)}: {path}",
    )


MAX_RETRIES = 10
RETRY_ON = ("fail", "errored", "timedOut")


def _parse_retry(check: _Checker, raw, path: str) -> dict | None:
    """Bosun's retry policy: up to `limit` more attempts, `backoff` apart, when an attempt ends as one of `on`
    (fail: its result is fail; errored: its status is errored; timedOut: a timer ended it)."""
    if raw is None:
        return None
    check.mapping(raw, path, "a mapping with limit, backoff and on")
    limit = raw.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RETRIES:
        check.fail(f"{path}.limit", f"must be a whole number of retries from 1 to {MAX_RETRIES}, not {limit!r}")
    backoff = check.duration(raw.get("backoff"), f"{path}.backoff") or 0
    on = raw.get("on", raw.get(True, list(RETRY_ON)))  # YAML 1.1 reads a bare `on:` key as true
    if isinstance(on, str):
        on = [on]
    if not isinstance(on, list) or not on:
        check.fail(f"{path}.on", f"must be a list of {', '.join(RETRY_ON)}")
    for k, value in enumerate(on):
        if value not in RETRY_ON:
            close = difflib.get_close_matches(str(value), RETRY_ON, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            check.fail(f"{path}.on[{k}]", f"{value!r} is not one of {', '.join(RETRY_ON)}{hint}")
    return {"limit": limit, "backoff": backoff, "on": list(dict.fromkeys(on))}


MAX_APPROVERS = 20


def _parse_approval(check: _Checker, raw, path: str, task_name: str) -> dict | None:
    """Bosun's approval rule: `required` distinct approvers (1 to 20), optionally members of `group`, and
    with `preventSelfApproval` never the person who triggered the sequence."""
    if raw is None:
        return None
    if task_name != "approval":
        check.fail(path, "an approval rule applies to a task named approval only")
    check.mapping(raw, path, "a mapping with required, group and preventSelfApproval")
    required = raw.get("required", 1)
    if isinstance(required, bool) or not isinstance(required, int) or not 1 <= required <= MAX_APPROVERS:
        check.fail(f"{path}.required", f"must be a whole number of approvers from 1 to {MAX_APPROVERS}, "
                                       f"not {required!r}")
    group = raw.get("group", "")
    if not isinstance(group, str) or len(group) > 150:
        check.fail(f"{path}.group", "must be the name of a group of users")
    prevent = raw.get("preventSelfApproval", False)
    if not isinstance(prevent, bool):
        check.fail(f"{path}.preventSelfApproval", f"must be true or false, not {prevent!r}")
    return {"required": required, "group": group.strip(), "preventSelfApproval": prevent}


def _parse_trigger(check: _Checker, raw, path: str) -> Trigger:
    check.mapping(raw, path, "a mapping with an event")
    event = raw.get("event")
    match = re.match(r"^([a-z][a-z0-9-]*)\.([a-z][a-z0-9-]*)\.finished$", event or "") if isinstance(
        event, str
    ) else None
    if not match:
        check.fail(f"{path}.event", f"{event!r} must look like <stage>.<sequence>.finished")
    selector = {}
    raw_selector = raw.get("selector")
    if raw_selector is not None:
        check.mapping(raw_selector, f"{path}.selector", "a mapping with match")
        raw_match = check.mapping(raw_selector.get("match"), f"{path}.selector.match", "a mapping")
        for key, value in raw_match.items():
            key_path = f"{path}.selector.match.{key}"
            if not isinstance(key, str) or not (key == "result" or re.match(r"^[a-z0-9][a-z0-9_-]*\.result$", key)):
                check.fail(key_path, "only result or <task>.result can be matched")
            if value not in RESULTS:
                check.fail(key_path, f"{value!r} must be one of pass, warning, fail")
            selector[key] = value
    return Trigger(stage=match.group(1), sequence=match.group(2), selector=selector)
