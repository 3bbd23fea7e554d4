"""Types for writing ``grpc.aio`` servicers and interceptors."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

__all__ = ["Context"]

#: The context a servicer method gets; requests and responses vary per method.
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
