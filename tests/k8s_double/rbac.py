"""ServiceAccounts, Roles, RoleBindings (and PVCs) and the RBAC authorizer of the double.

``kubectl kustomize infra/kubernetes`` output is created here through the official client;
``POST .../serviceaccounts/NAME/token`` (TokenRequest) issues a bearer token for a
ServiceAccount, and every request carrying such a token is authorized as the API server's
RBAC authorizer does for namespaced resources: allowed when a RoleBinding in the request's
namespace binds a Role whose rule matches the verb, API group and resource (``*`` wildcards,
subresources as ``pods/log``), else 403 Forbidden naming the user. Other tokens are the
cluster admin (as before), so tests without a ServiceAccount are unchanged.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from tests.k8s_double import clock, schemas
from tests.k8s_double.status import ApiError

Obj = dict[str, Any]
# resource -> (group, kind, apiVersion); the namespaced objects kept here
KINDS = {
    "serviceaccounts": ("", "ServiceAccount", "v1"),
    "persistentvolumeclaims": ("", "PersistentVolumeClaim", "v1"),
    "roles": ("rbac.authorization.k8s.io", "Role", "rbac.authorization.k8s.io/v1"),
    "rolebindings": ("rbac.authorization.k8s.io", "RoleBinding", "rbac.authorization.k8s.io/v1"),
}


def route(parts: list[str]) -> tuple[str, str, str | None, str | None] | None:
    """(resource, namespace, name, sub) of a path to one of KINDS, else None."""
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif parts[:3] == ["apis", "rbac.authorization.k8s.io", "v1"]:
        rest = parts[3:]
    else:
        return None
    if len(rest) < 3 or rest[0] != "namespaces" or rest[2] not in KINDS:
        return None
    group = KINDS[rest[2]][0]
    if group != ("" if parts[0] == "api" else parts[1]) or len(rest) > 5:
        return None
    name = rest[3] if len(rest) > 3 else None
    sub = rest[4] if len(rest) > 4 else None
    if sub not in (None, "token") or (sub == "token" and rest[2] != "serviceaccounts"):
        return None
    return rest[2], rest[1], name, sub


class Rbac:
    """The objects above, the tokens issued for ServiceAccounts, and the authorizer."""

    def __init__(self, namespaces: set[str], *, schemas: bool = True) -> None:
        self.schemas = schemas
        self.namespaces = namespaces
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.tokens: dict[str, tuple[str, str]] = {}  # token -> (namespace, serviceaccount)
        self.lock = threading.Lock()
        self.uid = 0
        self.used: set[tuple[str, str]] = set()  # (verb, resource) allowed for a ServiceAccount
        self.denials: list[tuple[str, str, str | None]] = []  # (verb, resource, namespace)

    # objects
    def create(self, resource: str, namespace: str, body: Obj) -> Obj:
        if namespace not in self.namespaces:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found', {})
        group, kind, api_version = KINDS[resource]
        meta = dict(body.get("metadata") or {})
        name = meta.get("name")
        if not name:
            raise ApiError.invalid(kind, group, "", [("metadata.name", "name: Required value")])
        if self.schemas:
            schemas.validate(body, kind, api_version, group, name)
        with self.lock:
            if (resource, namespace, name) in self.objects:
                raise ApiError.already_exists(resource, name)
            self.uid += 1
            meta.update(
                namespace=namespace,
                uid=clock.new_uid(),
                resourceVersion=str(self.uid),
                creationTimestamp=clock.now(),
            )
            obj = {**body, "apiVersion": api_version, "kind": kind, "metadata": meta}
            self.objects[(resource, namespace, name)] = obj
            return obj

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        with self.lock:
            obj = self.objects.get((resource, namespace, name))
        if obj is None:
            raise ApiError.not_found(resource, name)
        return obj

    def list(self, resource: str, namespace: str) -> Obj:
        _, kind, api_version = KINDS[resource]
        with self.lock:
            items = self._in(resource, namespace)
        return {"kind": f"{kind}List", "apiVersion": api_version, "metadata": {}, "items": items}

    def _in(self, resource: str, namespace: str) -> list[Obj]:
        """Objects of one resource in one namespace, by name (the caller holds the lock)."""
        return [o for key, o in sorted(self.objects.items()) if key[:2] == (resource, namespace)]

    def delete(self, resource: str, namespace: str, name: str) -> Obj:
        with self.lock:
            obj = self.objects.pop((resource, namespace, name), None)
        if obj is None:
            raise ApiError.not_found(resource, name)
        return obj

    def token_request(self, namespace: str, name: str, body: Obj) -> Obj:
        """TokenRequest: a bearer token authenticating as the ServiceAccount."""
        self.get("serviceaccounts", namespace, name)
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = (namespace, name)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": body.get("spec") or {},
            "status": {"token": token, "expirationTimestamp": clock.now()},
        }

    def issue_token(self, namespace: str, account: str) -> str | None:
        """A token for the ServiceAccount (as the kubelet's projected volume), if it exists."""
        try:
            return self.token_request(namespace, account, {})["status"]["token"]
        except ApiError:
            return None

    # the authorizer
    def check(
        self, authorization: str, verb: str, group: str, resource: str, namespace: str | None
    ) -> None:
        """Raise 403 unless the request's ServiceAccount (if any) may do this."""
        token = authorization.removeprefix("Bearer ").strip()
        with self.lock:
            who = self.tokens.get(token)
        if who is None:
            return  # not a ServiceAccount token: the admin user
        if namespace is not None and self._allowed(who, verb, group, resource, namespace):
            with self.lock:
                self.used.add((verb, resource))
            return
        with self.lock:
            self.denials.append((verb, resource, namespace))
        user = f"system:serviceaccount:{who[0]}:{who[1]}"
        qualified = f"{resource}.{group}" if group else resource
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        base = resource.split("/")[0]
        raise ApiError(
            403,
            "Forbidden",
            f'{qualified} is forbidden: User "{user}" cannot {verb} resource "{resource}"'
            f' in API group "{group}"{where}',
            {"kind": base, "group": group} if group else {"kind": base},
        )

    def _allowed(
        self, who: tuple[str, str], verb: str, group: str, resource: str, namespace: str
    ) -> bool:
        with self.lock:
            bindings = self._in("rolebindings", namespace)
            roles = {o["metadata"]["name"]: o for o in self._in("roles", namespace)}
        for binding in bindings:
            subjects = binding.get("subjects") or []
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == who[1]
                and s.get("namespace", namespace) == who[0]
                for s in subjects
            ):
                continue
            ref = binding.get("roleRef") or {}
            role = roles.get(ref.get("name")) if ref.get("kind") == "Role" else None
            for rule in (role or {}).get("rules") or []:
                if (
                    _match(rule.get("verbs"), verb)
                    and _match(rule.get("apiGroups"), group)
                    and _match(rule.get("resources"), resource)
                ):
                    return True
        return False


def _match(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)
