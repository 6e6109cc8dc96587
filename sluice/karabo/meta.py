"""The ingestor's ``<file>.meta`` JSON, as Karabo's ``RucioMeta``/``ObsCoreMeta`` write it.

``{"namespace", "name", "lifetime", "meta": {ObsCore fields}}`` with every
absent (None) field dropped.
"""

from __future__ import annotations

import json
from typing import Any

from sluice.karabo.settings import KaraboSettings, Product

META_SUFFIX = ".meta"
REQUIRED = ("namespace", "name", "lifetime")


def access_url(namespace: str, name: str) -> str:
    return f"https://datalink.ivoa.srcdev.skao.int/rucio/links?id={namespace}:{name}"


def publisher_did(settings: KaraboSettings, name: str) -> str:
    """``ivo://<authority><path>?<namespace>:<name>``, Karabo's ``RucioMeta.get_ivoid``."""
    return (
        f"ivo://{settings.ivoid_authority}{settings.ivoid_path}?{settings.rucio_namespace}:{name}"
    )


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def build_meta(settings: KaraboSettings, product: Product) -> dict[str, Any]:
    """The ``.meta`` document of one product."""
    name = settings.file_name(product)
    image = product is not Product.VISIBILITY
    obscore = {
        "dataproduct_type": "image" if image else "visibility",
        "obs_collection": settings.obs_collection,
        "obs_id": settings.obs_id,
        "obs_publisher_did": publisher_did(settings, name),
        "access_url": access_url(settings.rucio_namespace, name),
        "s_ra": settings.phase_center_ra_deg if image else None,
        "s_dec": settings.phase_center_dec_deg if image else None,
    }
    return _drop_none(
        {
            "namespace": settings.rucio_namespace,
            "name": name,
            "lifetime": settings.rucio_lifetime,
            "dataset_name": None,
            "meta": obscore,
        }
    )


def render(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def problem(data: bytes, product_name: str) -> str | None:
    """Why a ``.meta`` is not valid for ``product_name`` (None when it is)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        return f"not JSON: {error}"
    if not isinstance(document, dict):
        return "not a JSON object"
    missing = [key for key in REQUIRED if key not in document]
    if missing:
        return f"missing {', '.join(missing)}"
    if document["name"] != product_name:
        return f"name {document['name']!r} does not match the product {product_name!r}"
    if not isinstance(document["lifetime"], int) or document["lifetime"] <= 0:
        return f"lifetime {document['lifetime']!r} is not a positive integer"
    if not isinstance(document.get("meta", {}), dict):
        return "meta is not an object"
    return None
