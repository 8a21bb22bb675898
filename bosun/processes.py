"""The processes of a job, found and ended wherever they went.

A job runs in a process group of its own, but a child may leave it (`setsid()`), and when its parent exits it
is re-parented to the executor (a child subreaper). So a job's processes are: its group, every descendant of
its first process, and every process whose environment still carries the job's BOSUN_TRIGGERED_ID. Signals go
to all of them; a job is over when none of them is left.
"""

import os
from pathlib import Path

PROC = Path("/proc")


def become_subreaper():
    """Orphaned grandchildren of a job come to us (not to init), so we can find and reap them after a kill."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group) of every process."""
    table = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def _carries(pid: int, marker: bytes) -> bool:
    try:
        return marker in (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


class JobProcesses:
    def __init__(self, leader: int, triggered_id: str):
        self.leader = leader  # also the job's process group
        self.marker = f"BOSUN_TRIGGERED_ID={triggered_id}".encode()
        self.seen: set[int] = set()  # every process of the job found so far, until it is gone for good

    def pids(self) -> set[int]:
        """The job's processes that are still alive (zombies do not count; ours are reaped, but for the leader,
        whose exit status the job's own wait collects)."""
        table = _table()
        children: dict[int, list[int]] = {}
        for pid, (_, parent, _) in table.items():
            children.setdefault(parent, []).append(pid)
        found = {pid for pid, (_, _, group) in table.items() if group == self.leader}
        stack = [self.leader, *found]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        found |= {pid for pid in table if pid not in found and pid != os.getpid() and _carries(pid, self.marker)}
        alive = {pid for pid in found if table[pid][0] != "Z"}
        self.seen |= alive
        for pid in list(self.seen):
            if pid not in table:
                self.seen.discard(pid)
            elif table[pid][0] == "Z" and table[pid][1] == os.getpid() and pid != self.leader:
                _reap(pid)  # a zombie's environment is empty: it is known as ours from when it lived
                self.seen.discard(pid)
        return alive

    def signal(self, sig: int) -> int:
        """Send a signal to every process of the job; how many there were."""
        try:
            os.killpg(self.leader, sig)
        except (ProcessLookupError, PermissionError):
            pass
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        return len(pids)

    def alive(self) -> bool:
        """Whether anything of the job is left: a live process, or one that died but is not reaped yet."""
        alive = self.pids()
        return bool(alive or self.seen - {self.leader})


def _reap(pid: int):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def reap_orphans(keep: set[int]):
    """Reap exited children of ours (a job's leftovers re-parented to us), but for those in `keep`."""
    me = os.getpid()
    for pid, (state, parent, _) in _table().items():
        if state == "Z" and parent == me and pid not in keep:
            _reap(pid)


