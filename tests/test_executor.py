"""The job executor with real processes: a real `manage.py up`, real `bosun executor`s, real jobs."""

import json
import os
import signal
import socket

import httpx

from tests.running import JOB_PYTHON, bosun, executors, gone, proc_state, python_job, shared_dir  # noqa: F401


# --- a job runs, and everything about it arrives --------------------------------------------


def test_a_job_runs_and_its_log_files_machine_and_time_arrive(executors, tmp_path):
    bosun = executors
    bosun.project("runs", [{"name": "deployment"}, {"name": "release"}], [
        python_job("deployment", """
            import json, os, time
            event = json.load(open(os.environ["BOSUN_EVENT_FILE"]))
            print("deploying", event["data"]["service"], flush=True)
            for i in range(3):
                time.sleep(0.2); print(f"step {i + 1} of 3", flush=True)
            out = os.environ["BOSUN_OUTPUT_DIR"]
            open(os.path.join(out, "manifest.yaml"), "w").write("replicas: 2\\n")
            os.makedirs(os.path.join(out, "reports"))
            open(os.path.join(out, "reports", "summary.txt"), "w").write("ok\\n" * 100)
            json.dump({"message": "deployed 2 replicas", "data": {"deployment": {"url": "http://carts.dev"}}},
                      open(os.path.join(out, "result.json"), "w"))
        """),
        python_job("release", """
            import json, os
            event = json.load(open(os.environ["BOSUN_EVENT_FILE"]))
            print("releasing", event["data"]["deployment"]["url"], flush=True)
        """),
    ])
    bosun.executor("runs", "exec-runs", tmp_path)
    context = bosun.trigger("runs")
    bosun.wait(lambda: bosun.state("runs", context) == "finished")
    execution = bosun.execution("runs", context)
    assert execution["scope"]["result"] == "pass"
    deployment, release = execution["status"]["previousTasks"]
    task = bosun.task(deployment["triggeredID"])
    facts = task["facts"]
    assert task["claimedBy"] == "exec-runs"
    assert facts["machine"] == socket.gethostname() and facts["platform"].startswith("Linux")
    assert facts["exitCode"] == 0 and facts["computationSeconds"] >= 0.6
    assert sorted((f["name"], f["size"]) for f in facts["outputFiles"]) == [
        ("manifest.yaml", 12), ("reports/summary.txt", 300), ("result.json", 87)]
    assert facts["outputBytes"] == 399
    log = bosun.log(deployment["triggeredID"])
    assert "deploying carts\nstep 1 of 3\nstep 2 of 3\nstep 3 of 3\n" in log
    finished = bosun.http.get("/api/v1/event", params={
        "keptnContext": context, "type": "sh.keptn.event.deployment.finished"}).json()["events"][0]
    assert finished["source"] == "exec-runs"
    assert finished["data"]["message"] == "deployed 2 replicas"
    # what result.json set reached the next task
    assert "releasing http://carts.dev" in bosun.log(release["triggeredID"])


def test_a_failing_job_fails_its_task_with_the_exit_code(executors, tmp_path):
    bosun = executors
    bosun.project("fails", [{"name": "test"}], [python_job("test", "import sys; print('1 failed'); sys.exit(3)")])
    bosun.executor("fails", "exec-fails", tmp_path)
    context = bosun.trigger("fails")
    bosun.wait(lambda: bosun.state("fails", context) == "finished")
    execution = bosun.execution("fails", context)
    assert (execution["scope"]["result"], execution["scope"]["status"]) == ("fail", "errored")
    assert execution["status"]["message"] == "Job 'test' exited with code 3."
    assert bosun.task(execution["status"]["previousTasks"][0]["triggeredID"])["facts"]["exitCode"] == 3


def test_two_executors_one_task_it_runs_once(executors, tmp_path):
    bosun = executors
    ledger = shared_dir() / "ledger.txt"
    bosun.project("once", [{"name": "deployment"}], [python_job("deployment", f"""
        import os, time
        open({str(ledger)!r}, "a").write(os.environ["BOSUN_TRIGGERED_ID"] + "\\n")
        time.sleep(0.5)
    """)], services=("a", "b", "c", "d"))
    bosun.executor("once", "exec-one", tmp_path, concurrency=4)
    bosun.executor("once", "exec-two", tmp_path, concurrency=4)
    bosun.wait(lambda: all("running jobs of once" in (tmp_path / f"{name}.log").read_text()
                           for name in ("exec-one", "exec-two")))  # both look for work
    contexts = [bosun.trigger("once", service) for service in "abcd"]
    for context in contexts:
        bosun.wait(lambda: bosun.state("once", context) == "finished")
    runs = ledger.read_text().split()
    assert len(runs) == 4 and len(set(runs)) == 4
    claimed_by = {bosun.task(t)["claimedBy"] for t in runs}
    assert claimed_by <= {"exec-one", "exec-two"}
    for context in contexts:
        started = bosun.http.get("/api/v1/event", params={
            "keptnContext": context, "type": "sh.keptn.event.deployment.started"}).json()["events"]
        assert len(started) == 1


# --- control reaches the process ------------------------------------------------------------


def test_a_graceful_abort_lets_a_job_that_handles_sigterm_end_cleanly(executors, tmp_path):
    bosun = executors
    bosun.project("graceful", [{"name": "deployment"}], [python_job("deployment", """
        import signal, sys, time
        def stop(*_):
            print("cleaning up", flush=True); time.sleep(0.3); print("clean", flush=True); sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        print("working", flush=True)
        time.sleep(60)
    """)])
    bosun.executor("graceful", "exec-graceful", tmp_path)
    context = bosun.trigger("graceful")
    task = bosun.running_task("graceful", context, "working")
    pid = bosun.task(task["triggeredID"])["facts"]["pid"]
    assert bosun.control("graceful", context, state="abort", reason="wrong build").json()["state"] == "aborting"
    bosun.wait(lambda: bosun.state("graceful", context) == "aborted")
    log = bosun.log(task["triggeredID"])
    assert "cancel requested: SIGTERM" in log and "cleaning up\nclean\n" in log
    assert bosun.task(task["triggeredID"])["facts"]["exitCode"] == 0
    assert bosun.wait(lambda: gone(pid), seconds=5)


def test_kill_sigkills_a_job_that_traps_sigterm_and_its_children(executors, tmp_path):
    bosun = executors
    pids = shared_dir() / "pids.json"
    bosun.project("stubborn", [{"name": "deployment"}], [python_job("deployment", f"""
        import json, os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, lambda *_: print("SIGTERM? no.", flush=True))
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        json.dump({{"job": os.getpid(), "child": child.pid}}, open({str(pids)!r}, "w"))
        print("working", flush=True)
        while True:
            time.sleep(0.1)
    """, killGrace="1s")])
    bosun.executor("stubborn", "exec-stubborn", tmp_path)
    context = bosun.trigger("stubborn")
    task = bosun.running_task("stubborn", context, "working")
    job, child = json.loads(pids.read_text()).values()
    assert not gone(job) and not gone(child)
    assert bosun.control("stubborn", context, state="abort", mode="kill").status_code == 200
    bosun.wait(lambda: gone(job) and gone(child), seconds=10, every=0.02)
    found = bosun.wait(lambda: (t := bosun.task(task["triggeredID"]))["state"] == "killed" and t)
    assert "confirmed" not in found["message"]  # the executor confirmed it
    log = bosun.log(task["triggeredID"])
    assert "SIGTERM? no." in log and "SIGKILL" in log
    assert bosun.state("stubborn", context) == "aborted"


def test_kill_reaches_a_child_that_left_the_job_s_session(executors, tmp_path):
    bosun = executors
    pids = shared_dir() / "pids.json"
    bosun.project("escape", [{"name": "deployment"}], [python_job("deployment", f"""
        import json, os, subprocess, sys, time
        left = {str(pids) + ".left"!r}
        child = subprocess.Popen([sys.executable, "-c", "import os, signal, sys, time; os.setsid(); "
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); open(sys.argv[1], 'w').close(); "
                                  "time.sleep(600)", left])
        while not os.path.exists(left):  # it has left the job's process group
            time.sleep(0.01)
        json.dump({{"job": os.getpid(), "child": child.pid}}, open({str(pids)!r}, "w"))
        print("working", flush=True)
        time.sleep(600)
    """, killGrace="1s")])
    bosun.executor("escape", "exec-escape", tmp_path)
    context = bosun.trigger("escape")
    task = bosun.running_task("escape", context, "working")
    job, child = json.loads(pids.read_text()).values()
    assert os.getpgid(child) != os.getpgid(job)

    assert bosun.control("escape", context, state="abort", mode="kill").status_code == 200

    found = bosun.wait(lambda: (t := bosun.task(task["triggeredID"]))["state"] == "killed" and t)
    assert gone(job) and gone(child)  # neither alive nor a zombie once the task says killed
    assert "confirmed" not in found["message"]


def test_suspend_stops_the_job_and_resume_continues_it(executors, tmp_path):
    bosun = executors
    bosun.project("suspend", [{"name": "test"}], [python_job("test", """
        import time
        for i in range(60):
            print("tick", i, flush=True); time.sleep(0.1)
    """)])
    bosun.executor("suspend", "exec-suspend", tmp_path)
    context = bosun.trigger("suspend")
    task = bosun.running_task("suspend", context, "tick 3")
    pid = bosun.task(task["triggeredID"])["facts"]["pid"]
    assert bosun.control("suspend", context, state="pause", suspendRunning=True).status_code == 200
    bosun.wait(lambda: proc_state(pid) == "T", seconds=10)  # stopped by the kernel: it runs no further
    assert "tick 59" not in bosun.log(task["triggeredID"])
    assert bosun.control("suspend", context, state="resume").status_code == 200
    bosun.wait(lambda: proc_state(pid) in ("S", "R"), seconds=10)
    bosun.wait(lambda: bosun.state("suspend", context) == "finished", seconds=30)
    assert "tick 59" in bosun.log(task["triggeredID"])


def test_killing_the_executor_mid_job_times_the_task_out_by_heartbeat(executors, tmp_path):
    bosun = executors
    bosun.project("orphan", [{"name": "deployment", "heartbeatTimeout": "2s"}],
                  [python_job("deployment", "import time; print('working', flush=True); time.sleep(60)")])
    process = bosun.executor("orphan", "exec-orphan", tmp_path)
    context = bosun.trigger("orphan")
    task = bosun.running_task("orphan", context, "working")
    pid = bosun.task(task["triggeredID"])["facts"]["pid"]
    first = bosun.current_task("orphan", context)["timeouts"]["heartbeatDeadline"]
    bosun.wait(lambda: bosun.current_task("orphan", context)["timeouts"]["heartbeatDeadline"] != first)
    assert bosun.state("orphan", context) == "started"  # a heartbeat moved its deadline on
    process.send_signal(signal.SIGKILL)
    try:
        bosun.wait(lambda: bosun.state("orphan", context) == "timedOut", seconds=10)
        message = bosun.execution("orphan", context)["status"]["message"]
        assert message.startswith("No heartbeat for task 'deployment' within 2s; last heard at ")
        assert "exec-orphan started at" in message
    finally:
        os.killpg(pid, signal.SIGKILL)


def test_ten_thousand_lines_of_output_keep_the_log_bounded_and_the_page_small(executors, tmp_path):
    bosun = executors
    bosun.project("chatty", [{"name": "test"}], [python_job("test", """
        for i in range(10000):
            print(f"line {i:05d} " + "." * 60)
    """)])
    bosun.executor("chatty", "exec-chatty", tmp_path)
    context = bosun.trigger("chatty")
    bosun.wait(lambda: bosun.state("chatty", context) == "finished", seconds=30)
    triggered_id = bosun.execution("chatty", context)["status"]["previousTasks"][0]["triggeredID"]
    info = bosun.task(triggered_id)["log"]
    assert info["totalBytes"] > 700_000 and info["keptBytes"] <= 256 * 1024 and info["cutBytes"] > 0
    assert "line 09999" in bosun.log(triggered_id)
    with httpx.Client(base_url=bosun.base, follow_redirects=True) as browser:
        browser.get("/accounts/login/")
        browser.post("/accounts/login/", data={"username": "admin", "password": "executor-tests",
                                               "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        page = browser.get(f"/bridge/project/chatty/sequence/{context}")
    assert page.status_code == 200
    assert "line 09999" in page.text and "line 09700" not in page.text  # the last 200 lines
    assert "last 200 lines shown" in page.text and "cut from the middle" in page.text
    assert len(page.content) < 200_000


def test_a_change_of_jobs_reaches_the_executor_before_the_next_task(executors, tmp_path):
    bosun = executors
    bosun.project("changing", [{"name": "deployment"}], [python_job("deployment", "print('the old command')")])
    bosun.executor("changing", "exec-changing", tmp_path)
    first = bosun.trigger("changing")
    bosun.wait(lambda: bosun.state("changing", first) == "finished")
    new_jobs = json.dumps({"kind": "Jobs", "jobs": [python_job("deployment", "print('the new command')")]})
    assert bosun.http.put("/api/controlPlane/v1/project/changing", json={"jobs": new_jobs}).status_code == 200

    second = bosun.trigger("changing")
    bosun.wait(lambda: bosun.state("changing", second) == "finished")

    task = bosun.execution("changing", second)["status"]["previousTasks"][0]["triggeredID"]
    assert "the new command" in bosun.log(task) and "the old command" not in bosun.log(task)
