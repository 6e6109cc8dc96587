"""Kubernetes' ``$(VAR)`` expansion, for running a container spec outside a cluster.

The kubelet expands ``$(NAME)`` in a container's ``command``, ``args`` and
``env`` values from the container's own environment list (not the node's):
``$$`` is a literal ``$``, a reference to an unknown name and an unclosed
``$(`` stay as written, and an ``env`` value sees only the entries above it.
Shells never see the references: ``sh -c 'echo $(date)'`` keeps ``$(date)``
unless ``date`` is a variable of the container.

Pure functions; used wherever a manifest's container becomes a local process
(the sweep's local jobs, the Kubernetes double's kubelet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with every ``$(NAME)`` of ``variables`` replaced, as the kubelet does."""
    if "$" not in text:
        return text
    out: list[str] = []
    cursor, length = 0, len(text)
    while cursor < length:
        dollar = text.find("$", cursor)
        if dollar < 0 or dollar + 1 == length:
            break
        out.append(text[cursor:dollar])
        following = text[dollar + 1]
        if following == "$":  # escaped
            out.append("$")
            cursor = dollar + 2
        elif following == "(" and (closer := text.find(")", dollar + 2)) >= 0:
            name = text[dollar + 2 : closer]
            out.append(variables.get(name, f"$({name})"))
            cursor = closer + 1
        else:  # not a reference: the "$" and the character after it, as written
            out.append(text[dollar : dollar + 2])
            cursor = dollar + 2
    out.append(text[cursor:])
    return "".join(out)


def expand_env(entries: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A container's environment from its ``env`` entries in order (each sees those above)."""
    env: dict[str, str] = {}
    for name, value in entries:
        env[name] = expand(value, env)
    return env


def expand_command(argv: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """``command + args`` with the container's variables expanded."""
    return [expand(arg, env) for arg in argv]
