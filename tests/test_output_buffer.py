"""A job's output waiting to be sent is bounded: past its limit the first part and the newest part are kept,
the executor's own notes are never dropped, and the gap is said."""

import os
import threading

from bosun.output import BoundedOutput, pump


def test_output_under_the_limit_passes_whole():
    buffer = BoundedOutput(limit=100, head=20)
    buffer.add("a" * 50)
    buffer.note("[bosun] note\n")
    buffer.add("b" * 30)
    assert buffer.take() == "a" * 50 + "[bosun] note\n" + "b" * 30
    assert buffer.take() == ""


def test_a_flood_keeps_the_head_the_newest_output_and_every_note():
    buffer = BoundedOutput(limit=100, head=20)
    buffer.note("[bosun] started\n")
    buffer.add("first line\n")
    buffer.note("[bosun] timeout\n")
    for i in range(1000):
        buffer.add(f"{i:04d}\n")
    text = buffer.take()
    assert text.startswith("[bosun] started\nfirs\n[bosun] 4927 characters")  # the head: its first 20
    assert "[bosun] timeout\n" in text
    assert text.endswith("0999\n")
    kept = text.split("faster than they could be sent\n")[1]
    assert len(kept.replace("[bosun] timeout\n", "")) == 80  # limit - head
    # everything but the head and the newest 80 characters was skipped, and the count says so
    assert "[bosun] 4927 characters of output were skipped here" in text  # 11 - 4 + 5000 - 80


def test_pump_reads_a_line_without_end_in_bounded_pieces():
    read, write = os.pipe()

    def job():
        os.write(write, "é".encode() * 10 + b"x" * 200_000)
        os.close(write)

    writer = threading.Thread(target=job)
    writer.start()
    buffer = BoundedOutput(limit=1000, head=100)
    pump(read, buffer)
    writer.join()
    os.close(read)
    text = buffer.take()
    assert text.startswith("é" * 10) and text.endswith("x" * 900)
