"""Memory cgroups for local jobs: one child cgroup per job attempt, v1 or v2.

Children are made under the orchestrator's own memory cgroup (read from
``/proc/self/cgroup``) and named ``sluice-<orchestrator pid>-<token>-<seq>-<job>``,
so a later orchestrator can tell which ones a dead predecessor left behind.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from sluice.backends.supervisor import MemoryCgroup

log = logging.getLogger(__name__)

PREFIX = "sluice-"
_OWNER = re.compile(rf"^{PREFIX}(\d+)-")


class CgroupUnavailable(RuntimeError):
    """No memory cgroup can be made here (the reason is the message)."""


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
        return MemoryCgroup.create(self.path / name, self.version, memory_bytes)

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
            else:
                log.warning("memory cgroup %s still busy; the next start will remove it", child)
        if removed:
            log.info("removed %d memory cgroup(s) left by a dead orchestrator", removed)
        return removed

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


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
