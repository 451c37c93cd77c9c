"""GCS fault tolerance: the head's state survives a head restart (KubeRay
`gcsFaultToleranceOptions`), so workers, detached actors and clients carry on."""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from components.quantity import bytes_problem, parse_quantity
from raykube.settings.model import DNS1123, Model
from raykube.settings.checked import ObjectName


class GcsStorage(Model):
    """The PersistentVolumeClaim of the rocksdb backend (KubeRay creates it, or uses claimName)."""

    size: Optional[str] = Field(default=None, description="PVC size, e.g. 10Gi (needed unless claimName is given)")
    storage_class_name: Optional[ObjectName] = Field(default=None, description="storage class; default the cluster's default class")
    access_modes: Optional[list[Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"]]] = Field(
        default=None, description="PVC access modes; default KubeRay's (ReadWriteOnce)"
    )
    claim_name: Optional[str] = Field(default=None, description="an existing PVC to use instead of creating one")
    deletion_policy: Literal["DeleteWithCluster", "Retain"] = Field(
        default="DeleteWithCluster", description="what happens to the PVC when the RayCluster is deleted"
    )

    @field_validator("size")
    @classmethod
    def _size(cls, size: Optional[str]) -> Optional[str]:
        if size is not None and (bytes_problem("size", size) or parse_quantity(size) <= 0):
            raise ValueError(bytes_problem("size", size) or f"{size!r} must be a positive quantity such as 10Gi")
        return size

    @field_validator("claim_name")
    @classmethod
    def _claim(cls, name: Optional[str]) -> Optional[str]:
        if name is not None and not DNS1123.match(name):
            raise ValueError(f"{name!r} is not a PVC name (DNS-1123 label)")
        return name


class SecretKey(Model):
    """A key of an existing Secret in the Ray namespace."""

    name: ObjectName = Field(description="Secret name")
    key: str = Field(description="key in the Secret")

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        # A Secret's data keys: letters, digits, '-', '_', '.' (at most 253).
        if len(key) > 253 or not re.fullmatch(r"[-._a-zA-Z0-9]+", key):
            raise ValueError(f"{key!r} is not a Secret key (letters, digits, '-', '_', '.')")
        return key


class RedisSettings(Model):
    """An external Redis that keeps the head's state."""

    address: Optional[str] = Field(default=None, description="host:port, e.g. redis.ray.svc.cluster.local:6379 (required)")
    password_secret: Optional[SecretKey] = Field(default=None, description="the password, from an existing Secret")

    @field_validator("address")
    @classmethod
    def _address(cls, address: Optional[str]) -> Optional[str]:
        if address is not None and (":" not in address.removeprefix("redis://").removeprefix("rediss://") or " " in address):
            raise ValueError(f"{address!r} must be host:port (or redis://host:port)")
        return address


class GcsFaultTolerance(Model):
    """Head fault tolerance: rocksdb on a PVC, or an external Redis."""

    backend: Literal["rocksdb", "redis"] = Field(description="rocksdb (a PVC, nothing else to run) or redis (an external Redis)")
    storage: Optional[GcsStorage] = Field(default=None, description="rocksdb: the PVC")
    redis: Optional[RedisSettings] = Field(default=None, description="redis: address and password")
    external_storage_namespace: Optional[str] = Field(
        default=None, description="key prefix in the store; default KubeRay's (the cluster's UID)"
    )

    @model_validator(mode="after")
    def _backend_needs_its_store(self) -> "GcsFaultTolerance":
        if self.backend == "rocksdb":
            if self.redis is not None:
                raise ValueError("__redis__ the rocksdb backend keeps its state on a PVC: remove redis, or choose backend: redis")
            if self.storage is None or not (self.storage.size or self.storage.claim_name):
                raise ValueError("__storage__ the rocksdb backend needs a PVC: give storage.size (and storageClassName) or storage.claimName")
            if self.storage.claim_name:
                # KubeRay sizes and classes only the PVC it creates itself.
                for field in ("size", "storage_class_name", "access_modes"):
                    if getattr(self.storage, field) is not None:
                        key = GcsStorage.model_fields[field].alias
                        raise ValueError(f"__storage.{key}__ an existing PVC (claimName) keeps its own {key}: remove {key}, or claimName to let KubeRay create one")
            if self.external_storage_namespace is not None:
                raise ValueError("__externalStorageNamespace__ the rocksdb backend keeps one cluster's state on its own PVC: remove it (it is for redis)")
        else:
            if self.storage is not None:
                raise ValueError("__storage__ the redis backend keeps its state in Redis: remove storage, or choose backend: rocksdb")
            if self.redis is None or not self.redis.address:
                raise ValueError("__redis.address__ the redis backend needs the Redis address (host:port)")
        return self
