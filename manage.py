#!/usr/bin/env python
"""Bosun's command-line utility for administrative tasks (up, run_engine, create_token, ...)."""
import os
import sys


def _data_dir_from_argv(argv):
    """`manage.py up --data-dir DIR` picks the database folder, which settings must know first."""
    for index, arg in enumerate(argv):
        if arg == "--data-dir" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--data-dir="):
            return arg.split("=", 1)[1]
    return None


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bridge.settings")
    data_dir = _data_dir_from_argv(sys.argv)
    if data_dir:
        os.environ["BOSUN_DATA_DIR"] = os.path.abspath(data_dir)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
