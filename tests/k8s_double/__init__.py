"""A Kubernetes API test double: the unmodified ``kubernetes`` client and kubectl talk to it.

Start one with ``start_double()`` (or the ``k8s_api`` fixture in ``tests/kubernetes``).
"""

from tests.k8s_double.double import K8sDouble, start_double

__all__ = ["K8sDouble", "start_double"]
