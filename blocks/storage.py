"""prefect-aws / prefect-gcp credential blocks turned into the storage layer's plain settings.

The flows call these; ``sluice.storage`` and the domain never import Prefect.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypeVar

from sluice.errors import SluiceInputError
from sluice.storage import GcsSettings, S3Settings, Storage

if TYPE_CHECKING:
    from prefect_aws import AwsCredentials
    from prefect_gcp import GcpCredentials

BlockT = TypeVar("BlockT")


def s3_settings(block: AwsCredentials) -> S3Settings:
    """The block's keys (resolved through its own boto3 session: keys, profile or an
    assumed role), region, endpoint and client options."""
    session = block.get_boto3_session()
    frozen = session.get_credentials()
    keys = frozen.get_frozen_credentials() if frozen is not None else None
    client_kwargs = block.aws_client_parameters.get_params_override()
    client_kwargs.pop("config", None)
    endpoint = client_kwargs.pop("endpoint_url", None)
    return S3Settings(
        access_key_id=keys.access_key if keys else None,
        secret_access_key=keys.secret_key if keys else None,
        session_token=keys.token if keys and keys.token else None,
        region=session.region_name,
        endpoint_url=endpoint,
        client_kwargs=client_kwargs,
        config_kwargs=dict(block.aws_client_parameters.config or {}),
    )


def gcs_settings(block: GcpCredentials) -> GcsSettings:
    """The block's service account key (given inline or as a file) and project."""
    info: dict | None = None
    if block.service_account_info is not None:
        info = block.service_account_info.get_secret_value()
    elif block.service_account_file is not None:
        info = json.loads(block.service_account_file.expanduser().read_text())
    return GcsSettings(
        service_account_info=json.dumps(info) if info is not None else None,
        project=block.project,
    )


def aws_settings(name: str | None) -> S3Settings | None:
    """The settings of the ``AwsCredentials`` block ``name`` (None: no block)."""
    if name is None:
        return None
    from prefect_aws import AwsCredentials

    return s3_settings(_load(AwsCredentials, name))


def storage_from_blocks(aws_block: str | None = None, gcp_block: str | None = None) -> Storage:
    """A :class:`Storage` with the named ``AwsCredentials`` / ``GcpCredentials`` blocks
    (either may be None: that store's default chain).

    Call once the Prefect API is known; a block that does not exist is one
    ``SluiceInputError`` line naming it.
    """
    gcs = None
    if gcp_block is not None:
        from prefect_gcp import GcpCredentials

        gcs = gcs_settings(_load(GcpCredentials, gcp_block))
    return Storage(s3=aws_settings(aws_block), gcs=gcs)


def _load(block_type: type[BlockT], name: str) -> BlockT:
    """The saved block (the embedded server is started first when no API is set)."""
    from sluice.server import ensure_api

    ensure_api()
    try:
        return block_type.load(name)  # type: ignore[attr-defined]
    except ValueError:
        raise SluiceInputError(f"{block_type.__name__} block {name!r}: no such block") from None
