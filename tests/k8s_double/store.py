"""The in-memory object store: one global resourceVersion, an event history, watches.

Stored objects are never mutated in place: every change stores a fresh copy, so events
can keep references to the snapshots they carry.
"""

from __future__ import annotations

import marshal
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.k8s_double.selectors import Predicate
from tests.k8s_double.status import ApiError

Obj = dict[str, Any]
Key = tuple[str, str]


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (``marshal`` round trip: far cheaper than deepcopy)."""
    return marshal.loads(marshal.dumps(value))


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    resource: str
    type: str
    obj: Obj
    old: Obj | None


class Watch:
    """One watch: a queue of (type, object) fed by the store; ``None`` ends it."""

    def __init__(self, store: Store, resource: str, namespace: str | None, predicate: Predicate):
        self.store = store
        self.resource = resource
        self.namespace = namespace
        self.predicate = predicate
        self.queue: queue.SimpleQueue[tuple[str, Obj] | None] = queue.SimpleQueue()
        self.initial = 0
        self.closed = False

    def offer(self, event: Event) -> None:
        if self.namespace and event.obj["metadata"].get("namespace") != self.namespace:
            return
        now = self.predicate(event.obj)
        before = event.old is not None and self.predicate(event.old)
        if event.type == "MODIFIED":
            if now and before:
                self.queue.put(("MODIFIED", event.obj))
            elif now:
                self.queue.put(("ADDED", event.obj))
            elif before:
                self.queue.put(("DELETED", event.obj))
        elif now:
            self.queue.put((event.type, event.obj))

    def next(self, timeout: float | None) -> tuple[str, Obj] | None:
        """The next event, or None when the watch was closed or ``timeout`` passed."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.closed = True
        self.store.unwatch(self)
        self.queue.put(None)


class Store:
    """Objects by resource and (namespace, name), with a bounded event history."""

    def __init__(self, history_limit: int = 100_000):
        self.lock = threading.RLock()
        self.rv = 1  # the namespaces' version: a list never reports "0" (which means "any")
        self.compacted_rv = 1
        self.objects: dict[str, dict[Key, Obj]] = {"jobs": {}, "pods": {}}
        self.owned: dict[str, set[Key]] = {}
        self.history: deque[Event] = deque(maxlen=history_limit)
        self.watches: list[Watch] = []
        self.watches_changed = threading.Condition(self.lock)  # a watch opened or closed
        self.listeners: list[Callable[[Event], None]] = []

    # reads
    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        return self.objects[resource].get((namespace, name))

    def require(self, resource: str, namespace: str, name: str) -> Obj:
        obj = self.get(resource, namespace, name)
        if obj is None:
            raise ApiError.not_found(resource, name)
        return obj

    def list(
        self, resource: str, namespace: str | None, predicate: Predicate
    ) -> tuple[list[Obj], int]:
        with self.lock:
            items = [
                obj
                for (ns, _), obj in self.objects[resource].items()
                if (namespace is None or ns == namespace) and predicate(obj)
            ]
            return sorted(items, key=_sort_key), self.rv

    def owned_by(self, resource: str, uid: str) -> list[Obj]:
        with self.lock:
            table = self.objects[resource]
            return [table[key] for key in self.owned.get(uid, ()) if key in table]

    # writes
    def create(self, resource: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        with self.lock:
            if key in self.objects[resource]:
                raise ApiError.already_exists(resource, meta["name"])
            self._commit(resource, "ADDED", key, obj, None)
            owner = _controller_uid(obj)
            if owner:
                self.owned.setdefault(owner, set()).add(key)
            return obj

    def update(
        self,
        resource: str,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], None],
        expect_rv: str | None = None,
    ) -> Obj:
        """Apply ``mutate`` to a copy and store it; a no-op change keeps the old version."""
        with self.lock:
            current = self.require(resource, namespace, name)
            if expect_rv and expect_rv != current["metadata"]["resourceVersion"]:
                raise ApiError.conflict(
                    resource,
                    name,
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again",
                )
            changed = clone(current)
            mutate(changed)
            changed["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if changed == current:
                return current
            self._commit(resource, "MODIFIED", (namespace, name), changed, current)
            before, after = _controller_uid(current), _controller_uid(changed)
            if before != after:
                self._unindex(before, (namespace, name))
                if after:
                    self.owned.setdefault(after, set()).add((namespace, name))
            return changed

    def _unindex(self, owner: str | None, key: Key) -> None:
        if owner and owner in self.owned:
            self.owned[owner].discard(key)
            if not self.owned[owner]:
                del self.owned[owner]

    def remove(self, resource: str, namespace: str, name: str) -> Obj:
        with self.lock:
            current = self.require(resource, namespace, name)
            key = (namespace, name)
            del self.objects[resource][key]
            self._unindex(_controller_uid(current), key)
            gone = dict(current)
            gone["metadata"] = dict(current["metadata"])
            self._commit(resource, "DELETED", None, gone, current)
            return gone

    def _commit(self, resource: str, kind: str, key: Key | None, obj: Obj, old: Obj | None):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if key is not None:
            self.objects[resource][key] = obj
        event = Event(self.rv, resource, kind, obj, old)
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for watch in self.watches:
            if watch.resource == resource:
                watch.offer(event)
        for listener in self.listeners:
            listener(event)

    # watches
    def watch(
        self,
        resource: str,
        namespace: str | None,
        predicate: Predicate,
        since: int | None,
    ) -> tuple[Watch, int]:
        """Register a watch; with ``since`` replay later events, else send current objects.

        Returns the watch and the resourceVersion its initial state corresponds to.
        Raises 410 Gone when ``since`` is older than the retained history.
        """
        with self.lock:
            watch = Watch(self, resource, namespace, predicate)
            if since is None:
                items, _ = self.list(resource, namespace, predicate)
                for obj in items:
                    watch.queue.put(("ADDED", obj))
                watch.initial = len(items)
            else:
                if since < self.compacted_rv:
                    oldest = self.history[0].rv if self.history else self.rv
                    raise ApiError.gone(f"too old resource version: {since} ({oldest})")
                for event in self._events_after(since):
                    if event.resource == resource:
                        watch.offer(event)
            self.watches.append(watch)
            self.watches_changed.notify_all()
            return watch, self.rv

    def _events_after(self, since: int) -> Iterator[Event]:
        later = []
        for event in reversed(self.history):
            if event.rv <= since:
                break
            later.append(event)
        return reversed(later)

    def unwatch(self, watch: Watch) -> None:
        with self.lock:
            if watch in self.watches:
                self.watches.remove(watch)
                self.watches_changed.notify_all()

    def compact(self) -> None:
        """Forget the event history (like etcd compaction): older resourceVersions get 410."""
        with self.lock:
            self.history.clear()
            self.compacted_rv = self.rv

    def close_watches(self) -> None:
        with self.lock:
            for watch in list(self.watches):
                watch.close()


def _sort_key(obj: Obj) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref["uid"]
    return None
