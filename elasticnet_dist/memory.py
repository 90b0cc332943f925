"""The memory a process may still allocate (a fact of the machine, for every layer)."""
from __future__ import annotations


def available_memory():
    """Bytes of memory available to a new allocation (None where unknown): Linux's
    MemAvailable, or less where this process's address-space limit
    (``RLIMIT_AS``, e.g. ``ulimit -v``) leaves less room above what it maps."""
    found = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/status") as f:
                mapped = next(int(line.split()[1]) * 1024 for line in f
                              if line.startswith("VmSize:"))
            room = max(0, soft - mapped)
            found = room if found is None else min(found, room)
    except (OSError, ValueError, StopIteration, ImportError):
        pass
    return found
