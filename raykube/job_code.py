"""A RayJob's (or RayService's) code, uploaded by the same `pulumi up` that creates the job.

The folder goes to the stack's AWS access bucket as a zip (Pulumi's FileArchive,
which the AWS provider zips), under a key named after the folder's content:
Ray caches a remote working_dir by its URI, so new code needs a new URI, and
unchanged code keeps the same one (no diff, no new job). Which files go in
(git's exclusions, virtualenvs and caches left out) and the archive's size
limit: raykube/code_folder.py.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import pulumi_aws as aws

from raykube.code_folder import code_files


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes: the same on every machine."""
    digest = hashlib.sha256()
    for path in code_files(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_key(namespace: str, job: str, folder: Path, kind: str = "jobs") -> str:
    """The object's key: per kind (jobs, services), so a job and a service of one name never share (and delete) one object."""
    return f"raykube/{kind}/{namespace}/{job}/{folder_digest(folder)[:16]}.zip"


def upload_job_code(name: str, bucket: str, namespace: str, job: str, folder: Path, opts: pulumi.ResourceOptions,
                    kind: str = "jobs") -> tuple[aws.s3.BucketObjectv2, str]:
    """The S3 object holding `folder`, and the s3:// URI a runtime env's working_dir takes."""
    key = code_key(namespace, job, folder, kind)
    archive = pulumi.AssetArchive({path.relative_to(folder).as_posix(): pulumi.FileAsset(str(path)) for path in code_files(folder)})
    code = aws.s3.BucketObjectv2(name, bucket=bucket, key=key, source=archive, content_type="application/zip", opts=opts)
    return code, f"s3://{bucket}/{key}"
