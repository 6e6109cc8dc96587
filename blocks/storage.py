"""prefect-aws / prefect-gcp credential blocks turned into the storage layer's plain settings.

The flows call these; ``sluice.storage`` and the domain never import Prefect.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import SecretStr

from sluice.storage import GcsSettings, S3Settings, Storage

if TYPE_CHECKING:
    from prefect_aws import AwsCredentials
    from prefect_gcp import GcpCredentials


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
        service_account_info=SecretStr(json.dumps(info)) if info is not None else None,
        project=block.project,
    )


def storage_for(aws: AwsCredentials | None = None, gcp: GcpCredentials | None = None) -> Storage:
    """A :class:`Storage` reaching S3 and GCS with these blocks (None: that store's
    default chain)."""
    return Storage(
        s3=s3_settings(aws) if aws is not None else None,
        gcs=gcs_settings(gcp) if gcp is not None else None,
    )
