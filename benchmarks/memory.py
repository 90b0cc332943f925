"""A benchmark process's own resident memory, read from ``/proc/self/status`` (Linux).

``getrusage``'s ``ru_maxrss`` is no measure of a case run in a fresh process: Linux
carries the high-water mark of the address space a child had before ``execve``
(the parent's pages it shared after ``fork``) into the new program's, so a case
started by a parent that had just generated a 3.2 GB table reported that table's
size as its own peak. ``VmHWM`` belongs to the process's current address space:
it starts again at ``execve``, and :func:`reset_peak` starts it again on demand."""
from __future__ import annotations


def status_gb(field):
    """``VmRSS`` (now) or ``VmHWM`` (peak since exec or the last reset) of this
    process, in GB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def reset_peak():
    """Set the peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
