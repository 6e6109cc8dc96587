"""Every check a STAC batch makes before it dispatches anything, each a one-line error.

Run by the flow, and by ``sluice stac-batch`` before it starts Prefect so that
bad input prints one line and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pystac import Item
from pystac_client import Client
from pystac_client.exceptions import APIError

from sluice.errors import SluiceInputError
from sluice.locations import check_directory
from sluice.stac.admission import check_thresholds
from sluice.stac.execution import MAX_TIER
from sluice.stac.inputs import lookup_items, open_catalog, read_item_list, search_items
from sluice.stac.outputs import StorageRoot, resolve_credentials
from sluice.stac.reports import FAILED_ITEMS
from sluice.stac.stages import Catchment, load_hand_index
from sluice.storage import S3Settings

if TYPE_CHECKING:  # a flow hands the credentials down; this module never loads Prefect
    pass


@dataclass
class PreparedBatch:
    """Validated inputs: the items found, ids no collection holds, where outputs go."""

    items: list[Item]
    missing: list[str]
    credentials: S3Settings
    outputs: StorageRoot
    index: list[Catchment]
    inputs_key: str = ""  # the inputs it was prepared from (hand_to_flow)

    def missing_message(self, collection: str | None) -> str:
        listed = ", ".join(self.missing[:20]) + (" ..." if len(self.missing) > 20 else "")
        where = f"collection {collection}" if collection else "any collection"
        return f"--item_list: {len(self.missing)} item id(s) not in {where}: {listed}"


def requested_ids(
    item_list: str | None,
    resubmit_failed: str | None,
    search_bbox: list[float] | None,
    search_datetime: str | None,
) -> list[str] | None:
    """Item ids from ``--resubmit-failed`` or ``--item_list``; None means "search"."""
    if resubmit_failed:
        directory = Path(resubmit_failed)
        if not (directory / FAILED_ITEMS).is_file():
            raise SluiceInputError(
                f"--resubmit-failed {resubmit_failed}: no unique_fail_aoi_names.txt there"
            )
        return read_item_list(directory / FAILED_ITEMS, what="--resubmit-failed", required=False)
    if item_list:
        return read_item_list(item_list)
    if search_bbox is None and search_datetime is None:
        raise SluiceInputError("no items: give --item_list, --resubmit-failed or a search")
    return None


def check_temp_dir(temp_dir: str) -> None:
    """``--temp_dir`` is a directory, or can be made in a writable one (nothing made yet)."""
    check_directory(temp_dir, "--temp_dir")


def check_local_output(use_local_output: bool, output_root: str) -> None:
    """``--use-local-output`` writes AOIs to a local directory: not an ``s3://`` root."""
    if use_local_output and "://" in output_root and not output_root.startswith("file://"):
        raise SluiceInputError(
            f"--use-local-output: --output_root {output_root!r} must be a local directory"
        )


def _has_collection(catalog: Client, collection: str) -> bool:
    try:
        return catalog.get_collection(collection) is not None
    except APIError:  # a 404 on some APIs
        return False


def prepare_batch(
    *,
    output_root: str,
    hand_index_path: str,
    stac_api_url: str,
    sources: list[str],
    collection: str | None,
    item_list: str | None,
    resubmit_failed: str | None,
    search_bbox: list[float] | None,
    search_datetime: str | None,
    stop_threshold: int,
    resume_threshold: int,
    wait_seconds: float,
    chunk_size: int,
    use_local_creds: bool,
    aws_credentials: S3Settings | None,
    stage_mode: bool,
    stop_on_missing: bool,
    max_tier: int = 0,
    temp_dir: str = "/tmp/stac_batch",
    use_local_output: bool = False,
) -> PreparedBatch:
    """Check every input in order (cheap ones first); look the items up. Inputs that
    ``hand_to_flow`` prepared already are not prepared again.

    ``aws_credentials`` are the flow's ``AwsCredentials`` block as settings (ignored with
    ``use_local_creds``). Ids are looked up in ``collection`` (else in every collection),
    as the seed does; a search without ids searches ``collection`` or else ``sources``.
    """
    inputs = dict(locals())
    if (handed := _HANDED.pop(_key(inputs), None)) is not None:
        return handed
    check_thresholds(stop_threshold, resume_threshold)
    if wait_seconds < 0:
        raise SluiceInputError(f"--wait_seconds {wait_seconds}: must not be negative")
    if chunk_size < 1:
        raise SluiceInputError(f"--chunk_size {chunk_size}: must be at least 1")
    if not 0 <= max_tier <= MAX_TIER:
        raise SluiceInputError(f"--max_tier {max_tier}: must be 0 to {MAX_TIER}")
    check_temp_dir(temp_dir)
    check_local_output(use_local_output, output_root)
    ids = requested_ids(item_list, resubmit_failed, search_bbox, search_datetime)
    credentials = resolve_credentials(use_local_creds, aws_credentials)
    outputs = StorageRoot(output_root, credentials)
    outputs.check_writable()
    index = []
    if stage_mode:
        try:
            index = load_hand_index(StorageRoot(hand_index_path, credentials))
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SluiceInputError(f"--hand_index_path {hand_index_path}: {reason}") from exc
    catalog = open_catalog(stac_api_url)
    if collection and not _has_collection(catalog, collection):
        raise SluiceInputError(f"--collection {collection!r}: no such collection at {stac_api_url}")
    if ids is None:
        searched = [collection] if collection else sources
        items, missing = search_items(catalog, searched, search_bbox, search_datetime), []
    else:
        found = lookup_items(catalog, ids, collection)
        items, missing = found.items, found.missing
    prepared = PreparedBatch(items, missing, credentials, outputs, index, inputs_key=_key(inputs))
    if missing and stop_on_missing:
        raise SluiceInputError(prepared.missing_message(collection))
    return prepared


_HANDED: dict[str, PreparedBatch] = {}


def _key(inputs: dict[str, Any]) -> str:
    return json.dumps(inputs, sort_keys=True, default=str)


def hand_to_flow(prepared: PreparedBatch) -> None:
    """Give what the CLI prepared (bad input is one line before Prefect starts) to the
    flow's ``prepare_batch`` call with the same inputs, once: a batch opens the catalog
    and looks its items up once."""
    _HANDED[prepared.inputs_key] = prepared
