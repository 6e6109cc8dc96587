"""Memory cgroups for local jobs: one child cgroup per job attempt, v1 or v2.

Children are made under the orchestrator's own memory cgroup (read from
``/proc/self/cgroup``) and named ``sluice-<orchestrator pid>-<token>-<seq>-<job>``,
so a later orchestrator can tell which ones a dead predecessor left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from sluice.backends.watchdog import kill_cgroup, remove_cgroup

log = logging.getLogger(__name__)

PREFIX = "sluice-"
_OWNER = re.compile(rf"^{PREFIX}(\d+)-")


class CgroupUnavailable(RuntimeError):
    """No memory cgroup can be made here (the reason is the message)."""


@dataclass(frozen=True)
class MemoryCgroup:
    """One job attempt's memory cgroup."""

    path: Path
    version: int

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer killed in this cgroup."""
        source = "memory.oom_control" if self.version == 1 else "memory.events"
        return _keyed(self.path / source).get("oom_kill", 0)

    def peak_bytes(self) -> int | None:
        """The highest memory usage seen, where the kernel records it."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL every process in the cgroup (including ones that left the job's group)."""
        kill_cgroup(self.path)

    def remove(self) -> bool:
        """Kill what is left and remove the cgroup; False if it is still busy."""
        if remove_cgroup(self.path):
            return True
        log.warning("memory cgroup %s still busy; the next start will remove it", self.path)
        return False


@dataclass(frozen=True)
class CgroupParent:
    """The orchestrator's own memory cgroup, under which job cgroups are made."""

    path: Path
    version: int

    @classmethod
    def detect(cls) -> CgroupParent:
        """Our own memory cgroup if children with a memory limit can be made in it.

        Raises ``CgroupUnavailable`` saying why not.
        """
        path, version = locate(
            Path("/proc/self/cgroup").read_text(), Path("/proc/self/mountinfo").read_text()
        )
        parent = cls(path, version)
        if version == 2:
            parent._delegate_memory_v2()
        parent._probe()
        return parent

    def create(self, name: str, memory_bytes: int | None) -> MemoryCgroup:
        """Make the child cgroup ``name`` with a hard limit of ``memory_bytes`` (None: none)."""
        path = self.path / name
        path.mkdir()
        group = MemoryCgroup(path, self.version)
        try:
            if memory_bytes is not None:
                self._limit(path, memory_bytes)
        except OSError:
            group.remove()
            raise
        return group

    def sweep_stale(self) -> int:
        """Kill and remove job cgroups whose orchestrator process is gone; returns how many."""
        removed = 0
        try:
            children = list(self.path.iterdir())
        except OSError:
            return 0
        for child in children:
            owner = _OWNER.match(child.name)
            if not owner or not child.is_dir() or _alive(int(owner.group(1))):
                continue
            if MemoryCgroup(child, self.version).remove():
                removed += 1
        if removed:
            log.info("removed %d memory cgroup(s) left by a dead orchestrator", removed)
        return removed

    def _limit(self, path: Path, memory_bytes: int) -> None:
        if self.version == 1:
            (path / "memory.limit_in_bytes").write_text(str(memory_bytes))
            # Memory+swap at the same figure: the job cannot dodge the limit by swapping.
            if (path / "memory.memsw.limit_in_bytes").exists():
                (path / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        else:
            (path / "memory.max").write_text(str(memory_bytes))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
            if (path / "memory.oom.group").exists():
                # One OOM kill ends the whole job, as in a Kubernetes container on cgroup v2.
                (path / "memory.oom.group").write_text("1")

    def _delegate_memory_v2(self) -> None:
        control = self.path / "cgroup.subtree_control"
        try:
            if "memory" not in (self.path / "cgroup.controllers").read_text().split():
                raise CgroupUnavailable(f"cgroup v2: no memory controller in {self.path}")
            if "memory" in control.read_text().split():
                return
            control.write_text("+memory")
        except OSError as exc:
            raise CgroupUnavailable(
                f"cgroup v2: cannot enable the memory controller for children of {self.path} "
                f"({exc.strerror}); run Sluice in a cgroup with memory delegated to its children"
            ) from None

    def _probe(self) -> None:
        name = f"{PREFIX}{os.getpid()}-probe-{time.monotonic_ns()}"
        try:
            group = self.create(name, 1 << 30)
        except OSError as exc:
            raise CgroupUnavailable(f"cannot make a memory cgroup in {self.path}: {exc}") from None
        group.remove()


def locate(proc_cgroup: str, mountinfo: str) -> tuple[Path, int]:
    """Our memory cgroup directory and its version, from ``/proc/self/{cgroup,mountinfo}``.

    A v1 memory controller wins over the v2 hierarchy (hybrid hosts keep memory on v1).
    """
    memberships = _memberships(proc_cgroup)
    mounts = _cgroup_mounts(mountinfo)
    if "memory" in memberships and "memory" in mounts:
        return _under_mount(mounts["memory"], memberships["memory"]), 1
    if "" in memberships and "" in mounts:
        return _under_mount(mounts[""], memberships[""]), 2
    raise CgroupUnavailable("no memory cgroup controller is mounted for this process")


def _memberships(proc_cgroup: str) -> dict[str, str]:
    """Controller -> cgroup path from ``/proc/self/cgroup`` ("" is the v2 hierarchy)."""
    found: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            found[controller] = path
    return found


def _cgroup_mounts(mountinfo: str) -> dict[str, tuple[str, str]]:
    """Controller -> (mount root, mount point) for cgroup v1 memory and the v2 hierarchy."""
    found: dict[str, tuple[str, str]] = {}
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts, tail_parts = fields.split(), tail.split()
        if len(parts) < 5 or len(tail_parts) < 3:
            continue
        root, mount_point, fstype, options = parts[3], parts[4], tail_parts[0], tail_parts[2]
        if fstype == "cgroup" and "memory" in options.split(","):
            found.setdefault("memory", (root, mount_point))
        elif fstype == "cgroup2":
            found.setdefault("", (root, mount_point))
    return found


def _under_mount(mount: tuple[str, str], cgroup_path: str) -> Path:
    root, mount_point = mount
    relative = os.path.relpath(cgroup_path, root) if cgroup_path.startswith(root) else cgroup_path
    return Path(os.path.normpath(os.path.join(mount_point, relative.lstrip("/"))))


def _keyed(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    return values


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
