"""Child processes that run rule code: bounded in time and memory, and never outliving the check.

Two kinds run here: the rules worker (``diag.engine.worker``: durable_rules and Python actions) and the
Python rule loader (``diag.engine.pyloader``: a user's rule file imported to read its META and WHEN). Both
are plain ``python -m`` children over pipes, not ``multiprocessing``: nothing of the caller's ``__main__`` is
imported again in the child, so a script or notebook without a main guard works.

The child bounds itself as its first act (``harden``), from what the parent put in its environment: an
address-space limit, and on Linux a SIGKILL when the parent dies (so a killed ``check`` leaves no worker
behind). The parent bounds the wall time. A child that ends any other way than with a complete result is
a failure the caller reports; it is never read as "nothing found".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import diag

ENV_MEMORY = "WNVDIAG_CHILD_MEMORY_MB"
ENV_PARENT = "WNVDIAG_CHILD_PARENT"
DEFAULT_MEMORY_MB = 4096  # the shipped pack on real traces stays under 200 MB; this only stops a runaway action
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    """How long (seconds) and how much address space (MiB) a child may take; None: no limit."""

    timeout: float | None = 600.0
    memory_mb: int | None = DEFAULT_MEMORY_MB


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: stopped at the time limit
    stdout: bytes
    stderr: bytes

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def describe(self, limits: Limits) -> str:
        """What happened to the child, for a message: "exited with code 0", "was killed by SIGKILL", ..."""
        if self.returncode is None:
            return f"did not finish within {limits.timeout:g} s; it was stopped"
        code = self.returncode
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}" + (" (out of its memory limit?)" if -code == signal.SIGKILL else "")
        return f"exited with code {code}"

    def last_words(self) -> str:
        lines = [line.strip() for line in self.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        return f" (its last words: {lines[-1][:200]})" if lines else ""


class Child:
    """One child started now; ``wait()`` gives its ``Outcome``. Several may run at once.

    The process is started in the calling thread (on Linux the parent-death signal follows the thread
    that started it: start children from the main thread), and fed and drained in a thread of its own.
    """

    def __init__(self, module: str, data: bytes, limits: Limits) -> None:
        self.limits = limits
        self._outcome: Outcome | None = None
        self.process = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=_environment(limits))
        self._thread = threading.Thread(target=self._talk, args=(data,), daemon=True)
        self._thread.start()

    def _talk(self, data: bytes) -> None:
        process = self.process
        try:
            out, err = process.communicate(data, timeout=self.limits.timeout)
            self._outcome = Outcome(process.returncode, out, err)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            self._outcome = Outcome(None, out, err)
        except BaseException:  # noqa: BLE001 - a broken pipe and the like: the child is gone, say how
            process.kill()
            process.wait()
            self._outcome = Outcome(process.returncode, b"", b"")

    def wait(self) -> Outcome:
        try:
            while self._thread.is_alive():
                self._thread.join(0.2)  # in slices: Ctrl-C reaches the main thread
        except BaseException:
            self.kill()
            raise
        assert self._outcome is not None
        return self._outcome

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()


def run(module: str, data: bytes, limits: Limits) -> Outcome:
    return Child(module, data, limits).wait()


def _environment(limits: Limits) -> dict[str, str]:
    """The caller's environment, with this ``diag`` on the path and the child's limits."""
    env = dict(os.environ)
    home = str(Path(diag.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    env[ENV_PARENT] = str(os.getpid())
    env.pop(ENV_MEMORY, None)
    if limits.memory_mb:
        env[ENV_MEMORY] = str(int(limits.memory_mb))
    return env


def harden() -> None:
    """Called first thing in a child: take the memory limit, and die with the parent."""
    memory = os.environ.get(ENV_MEMORY)
    if memory:
        try:
            import resource

            size = int(memory) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        except (ImportError, ValueError, OSError):
            pass  # no such limit on this platform: the wall-time limit still holds
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    parent = os.environ.get(ENV_PARENT)
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(70)  # the parent died before the signal was armed
