"""Bosun's client side: the Python SDK (Client, Sequence, Task), the `bosun` CLI and the job executor.

No Django here: it speaks to a Bosun server over its public HTTP API and websockets only.
"""

from .client import BosunError, Unreachable
from .config import ConfigError
from .sdk import Client, OutputFiles, Sequence, Task

__all__ = ["BosunError", "Client", "ConfigError", "OutputFiles", "Sequence", "Task", "Unreachable"]
