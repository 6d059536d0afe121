"""Object storage for packs (`s3://`, and the other URLs litdata reads): where it is, litdata's local cache, small
files read and written whole, and one line for each fault a user meets (bucket missing, credentials refused, server
unreachable or gone).

Endpoint, credentials and region are the standard AWS settings that boto3 — and through it litdata's chunk
transfers — read: AWS_ENDPOINT_URL (an S3-compatible server), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN or AWS_PROFILE, AWS_REGION, AWS_CA_BUNDLE (a private CA). The folder where litdata keeps the
chunks it downloaded is DEEPCONV_CACHE_DIR (default: litdata's ~/.lightning/chunks).
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from deepconv_cli.errors import DeepconvError, failure, usage

CACHE_ENV = "DEEPCONV_CACHE_DIR"
ATTEMPTS_ENV = "DEEPCONV_S3_ATTEMPTS"  # attempts of one request (default 10), with botocore's exponential backoff


def cache_dir() -> str | None:
    """The folder for litdata's downloaded chunks (DEEPCONV_CACHE_DIR), or None for litdata's default."""
    return os.environ.get(CACHE_ENV) or None


def split_url(url: str) -> tuple[str, str]:
    """s3://bucket/a/b -> ("bucket", "a/b")."""
    bucket, _, key = url.split("://", 1)[1].partition("/")
    return bucket, key.strip("/")


def attempts() -> int:
    return int(os.environ.get(ATTEMPTS_ENV) or 10)


def options() -> dict:
    """litdata's `storage_options`: botocore retrying a transient fault `attempts()` times with backoff (litdata's
    own client tries 1000 times: a server gone would hang a run for hours), then the request fails."""
    from botocore.config import Config

    return {"config": Config(retries={"mode": "standard", "max_attempts": attempts()}, connect_timeout=5,
                             read_timeout=60)}


def _client():
    import boto3

    return boto3.client("s3", **options())


def where() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"


def reason(url: str, e: Exception) -> DeepconvError:
    """The one-line error for a failed request on `url`: usage (exit 2) for what the user names or sets, failure
    (exit 1) for a server that cannot be reached."""
    from botocore import exceptions as bx

    bucket = split_url(url)[0]
    if isinstance(e, bx.ClientError):
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket" or (code == "404" and not split_url(url)[1]):
            return usage(f"bucket {bucket!r} does not exist on {where()} (create it first: aws s3 mb s3://{bucket})")
        if code in ("NoSuchKey", "404"):
            return usage(f"{url} not found on {where()}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AccessDenied", "InvalidToken",
                    "ExpiredToken"):
            return usage(f"{where()} refused the credentials for {url} ({code}): check AWS_ACCESS_KEY_ID / "
                         "AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
        return failure(f"{url}: {code}: {e}")
    if isinstance(e, bx.NoCredentialsError):
        return usage(f"no credentials for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")
    if isinstance(e, bx.SSLError):
        return usage(f"{where()}'s TLS certificate is not trusted (AWS_CA_BUNDLE names a private CA): {e}")
    if isinstance(e, (bx.EndpointConnectionError, bx.ConnectionError, bx.ReadTimeoutError)):
        target = f" for {url}" if split_url(url)[0] else ""
        return failure(f"cannot reach {where()}{target} after {attempts()} attempts ({type(e).__name__}); check "
                       "AWS_ENDPOINT_URL and the network")
    return failure(f"{url}: {type(e).__name__}: {e}")


def read_bytes(url: str) -> bytes:
    """The whole object at `url`."""
    if not url.startswith("s3://"):
        import fsspec

        with fsspec.open(url, "rb") as f:
            return f.read()
    bucket, key = split_url(url)
    try:
        return _client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:  # noqa: BLE001 - botocore's many types, mapped to one line
        raise reason(url, e) from None


def write_bytes(url: str, data: bytes) -> None:
    """Put `data` at `url` in one request: the object appears whole or not at all."""
    if not url.startswith("s3://"):
        import fsspec

        with fsspec.open(url, "wb") as f:
            f.write(data)
        return
    bucket, key = split_url(url)
    try:
        _client().put_object(Bucket=bucket, Key=key, Body=data)
    except Exception as e:  # noqa: BLE001
        raise reason(url, e) from None


def exists(url: str) -> bool:
    """An object is stored at `url` (an s3:// key; other schemes through fsspec)."""
    if not url.startswith("s3://"):
        import fsspec

        return fsspec.core.url_to_fs(url)[0].exists(url)
    bucket, key = split_url(url)
    try:
        _client().head_object(Bucket=bucket, Key=key)
        return True
    except Exception as e:  # noqa: BLE001
        error = reason(url, e)
        if "not found" in str(error):
            return False
        raise error from None


def keys_under(url: str, limit: int = 0) -> list[str]:
    """The keys stored under the s3:// prefix `url` (the first `limit` when set)."""
    bucket, prefix = split_url(url)
    prefix = f"{prefix}/" if prefix else ""
    keys: list[str] = []
    try:
        for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
            if limit and len(keys) >= limit:
                return keys[:limit]
    except Exception as e:  # noqa: BLE001
        raise reason(url, e) from None
    return keys


def delete_under(url: str) -> int:
    """Delete every object under the s3:// prefix `url` (1,000 a request); returns how many."""
    bucket, keys = split_url(url)[0], keys_under(url)
    client = _client()
    try:
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                         "Quiet": True})
    except Exception as e:  # noqa: BLE001
        raise reason(url, e) from None
    return len(keys)


def indexed_items(url: str) -> int:
    """How many items the litdata index.json at `url` lists (0 when there is none)."""
    import json

    if not exists(url):
        return 0
    return sum(chunk["chunk_size"] for chunk in json.loads(read_bytes(url))["chunks"])


@contextmanager
def private_staging() -> Iterator[None]:
    """litdata stages an upload's chunks and index files in one folder shared by every `optimize` on the machine
    (~/.lightning/chunks, DATA_OPTIMIZER_CACHE_FOLDER): two packs at once remove or merge each other's files (seen:
    an index.json listing no chunks). Each upload gets its own folder, removed afterwards."""
    names = ("DATA_OPTIMIZER_CACHE_FOLDER", "DATA_OPTIMIZER_DATA_CACHE_FOLDER")
    saved = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="deepconv-pack-") as folder:
        for name in names:
            os.environ[name] = os.path.join(folder, name.lower())
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def check_reachable(url: str) -> None:
    """Before a long transfer: the bucket exists, the credentials are accepted, the server answers (one line
    otherwise)."""
    if not url.startswith("s3://"):
        return
    bucket = split_url(url)[0]
    try:
        _client().head_bucket(Bucket=bucket)
    except Exception as e:  # noqa: BLE001
        raise reason(f"s3://{bucket}", e) from None


def quiet_download_crashes() -> None:
    """A server gone mid-run is one line (`fault`), not litdata's traceback as well (compat/litdata.py)."""
    from deepconv_cli.compat.litdata import quiet_download_crashes

    quiet_download_crashes()


def fault(e: BaseException) -> DeepconvError | None:
    """The one-line error for an object-storage fault raised deep in a run (litdata gives up on a chunk after its
    retries, botocore on a request), or None when `e` is something else."""
    from botocore import exceptions as bx

    seen = e
    while seen is not None:
        if isinstance(seen, (bx.BotoCoreError, bx.ClientError)):
            return reason("s3://", seen)
        text = str(seen)
        if "Generic S3 error" in text or "prefetch thread crashed" in text.lower():
            first = next((line for line in text.splitlines() if "Error" in line), text.splitlines()[0])
            return failure(f"object storage at {where()} stopped answering, after litdata's retries: {first.strip()}")
        seen = seen.__cause__ or seen.__context__
    return None
