"""The `bosun` CLI and the Python SDK against a live Bosun (manage.py up) with a real job executor."""

import _thread
import json
import os
import re
import pty
import select
import stat
import subprocess
import sys
import threading
import time

import pytest
from rich.console import Console

from bosun import BosunError, Client
from bosun.watch import view
from tests.faultproxy import NOT_JSON, FaultProxy
from tests.running import ROOT, bosun, executors, gone, python_job  # noqa: F401  (fixtures)

SLOW = python_job("deployment", """
    import os, time
    print("working", os.getpid(), flush=True)
    open(os.path.join(os.environ["BOSUN_OUTPUT_DIR"], "report.txt"), "w").write("x" * 2048)
    time.sleep(float(os.environ.get("SECONDS_TO_RUN", "4")))
""", env={"SECONDS_TO_RUN": "4"})
TEST = python_job("test", """
    import json, os, sys
    labels = json.load(open(os.environ["BOSUN_EVENT_FILE"]))["data"].get("labels") or {}
    print("testing", flush=True)
    sys.exit(1 if labels.get("fail") == "true" else 0)
""")


@pytest.fixture
def cli(executors, tmp_path):
    """Run `bosun ...` as a person would, with BOSUN_URL/BOSUN_TOKEN and a config folder of its own."""
    env = {**os.environ, "BOSUN_URL": executors.base, "BOSUN_TOKEN": executors.token,
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "COLUMNS": "160"}

    def run(*args, stdin="", env_extra=None, timeout=60):
        return subprocess.run([sys.executable, "-m", "bosun", *args], cwd=ROOT, input=stdin, capture_output=True,
                              text=True, timeout=timeout, env={**env, **(env_extra or {})})

    run.env = env
    return run


@pytest.fixture
def shop(executors, tmp_path):
    """A project `cli` whose deployment takes 4 s (time enough for a few commands on a busy machine) and whose test fails on label fail=true."""
    if executors.http.get("/api/controlPlane/v1/project/cli").status_code == 404:
        executors.project("cli", [{"name": "deployment"}, {"name": "test"}], [SLOW, TEST], services=("carts", "orders"))
    executors.executor("cli", "exec-cli", tmp_path)
    return executors


def context_of(output: str) -> str:
    line = next(l for l in output.splitlines() if l.startswith("ID of context: "))
    return line.removeprefix("ID of context: ").strip()


# --- configuration and errors ---------------------------------------------------------------


def test_a_page_that_is_not_json_is_a_one_line_error_not_a_traceback(cli, executors):
    proxy = FaultProxy(executors.base)
    try:
        proxy.fail(r"sequence-execution", NOT_JSON)
        done = cli("get", "sequences", "--project", "cli", env_extra={"BOSUN_URL": proxy.url})
    finally:
        proxy.close()
    assert done.returncode == 3  # as good as unreachable: what answered is not Bosun
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().replace("\n", " ") == (
        "Error: GET /api/controlPlane/v1/sequence-execution answered 200 with a body that is not JSON "
        "(text/html, 46 bytes); is the URL Bosun's?")


def test_auth_reads_the_token_from_standard_input_rather_than_the_command_line(cli, executors):
    done = cli("auth", "--url", executors.base, stdin=executors.token + "\n", env_extra={"BOSUN_TOKEN": ""})
    assert done.returncode == 0, done.stderr
    assert "accepted the token" in done.stdout
    assert "process list" not in done.stderr
    warned = cli("auth", "--url", executors.base, "--token", executors.token, env_extra={"BOSUN_TOKEN": ""})
    assert "visible to other users in the process list" in warned.stderr


def test_auth_saves_url_and_token_privately_and_later_commands_use_them(cli, executors, tmp_path):
    done = cli("auth", "--url", executors.base, "--token", executors.token, env_extra={"BOSUN_TOKEN": ""})
    assert done.returncode == 0 and "accepted the token" in done.stdout
    path = tmp_path / "config" / "bosun" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": executors.base, "token": executors.token}
    listed = cli("get", "sequences", "--project", "cli-none", env_extra={"BOSUN_URL": "", "BOSUN_TOKEN": ""})
    assert listed.returncode == 5 and "Project 'cli-none' does not exist" in listed.stderr


def test_errors_are_one_line_with_documented_exit_codes(cli):
    bad_token = cli("get", "sequences", "--project", "x", env_extra={"BOSUN_TOKEN": "bsn_wrong"})
    assert bad_token.returncode == 4 and "Error (401)" in bad_token.stderr and "Traceback" not in bad_token.stderr
    unreachable = cli("get", "sequences", "--project", "x", env_extra={"BOSUN_URL": "http://127.0.0.1:9"})
    assert unreachable.returncode == 3 and "cannot be reached" in unreachable.stderr
    unset = cli("get", "sequences", "--project", "x", env_extra={"BOSUN_URL": ""})
    assert unset.returncode == 2 and "bosun auth" in unset.stderr
    assert "Traceback" not in unreachable.stderr + unset.stderr


# --- a Keptn user's story: two triggers, pause, resume, abort -------------------------------------------


def test_a_keptn_users_story_with_bosun_in_place_of_keptn(cli, shop):
    first = cli("trigger", "delivery", "--project=cli", "--service=carts", "--image=docker.io/keptnexamples/carts",
                "--tag=0.11.1")
    second = cli("trigger", "delivery", "--project=cli", "--service=carts", "--image=docker.io/keptnexamples/carts",
                 "--tag=0.11.2")
    assert first.returncode == 0 and second.returncode == 0
    one, two = context_of(first.stdout), context_of(second.stdout)
    paused = cli("pause", "sequence", f"--keptn-context={one}")  # its 4s deployment goes on
    assert paused.stdout.splitlines() == [
        "The current sequence execution is paused.",
        f"To resume the sequence execution, execute: bosun resume sequence --context={one}"], paused.stderr
    assert shop.state("cli", one) == "paused"
    waiting = json.loads(cli("get", "sequences", "--project", "cli", "--status", "waiting", "-o", "json").stdout)
    assert [(w["scope"]["keptnContext"], w["queue"]["position"], w["queue"]["blockedBy"]["keptnContext"])
            for w in waiting] == [(two, 1, one)]
    blocking = json.loads(cli("get", "blocking", "--project", "cli", "--stage", "dev", "--service", "carts",
                              "-o", "json").stdout)
    assert blocking["scope"]["keptnContext"] == one
    table = cli("get", "sequences", "--project", "cli", "--service", "carts")
    assert "waiting" in table.stdout and f"#1 ← {one[:8]}" in table.stdout
    aborted = cli("abort", "sequence", f"--keptn-context={two}", "--yes")  # it waits: aborted at once
    assert aborted.returncode == 0 and aborted.stdout.strip() == "The sequence execution is aborted."
    again = cli("abort", "sequence", f"--keptn-context={two}", "--yes")
    assert again.returncode == 6 and "it is aborted" in again.stderr
    assert cli("resume", "sequence", f"--keptn-context={one}").stdout.strip() == "The sequence execution resumes."
    assert shop.state("cli", one) in ("started", "finished")


def test_abort_without_a_terminal_refuses_without_yes_and_changes_nothing(cli, shop):
    context = context_of(cli("trigger", "delivery", "--project", "cli", "--service", "orders", "--image", "o",
                             "--tag", "1").stdout)
    refused = cli("abort", "sequence", "--context", context)
    assert refused.returncode == 7 and "without --yes" in refused.stderr
    assert shop.state("cli", context) == "started"
    shop.control("cli", context, state="abort", mode="force")


def terminal(args: list[str], env: dict, answer: str | None = None, columns: int | None = None) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal (of `columns` columns, as a person's window) and answer its y/N
    question as a person would; returns its exit code and what it showed, without colour codes."""
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    if columns:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen([sys.executable, "-m", "bosun", *args], cwd=ROOT, env=env, stdin=follower,
                               stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    output, answered = b"", False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if answer is not None and not answered and b"(y/[N])?" in output:
                os.write(leader, answer.encode() + b"\n")
                answered = True
        elif process.poll() is not None:
            break
    code = process.wait(timeout=10)
    os.close(leader)
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode(errors="replace")).replace("\r", "")


def answer_prompt(args: list[str], env: dict, answer: str) -> tuple[int, str]:
    return terminal(args, env, answer=answer)


def on_terminal(args: list[str], env: dict, columns: int) -> str:
    return terminal(args, env, columns=columns)[1]


def test_tables_never_break_a_word_in_an_80_column_terminal(cli, shop):
    first = context_of(cli("trigger", "delivery", "--project", "cli", "--service", "carts", "--image", "c",
                           "--tag", "80").stdout)
    context_of(cli("trigger", "delivery", "--project", "cli", "--service", "carts", "--image", "c",
                   "--tag", "81").stdout)
    shop.wait(lambda: shop.current_task("cli", first))
    narrow = on_terminal(["get", "sequences", "--project", "cli"], cli.env, 80)
    lines = [line for line in narrow.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= 80, narrow
    rows = [line for line in lines if re.match(r"^ ?[0-9a-f]{8} ", line)]
    assert rows and all(" · delivery · " in row for row in rows), narrow  # no word folded
    assert any("dev/carts · delivery · waiting · #1 ← " in row for row in rows), narrow
    assert "shortened here" in narrow
    wide = on_terminal(["get", "sequences", "--project", "cli"], cli.env, 200)
    assert first in wide and "shortened" not in wide  # the whole context where it fits
    events = on_terminal(["get", "events", "--context", first], cli.env, 80)
    assert max(len(line) for line in events.splitlines()) <= 80, events
    assert "dev.delivery.triggered" in events


def test_the_y_n_question_is_answered_on_a_terminal(cli, shop):
    context = context_of(cli("trigger", "delivery", "--project", "cli", "--service", "orders", "--image", "o",
                             "--tag", "2").stdout)
    code, output = answer_prompt(["abort", "sequence", "--context", context, "--force"], cli.env, "n")
    assert "You are about to abort (force) the following:" in output
    assert "dev delivery of orders" in output and code == 7 and "Nothing was done." in output
    assert shop.state("cli", context) == "started"
    code, output = answer_prompt(["abort", "sequence", "--context", context, "--force"], cli.env, "y")
    assert code == 0 and "The sequence execution is aborted." in output
    assert shop.state("cli", context) == "aborted"


def test_a_force_abort_warns_that_the_job_may_still_run_and_says_how_to_kill_it(cli, shop):
    context = context_of(cli("trigger", "delivery", "--project", "cli", "--service", "orders", "--image", "o",
                             "--tag", "9").stdout)
    running = shop.wait(lambda: (t := shop.current_task("cli", context)) and t.get("state") == "started" and t)
    claimed = shop.task(running["triggeredID"])["claimedBy"]
    forced = cli("abort", "sequence", "--context", context, "--force", "--yes")
    assert forced.returncode == 0 and forced.stdout.strip() == "The sequence execution is aborted."
    assert forced.stderr.strip() == (
        f"Warning: Its task 'deployment' was abandoned, but its job may still be running on {claimed}: to stop "
        f"it, abort again with mode kill (bosun abort sequence --context {context} --kill, or the Bridge's "
        "'Kill its abandoned task').")
    killed = cli("abort", "sequence", "--context", context, "--kill", "--yes")
    assert killed.returncode == 0, killed.stderr


# --- following a run ------------------------------------------------------------------------


def test_watch_exits_0_when_the_delivery_passes_and_1_when_it_fails(cli, shop):
    passed = cli("trigger", "delivery", "--project", "cli", "--service", "carts", "--image", "c", "--tag", "3",
                 "--watch")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "dev delivery: started · deployment" in passed.stdout and passed.stdout.strip().endswith("Outcome: pass")
    failed = cli("trigger", "delivery", "--project", "cli", "--service", "carts", "--image", "c", "--tag", "4",
                 "-l", "fail=true", "--watch")
    assert failed.returncode == 1 and failed.stdout.strip().endswith("Outcome: fail")


def test_trigger_delivery_takes_the_tag_once_and_refuses_two_different_ones(cli, shop):
    same = cli("trigger", "delivery", "--project", "cli", "--service", "carts", "--image", "c:5", "--tag", "5")
    assert same.returncode == 0, same.stderr
    newest = shop.http.get("/api/controlPlane/v1/sequence-execution", params={"project": "cli", "pageSize": 1})
    assert newest.json()["sequenceExecutions"][0]["inputProperties"]["configurationChange"]["values"]["image"] == "c:5"
    differ = cli("trigger", "delivery", "--project", "cli", "--service", "carts", "--image", "c:5", "--tag", "6")
    assert differ.returncode == 2
    assert differ.stderr.strip() == "Error: The image already ends with tag 5 and the tag says 6: give it once."


def test_a_trigger_of_a_sequence_that_does_not_exist_says_so(cli, shop):
    done = cli("trigger", "sequence", "nosuch", "--project", "cli", "--stage", "dev", "--service", "carts")
    assert done.returncode == 1 and "ID of context: " in done.stdout
    assert "It ended at once: Stage 'dev' has no sequence 'nosuch'; it has delivery" in done.stderr


def test_an_ended_delivery_is_re_run_from_the_cli_and_the_sdk(cli, shop):
    first = cli("trigger", "delivery", "--project", "cli", "--service", "orders", "--image", "o:1", "-l", "fail=true")
    context = context_of(first.stdout)
    shop.wait(lambda: shop.state("cli", context) == "finished")
    early = cli("trigger", "sequence", "--stage", "dev")
    assert early.returncode == 2
    assert "Missing NAME, --project, --service" in early.stderr
    again = cli("trigger", "sequence", "--context", context, "--stage", "dev", "--reason", "registry was down",
                "--watch")
    assert again.returncode == 1, again.stderr  # the same input: the test fails again
    assert again.stdout.startswith("Re-run of delivery (orders) in dev: started.\nID of context: " + context)
    assert "Outcome: fail" in again.stdout
    audit = shop.http.get(f"/api/controlPlane/v1/sequence/cli/{context}/audit").json()["actions"]
    assert [(a["command"], a["source"], a["reason"]) for a in audit] == [("retrigger", "cli", "registry was down")]
    run = Client(shop.base, shop.token).sequence(context)
    fresh = run.rerun("dev", "delivery", new_context=True, reason="from the start")
    assert fresh.context != context and fresh.rerun_answer["rerunOf"]["keptnContext"] == context
    assert fresh.wait(timeout=30) == "fail"
    refused = cli("trigger", "sequence", "--context", context, "--stage", "prod")
    assert refused.returncode == 5 and f"Context {context} has no sequence in stage 'prod'." in refused.stderr


def test_a_failed_delivery_is_retried_from_its_failed_task_from_the_cli_and_the_sdk(cli, shop):
    first = cli("trigger", "delivery", "--project", "cli", "--service", "orders", "--image", "o:2", "-l", "fail=true")
    context = context_of(first.stdout)
    shop.wait(lambda: shop.state("cli", context) == "finished", seconds=60)
    failed = shop.current_task("cli", context) or shop.execution("cli", context)["status"]["previousTasks"][-1]
    assert failed["name"] == "test"
    done = cli("task", "retry", failed["triggeredID"], "--reason", "the test database was down")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"Retrying test in dev: attempt 2, triggered id [0-9a-f-]{36}\.\n", done.stdout), done.stdout
    second = done.stdout.rsplit(" ", 1)[1].rstrip(".\n")
    shop.wait(lambda: shop.state("cli", context) == "finished", seconds=60)  # the same input fails again
    answer = Client(shop.base, shop.token).task(second).retry("once more")
    assert (answer["attempt"], answer["sequenceState"], answer["retryOf"]) == (3, "started", second)
    refused = cli("task", "retry", failed["triggeredID"])  # an earlier attempt is not where it ended
    assert refused.returncode == 6 and "cannot be retried" in refused.stderr
    audit = shop.http.get(f"/api/controlPlane/v1/sequence/cli/{context}/audit").json()["actions"]
    assert [(a["command"], a["source"]) for a in audit] == [("retry", "cli"), ("retry", "api")]


def test_a_freeze_window_from_the_cli_keeps_a_delivery_waiting_until_it_is_let_through(cli, executors):
    from datetime import datetime, timedelta, timezone

    executors.project("frozen", [{"name": "deployment"}], [], services=("carts",))
    now = datetime.now(timezone.utc)
    created = cli("freeze", "create", "release-week", "--project", "frozen", "--stage", "dev", "--reason",
                  "release week", "--start", (now - timedelta(minutes=1)).isoformat(),
                  "--end", (now + timedelta(hours=2)).isoformat())
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Freeze window 'release-week' of frozen is created: on now, until ")
    bad = cli("freeze", "create", "nightly", "--project", "frozen", "--cron", "0 25 * * *", "--duration", "1h")
    assert bad.returncode == 6 and "cron: 25 is outside the hour field's 0-23" in bad.stderr
    listed = json.loads(cli("get", "freezes", "--project", "frozen", "-o", "json").stdout)
    assert [(w["name"], w["active"], w["stages"]) for w in listed] == [("release-week", True, ["dev"])]
    table = cli("freeze", "list", "--project", "frozen").stdout
    assert "release-week" in table and "on until" in table and "staging" not in table and "dev" in table
    context = context_of(cli("trigger", "delivery", "--project", "frozen", "--service", "carts", "--image",
                             "c:1").stdout)
    assert executors.state("frozen", context) == "waiting"
    queue = executors.execution("frozen", context)["queue"]
    assert queue["frozen"]["window"] == "release-week"
    through = cli("freeze", "let-through", "--context", context, "--stage", "dev", "--reason", "hotfix")
    assert through.returncode == 0, through.stderr
    assert through.stdout == "Let through: the sequence in dev is started.\n"
    deleted = cli("freeze", "delete", "release-week", "--project", "frozen")
    assert deleted.stdout == "Freeze window 'release-week' of project 'frozen' is deleted.\n"
    assert json.loads(cli("freeze", "list", "--project", "frozen", "-o", "json").stdout) == []


def test_send_event_from_a_file_and_read_the_events(cli, shop, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "sh.keptn.event.dev.delivery.triggered", "source": "file",
                                 "data": {"project": "cli", "stage": "dev", "service": "orders"}}))
    sent = cli("send", "event", "-f", str(event))
    assert sent.returncode == 0
    context = context_of(sent.stdout)
    shop.wait(lambda: shop.state("cli", context) == "finished")
    events = json.loads(cli("get", "events", "--context", context, "-o", "json").stdout)
    assert [e["type"].removeprefix("sh.keptn.event.") for e in events][:3] == [
        "dev.delivery.triggered", "deployment.triggered", "deployment.started"]
    assert "dev.delivery.finished" in cli("get", "events", "--context", context).stdout
    assert cli("get", "events", "--context", context, "--type", "sh.keptn.event.test.finished", "-o",
               "yaml").stdout.startswith("- specversion:")


# --- tasks ------------------------------------------------------------------------------------


def test_task_status_info_logs_and_kill(cli, shop):
    context = context_of(cli("trigger", "delivery", "--project", "cli", "--service", "orders", "--image", "o",
                             "--tag", "5").stdout)
    task = shop.running_task("cli", context, "working")["triggeredID"]
    assert cli("task", "status", task).stdout.strip() == "started"
    logs = cli("task", "logs", task, "--follow")  # follows until the job ends
    assert "working" in logs.stdout and logs.returncode == 0
    info = cli("task", "info", task)
    assert "computation time" in info.stdout and "00:00:0" in info.stdout and "report.txt" in info.stdout
    unknown = cli("task", "kill", "no-such-task", "--yes")
    assert unknown.returncode == 5 and "No task was triggered with id no-such-task" in unknown.stderr
    another = context_of(cli("trigger", "delivery", "--project", "cli", "--service", "orders", "--image", "o",
                             "--tag", "6").stdout)
    running = shop.running_task("cli", another, "working")["triggeredID"]
    killed = cli("task", "kill", running, "--yes", "--reason", "enough")
    assert killed.stdout.strip() == f"Successfully sent kill request for task {running}."
    assert shop.wait(lambda: shop.task(running)["state"] == "killed")
    assert shop.execution("cli", another)["scope"]["result"] == "fail"


def test_task_finish_by_hand(cli, executors, tmp_path):
    executors.project("manual", [{"name": "deployment"}], [])
    context = executors.trigger("manual")
    task = executors.current_task("manual", context)["triggeredID"]
    done = cli("task", "finish", task, "--result", "fail", "--status", "errored", "--reason", "stuck", "--yes")
    assert done.returncode == 0 and "is finished (fail)" in done.stdout
    assert executors.execution("manual", context)["scope"]["result"] == "fail"


# --- the live view ----------------------------------------------------------------------------


def test_the_watch_view_shows_progress_and_blockers(cli, shop):
    one = context_of(cli("trigger", "delivery", "--project", "cli", "--service", "carts", "--image", "c",
                         "--tag", "6").stdout)
    cli("trigger", "delivery", "--project", "cli", "--service", "carts", "--image", "c", "--tag", "7")
    console = Console(record=True, width=140)
    console.print(view(Client(shop.base, shop.token), "cli"))
    text = console.export_text()
    assert "waiting #1" in text and f"delivery {one[:8]} (started)" in text and "0/2" in text
    once = cli("watch", "--project", "cli", "--once")
    assert once.returncode == 0 and "running or waiting" in once.stdout
    missing = cli("watch", "--project", "nope", "--once")
    assert missing.returncode == 5


# --- the SDK ----------------------------------------------------------------------------------


def test_the_sdk_triggers_waits_and_reports_task_facts(shop):
    client = Client(shop.base, shop.token)
    run = client.trigger_delivery("cli", "orders", "docker.io/keptnexamples/orders", tag="1.0")
    assert run.wait(timeout=30) == "pass"
    deployment = run.tasks()[0]
    assert deployment.get_status() == "success"
    assert deployment.get_machine_type().startswith(os.uname().nodename)
    seconds = round(deployment.info()["facts"]["computationSeconds"])
    assert seconds >= 4  # the job slept 4 s
    assert deployment.get_computation_time() == f"00:00:{seconds:02d}"
    files = deployment.get_output_files_info()
    assert [f["name"] for f in files] == ["report.txt"]
    assert "2.00 KB      report.txt" in str(files)
    assert "working" in deployment.logs()
    with pytest.raises(BosunError) as caught:
        client.sequence("00000000-0000-0000-0000-000000000000")
    assert caught.value.code == 404


def test_the_task_story_of_seed_004_runs_as_written(shop):
    """Inductiva's `Task`: status, machine and computation time while it runs and once it ended; `wait()`; and
    `with task.sync_context(): task.wait()`, where Ctrl+C kills the task."""
    import re

    from bosun.sdk import Task

    client = Client(shop.base, shop.token)
    run = client.trigger_delivery("cli", "orders", "docker.io/keptnexamples/orders", tag="3.0",
                                  labels={"fail": "true"})
    task = Task(shop.running_task("cli", run.context, "working")["triggeredID"], client)  # as from an earlier session
    assert task.get_status() == "started"
    assert re.fullmatch(r"00:00:0\d", task.get_computation_time())  # running: the time since it started
    assert task.get_machine_type().startswith(os.uname().nodename)
    assert task.wait(timeout=30) == "success"
    test = run.tasks()[1]
    assert test.wait(timeout=30) == "failed"  # its job exits 1 on fail=true

    again = client.trigger_delivery("cli", "orders", "docker.io/keptnexamples/orders", tag="3.1")
    running = Task(shop.running_task("cli", again.context, "working")["triggeredID"], client)
    pid = shop.task(running.triggered_id)["facts"]["pid"]
    threading.Timer(0.3, _thread.interrupt_main).start()  # as Ctrl+C would
    with pytest.raises(KeyboardInterrupt):
        with running.sync_context():
            running.wait(timeout=30)
    assert shop.wait(lambda: gone(pid), seconds=10)
    assert shop.wait(lambda: running.get_status() == "killed")


def test_sync_context_kills_the_running_job_when_the_wait_is_interrupted(shop):
    client = Client(shop.base, shop.token)
    run = client.trigger_sequence("delivery", "cli", "dev", "orders", data={})
    task = shop.running_task("cli", run.context, "working")
    pid = shop.task(task["triggeredID"])["facts"]["pid"]
    threading.Timer(0.3, _thread.interrupt_main).start()  # as Ctrl+C would
    with pytest.raises(KeyboardInterrupt):
        with run.sync_context():
            run.wait(timeout=30)
    assert shop.state("cli", run.context) == "aborted"
    assert shop.wait(lambda: gone(pid), seconds=10)
    assert shop.wait(lambda: shop.task(task["triggeredID"])["state"] == "killed")


def test_trigger_sequence_get_sequence_approve_and_decline(cli, executors):
    executors.project("gated", [{"name": "approval", "properties": {"pass": "manual", "warning": "manual"}}], [])
    first = context_of(cli("trigger", "sequence", "delivery", "--project", "gated", "--stage", "dev", "--service",
                           "carts", "-l", "owner=team-a", "-d", "configurationChange.values.image=carts:9").stdout)
    shown = json.loads(cli("get", "sequence", first, "-o", "json").stdout)
    assert shown[0]["status"]["state"] == "waitingForApproval"
    assert shown[0]["inputProperties"]["labels"] == {"owner": "team-a"}
    assert shown[0]["inputProperties"]["configurationChange"] == {"values": {"image": "carts:9"}}
    assert "waitingForApproval" in cli("get", "sequence", first).stdout
    task = shown[0]["status"]["currentTask"]["triggeredID"]
    approved = cli("approve", task)
    assert approved.returncode == 0 and approved.stdout.strip() == "Approved; the sequence is finished."
    assert cli("approve", task).returncode == 6  # not waiting any more
    second = context_of(cli("trigger", "sequence", "delivery", "--project", "gated", "--stage", "dev",
                            "--service", "carts").stdout)
    task = executors.current_task("gated", second)["triggeredID"]
    declined = cli("decline", task, "--reason", "not today")
    assert declined.stdout.strip() == "Declined; the sequence is finished."
    assert executors.execution("gated", second)["scope"]["result"] == "fail"
    assert cli("get", "sequence", "00000000-0000-0000-0000-000000000000").returncode == 5


def test_approve_under_a_rule_says_who_is_still_needed(cli, executors):
    executors.project("two-keys", [{"name": "approval", "properties": {"pass": "manual", "warning": "manual"},
                                    "approval": {"required": 2}}], [])
    context = context_of(cli("trigger", "sequence", "delivery", "--project", "two-keys", "--stage", "dev",
                             "--service", "carts").stdout)
    task = executors.current_task("two-keys", context)["triggeredID"]
    first = cli("approve", task, "--reason", "looks fine")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == ("Approved (1 of 2); the sequence is waitingForApproval. Still needed: 1 more "
                                    "approval, each from a different person.")
    again = cli("approve", task)
    assert again.returncode == 6 and "approved this task already" in again.stderr


def test_get_sequences_says_a_delivery_that_failed_in_production_was_rolled_back(cli, executors):
    from sequences.demo import DEMO_SHIPYARD

    http = executors.http
    assert http.post("/api/controlPlane/v1/project", json={
        "name": "rolled", "shipyard": DEMO_SHIPYARD.replace("shipyard-sockshop", "rolled")}).status_code == 201
    assert http.post("/api/controlPlane/v1/project/rolled/service", json={"serviceName": "carts"}).status_code == 201
    context = executors.trigger("rolled")

    def open_task():
        runs = http.get("/api/controlPlane/v1/sequence-execution",
                        params={"project": "rolled", "keptnContext": context}).json()["sequenceExecutions"]
        return next(((run, run["status"]["currentTask"]) for run in runs if run["status"]["currentTask"]), None)

    while (found := open_task()) is not None:  # an executor of our own: production's test fails
        run, task = found
        failing = run["scope"]["stage"] == "production" and task["name"] == "test"
        assert http.post("/api/v1/event", json={
            "type": f"sh.keptn.event.{task['name']}.finished", "source": "test", "shkeptncontext": context,
            "triggeredid": task["triggeredID"], "data": {
                "project": "rolled", "stage": run["scope"]["stage"], "service": "carts",
                "result": "fail" if failing else "pass", "status": "succeeded"}}).status_code == 202

    done = cli("get", "sequences", "--project", "rolled", "--stage", "production")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[2]: line for line in done.stdout.splitlines() if line.strip().startswith(context)}
    assert "failed (rolled back)" in rows["delivery"]
    assert "succeeded" in rows["rollback"] and "failed" not in rows["rollback"]
