"""Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph, moto, ...).

``s3://bucket/prefix`` keeps blob ``sha`` at ``prefix/blobs/ab/abcdef…``. The endpoint
comes from env LABLEDGER_S3_ENDPOINT_URL, else AWS_ENDPOINT_URL (else AWS itself);
credentials and region come from the usual boto3 chain.

Uploads stream the file in parts of at least 8 MiB through an explicit multipart
upload, hashing each part on the way; the upload is completed only when the sha256
matches, so an object appears whole or not at all. A killed process leaves only an
incomplete multipart upload, which S3 never shows as an object (``labledger gc``
aborts old ones).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO, cast

from .._exceptions import IntegrityError, NotFoundError, UsageError
from .._settings import setting
from ._blobstore import (
    CHUNK_SIZE,
    BlobInfo,
    atomic_download,
    check_sha,
    is_sha256,
    verified_bytes,
)

__all__ = ["S3BlobStore", "parse_s3_uri"]

_MAX_PARTS = 10_000


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``."""
    if not uri.startswith("s3://"):
        raise UsageError(f"not an S3 URI: {uri!r}")
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError(f"the S3 URI {uri!r} has no bucket")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


def _endpoint() -> str | None:
    return setting("LABLEDGER_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None


class S3BlobStore:
    """Content-addressed blobs under ``s3://bucket/prefix``."""

    def __init__(self, uri: str, *, client: Any = None, part_size: int = CHUNK_SIZE) -> None:
        self.uri = uri.rstrip("/")
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.part_size = max(part_size, 5 * 1024 * 1024)
        self.endpoint_url = _endpoint()
        if client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session()
            client = session.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=session.region_name
                or os.environ.get("AWS_DEFAULT_REGION")
                or "us-east-1",
                config=Config(
                    connect_timeout=5,
                    read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path"} if self.endpoint_url else None,
                ),
            )
        self.client = client

    def __repr__(self) -> str:
        return f"S3BlobStore({self.uri!r})"

    def key(self, sha: str) -> str:
        check_sha(sha)
        return f"{self.prefix}blobs/{sha[:2]}/{sha}"

    @staticmethod
    def _is_missing(exc: Exception) -> bool:
        resp = getattr(exc, "response", None) or {}
        code = str(resp.get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def has(self, sha: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha))
        except ClientError as exc:
            if self._is_missing(exc):
                return False
            raise
        return True

    def size(self, sha: str) -> int | None:
        """The object's ContentLength, None when it is not there."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(sha))
        except ClientError as exc:
            if self._is_missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def put_file(self, path: str | os.PathLike[str], sha: str, size: int) -> None:
        key = self.key(sha)
        if self.has(sha):
            return
        what = f"file {os.fspath(path)!r} (it changed after it was logged)"
        part = max(self.part_size, -(-size // (_MAX_PARTS - 1)))
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            if size < part:
                data = fh.read(part)
                h.update(data)
                if h.hexdigest() != sha or len(data) != size:
                    raise IntegrityError(what, sha, h.hexdigest())
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
                return
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            try:
                parts = []
                number = 1
                total = 0
                while True:
                    chunk = fh.read(part)
                    if not chunk:
                        break
                    h.update(chunk)
                    total += len(chunk)
                    r = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        PartNumber=number,
                        UploadId=upload_id,
                        Body=chunk,
                    )
                    parts.append({"ETag": r["ETag"], "PartNumber": number})
                    number += 1
                    del chunk
                actual = h.hexdigest()
                if actual != sha or total != size:
                    raise IntegrityError(what, sha, actual)
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
                raise

    def put_bytes(self, sha: str, data: bytes) -> None:
        """Store ``data`` as object ``sha`` (one PUT, the whole object or nothing); an
        object already there is kept. IntegrityError when ``data`` is not ``sha``."""
        verified_bytes(sha, data, f"blob {sha[:16]}… (bytes to store)")
        if not self.has(sha):
            self.client.put_object(Bucket=self.bucket, Key=self.key(sha), Body=data)

    def put_many(self, blobs: Mapping[str, bytes]) -> None:
        """``put_bytes`` for a batch, a few requests in flight at a time (S3 latency, not
        bandwidth, bounds small objects); every object is stored when this returns."""
        for sha, data in blobs.items():
            check_sha(sha)
            verified_bytes(sha, data, f"blob {sha[:16]}… (bytes to store)")
        items = list(blobs.items())
        if len(items) <= 1:
            for sha, data in items:
                self.put_bytes(sha, data)
            return
        from concurrent.futures import ThreadPoolExecutor

        def put(item: tuple[str, bytes]) -> None:
            if not self.has(item[0]):
                self.client.put_object(Bucket=self.bucket, Key=self.key(item[0]), Body=item[1])

        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            for _ in pool.map(put, items):  # re-raises the first failure
                pass

    def get_bytes(self, sha: str) -> bytes:
        body = self.open(sha)
        try:
            data = body.read()
        finally:
            body.close()
        return verified_bytes(sha, data, f"blob {sha[:16]}… in {self.uri}")

    def open(self, sha: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(sha))
        except ClientError as exc:
            if self._is_missing(exc):
                raise NotFoundError(f"blob {sha[:16]}… is missing from {self.uri}") from None
            raise
        return cast(BinaryIO, obj["Body"])

    def download(self, sha: str, dest: str | os.PathLike[str]) -> None:
        body = self.open(sha)
        try:
            atomic_download(body, sha, dest, f"blob {sha[:16]}… in {self.uri}")
        finally:
            body.close()

    def delete(self, sha: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(sha))

    def touch(self, sha: str) -> None:
        return None  # S3 has no cheap mtime update; gc's --min-age grace covers the race

    def iter_blobs(self) -> Iterator[BlobInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if is_sha256(name):
                    yield BlobInfo(name, int(obj["Size"]), obj["LastModified"].timestamp())

    def iter_shas(self) -> Iterator[str]:
        return (b.sha256 for b in self.iter_blobs())

    def abort_stale_uploads(self, older_than: float) -> int:
        """Abort incomplete multipart uploads under our prefix older than ``older_than`` seconds."""
        import time

        now = time.time()
        n = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
            for up in page.get("Uploads", []):
                if now - up["Initiated"].timestamp() > older_than:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"]
                    )
                    n += 1
        return n
