"""A `bosun executor` lives through every bad answer: it logs it, backs off and goes on, and the jobs it runs
still report their results. `manage.py up` starts its local executor again when it dies."""

import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.faultproxy import NOT_JSON, THROTTLED, UNAUTHORIZED, UNAVAILABLE, FaultProxy
from tests.running import bosun, executors, python_job, shared_dir, wait_until  # noqa: F401 (fixtures)
from tests.test_up import server  # noqa: F401 (a fixture)


@pytest.fixture
def proxy(bosun):
    running = FaultProxy(bosun.base)
    yield running
    running.close()


def test_bad_answers_to_heartbeats_polls_and_results_do_not_stop_the_executor(executors, proxy, tmp_path):
    bosun = executors
    go_on = shared_dir() / "go-on"
    bosun.project("flaky", [{"name": "deployment", "heartbeatTimeout": "6s"}], [python_job("deployment", f"""
        import os, time
        print('working', flush=True)
        while not os.path.exists({str(go_on)!r}):
            time.sleep(0.05)
    """)])
    proxy.fail(r"/event/triggered/", NOT_JSON, UNAVAILABLE)  # its first looks for work
    # every other heartbeat fails (two in a row would miss the task's 6s heartbeat limit)
    proxy.fail(r"/heartbeat", UNAVAILABLE, None, THROTTLED, None, UNAUTHORIZED, None, NOT_JSON)
    proxy.fail(r"^/api/v1/event", UNAVAILABLE, THROTTLED)  # its first two tries to send .finished
    executor = bosun.executor("flaky", "exec-flaky", tmp_path, url=proxy.url)
    context = bosun.trigger("flaky")
    bosun.wait(lambda: proxy.pending(r"/heartbeat") == 0, seconds=60)
    go_on.touch()

    bosun.wait(lambda: bosun.state("flaky", context) == "finished", seconds=60)

    execution = bosun.execution("flaky", context)
    assert (execution["scope"]["result"], execution["scope"]["status"]) == ("pass", "succeeded")
    assert executor.poll() is None  # still running
    served = [status for path, status in proxy.served if "/heartbeat" in path]
    assert served == [503, 200, 429, 200, 401, 200, 200]
    assert [status for path, status in proxy.served if path.startswith("/api/v1/event")] == [503, 429]
    log = (tmp_path / "exec-flaky.log").read_text()
    assert "Traceback" not in log
    assert "heartbeat not answered" in log and "not JSON" in log


def executor_pids(up_pid: int) -> list[int]:
    """The `bosun executor` processes `manage.py up` started (its children), alive or not yet reaped."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == up_pid and b"executor" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_up_starts_its_local_executor_again_when_it_dies(server):
    process, port, log, tmp_path = server
    first = wait_until(lambda: executor_pids(process.pid))[0]

    subprocess.run(["kill", "-9", str(first)], check=True)

    again = wait_until(lambda: [pid for pid in executor_pids(process.pid) if pid != first])
    assert first not in executor_pids(process.pid)  # reaped, not left a zombie
    assert re.search(r"the local job executor exited with code -9; starting it again", log.read_text())
    # and the new one runs the demo's jobs
    token = re.search(r"API token for admin: (bsn_\S+)", log.read_text()).group(1)
    base = f"http://127.0.0.1:{port}"
    context = httpx.post(f"{base}/api/v1/event", headers={"x-token": token}, json={
        "type": "sh.keptn.event.dev.delivery.triggered",
        "data": {"project": "sockshop", "stage": "dev", "service": "carts"}}).json()["keptnContext"]

    def claimed():
        runs = httpx.get(f"{base}/api/controlPlane/v1/sequence-execution", headers={"x-token": token},
                         params={"project": "sockshop", "keptnContext": context}).json()["sequenceExecutions"]
        task = runs[0]["status"]["currentTask"] if runs else None
        return task and httpx.get(f"{base}/api/controlPlane/v1/task/{task['triggeredID']}",
                                  headers={"x-token": token}).json().get("claimedBy")

    assert str(process.pid) in wait_until(claimed)
    assert again[0] != first
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0


# --- a job that floods its output ----------------------------------------------------------------


def peak_memory_mb(pid: int) -> float:
    """The most memory (resident) the process has held so far."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def test_a_job_flooding_its_output_keeps_the_executor_small_and_still_times_out(executors, tmp_path):
    bosun = executors
    bosun.project("flood", [{"name": "deployment"}], [python_job("deployment", """
        import sys
        print("the first line", flush=True)
        line = "x" * 1023 + "\\n"
        while True:
            sys.stdout.write(line)
    """, timeout="3s", killGrace="1s")])
    executor = bosun.executor("flood", "exec-flood", tmp_path)
    context = bosun.trigger("flood")

    bosun.wait(lambda: bosun.state("flood", context) == "finished", seconds=60)

    execution = bosun.execution("flood", context)
    assert execution["status"]["message"] == "Job 'deployment' ran past its timeout of 3s and was stopped."
    assert peak_memory_mb(executor.pid) < 150
    log = bosun.log(execution["status"]["previousTasks"][0]["triggeredID"])
    assert "the first line" in log
    assert "[bosun] the job ran past its timeout of 3s" in log


def test_a_huge_result_file_is_ignored_without_reading_it(executors, tmp_path):
    bosun = executors
    bosun.project("bigresult", [{"name": "deployment"}], [python_job("deployment", """
        import os
        with open(os.path.join(os.environ["BOSUN_OUTPUT_DIR"], "result.json"), "wb") as out:
            out.truncate(300 * 1024 * 1024)  # sparse: 300 MB that take no disk
        print("done", flush=True)
    """)])
    executor = bosun.executor("bigresult", "exec-bigresult", tmp_path)
    context = bosun.trigger("bigresult")

    bosun.wait(lambda: bosun.state("bigresult", context) == "finished", seconds=60)

    execution = bosun.execution("bigresult", context)
    assert execution["scope"]["result"] == "pass"  # the exit code decides
    assert peak_memory_mb(executor.pid) < 150
    log = bosun.log(execution["status"]["previousTasks"][0]["triggeredID"])
    assert "[bosun] result.json is larger than 1024 KiB; it is ignored" in log


def test_an_invalid_result_file_is_noted_in_the_log(executors, tmp_path):
    bosun = executors
    bosun.project("badresult", [{"name": "deployment"}], [python_job("deployment", """
        import os
        open(os.path.join(os.environ["BOSUN_OUTPUT_DIR"], "result.json"), "w").write("{not json")
    """)])
    bosun.executor("badresult", "exec-badresult", tmp_path)
    context = bosun.trigger("badresult")

    bosun.wait(lambda: bosun.state("badresult", context) == "finished", seconds=60)

    task = bosun.execution("badresult", context)["status"]["previousTasks"][0]["triggeredID"]
    assert "[bosun] result.json is not valid JSON" in bosun.log(task)
