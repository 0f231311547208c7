"""The parts of a multipart upload as the `s3` driver records them, checked against the store
before a commit, its completion, and the copy of a completed upload to its blob's key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cargohold.ports import KeyNotFound, UploadStateInvalid

if TYPE_CHECKING:
    from cargohold.storage.s3 import S3Driver, _Staging

#: The largest object one CopyObject may copy; past it the copy is a multipart upload of
#: ranges (UploadPartCopy).
COPY_LIMIT = 5 * 1024**3
COPY_PART = 512 * 1024**2
#: S3 numbers parts 1 to 10,000.
MAX_PARTS = 10_000


class PartList:
    """(ETag, size) of each uploaded part, in part-number order from 1."""

    def __init__(self, parts: list[tuple[str, int]]) -> None:
        self._parts = parts

    @classmethod
    def from_state(cls, value: Any) -> PartList:
        if not isinstance(value, list) or len(value) > MAX_PARTS:
            raise UploadStateInvalid("upload state has an invalid part list")
        parts: list[tuple[str, int]] = []
        for each in value:
            if (
                not isinstance(each, list)
                or len(each) != 2
                or not isinstance(each[0], str)
                or not isinstance(each[1], int)
                or each[1] < 0
            ):
                raise UploadStateInvalid("upload state has an invalid part")
            parts.append((each[0], each[1]))
        return cls(parts)

    def to_state(self) -> list[list[Any]]:
        return [[etag, size] for etag, size in self._parts]

    def __len__(self) -> int:
        return len(self._parts)

    @property
    def size(self) -> int:
        return sum(size for _, size in self._parts)

    def append(self, etag: str, size: int) -> None:
        if len(self._parts) >= MAX_PARTS:
            raise UploadStateInvalid(f"an upload holds at most {MAX_PARTS} parts")
        self._parts.append((etag, size))

    def truncate(self, offset: int) -> bool:
        """Keep the parts that end at or before `offset`; False unless one ends exactly there."""
        end, kept = 0, 0
        for _, size in self._parts:
            if end + size > offset:
                break
            end += size
            kept += 1
        if end != offset:
            return False
        del self._parts[kept:]
        return True

    def completion(self) -> list[dict[str, Any]]:
        return [{"PartNumber": n, "ETag": etag} for n, (etag, _) in enumerate(self._parts, 1)]

    def recorded(self) -> dict[int, tuple[str, int]]:
        return dict(enumerate(self._parts, 1))


async def verify_parts(driver: S3Driver, upload_id: str, multipart: str, parts: PartList) -> None:
    """Refuse the commit unless the store holds every recorded part, as recorded."""
    # Some stores (SeaweedFS) keep every upload of a part number and complete with the one whose
    # ETag is named; others (AWS S3) keep the last, and refuse a stale ETag.
    held: dict[int, set[tuple[str, int]]] = {}
    marker = 0
    while True:
        answer = await driver.calls.call(
            "list_parts",
            f"parts of upload {upload_id}",
            Key=driver.data_key(upload_id),
            UploadId=multipart,
            PartNumberMarker=marker,
        )
        for part in answer.get("Parts", []):
            held.setdefault(int(part["PartNumber"]), set()).add(
                (str(part["ETag"]), int(part["Size"]))
            )
        if not answer.get("IsTruncated"):
            break
        marker = int(answer["NextPartNumberMarker"])
    for number, (etag, size) in parts.recorded().items():
        if (etag, size) not in held.get(number, set()):
            raise UploadStateInvalid(
                f"part {number} of the upload is not the part recorded: another request "
                "wrote to this upload"
            )


async def copy_object(driver: S3Driver, source: str, target: str, size: int) -> None:
    """Copy `source` to `target` inside the bucket, server-side."""
    bucket = driver.calls.bucket
    if size <= COPY_LIMIT:
        await driver.calls.call(
            "copy_object",
            "committing a blob",
            Key=target,
            CopySource={"Bucket": bucket, "Key": source},
        )
        return
    created = await driver.calls.call("create_multipart_upload", "copying a blob", Key=target)
    upload = created["UploadId"]
    completion = []
    try:
        for number, start in enumerate(range(0, size, COPY_PART), 1):
            end = min(start + COPY_PART, size) - 1
            answer = await driver.calls.call(
                "upload_part_copy",
                "copying a blob",
                Key=target,
                UploadId=upload,
                PartNumber=number,
                CopySource={"Bucket": bucket, "Key": source},
                CopySourceRange=f"bytes={start}-{end}",
            )
            completion.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
        await driver.calls.call(
            "complete_multipart_upload",
            "copying a blob",
            Key=target,
            UploadId=upload,
            MultipartUpload={"Parts": completion},
        )
    except BaseException:
        await driver.calls.call(
            "abort_multipart_upload", "copying a blob", Key=target, UploadId=upload
        )
        raise


async def complete_upload(driver: S3Driver, staging: _Staging, size: int) -> None:
    """The session's multipart upload completed at its `data` key, as recorded (the tail, if
    any, its last part)."""
    assert staging.multipart is not None
    data = driver.data_key(staging.id)
    try:
        await verify_parts(driver, staging.id, staging.multipart, staging.parts)
    except UploadStateInvalid:
        # Completed by an earlier commit of this session whose transaction failed: the
        # session's row still names these parts, so the object is theirs.
        if await _completed_size(driver, data) == size:
            return
        raise
    if staging.tail is not None:
        tail = await driver._read_tail(staging)
        answer = await driver.calls.call(
            "upload_part",
            f"the last part of upload {staging.id}",
            Key=data,
            UploadId=staging.multipart,
            PartNumber=len(staging.parts) + 1,
            Body=tail[: staging.tail_size],
        )
        staging.parts.append(str(answer["ETag"]), staging.tail_size)
    await driver.calls.call(
        "complete_multipart_upload",
        f"completing upload {staging.id}",
        Key=data,
        UploadId=staging.multipart,
        MultipartUpload={"Parts": staging.parts.completion()},
    )


async def _completed_size(driver: S3Driver, data: str) -> int | None:
    try:
        head = await driver.calls.call("head_object", "a completed upload", Key=data)
    except KeyNotFound:
        return None
    return int(head["ContentLength"])
