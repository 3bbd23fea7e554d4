"""``plugmesh.secretsguard.v1.SecretsGuardService``: scan a text, list the detectors."""

from __future__ import annotations

from meshkit.errors import invalid_field
from meshkit.grpc_types import Context
from plugmesh.secretsguard.v1 import secretsguard_pb2, secretsguard_pb2_grpc
from services.secretsguard.detectors import DETECTORS, scan

__all__ = ["MAX_TEXT_LENGTH", "SecretsGuardServicer"]

#: The longest text ScanText takes, in code points.
MAX_TEXT_LENGTH = 1 << 20


class SecretsGuardServicer(secretsguard_pb2_grpc.SecretsGuardServiceServicer):
    """Scans texts; keeps and logs nothing of them."""

    async def ScanText(
        self, request: secretsguard_pb2.ScanTextRequest, context: Context
    ) -> secretsguard_pb2.ScanTextResponse:
        if len(request.text) > MAX_TEXT_LENGTH:
            raise invalid_field("text", f"is longer than {MAX_TEXT_LENGTH} characters")
        return secretsguard_pb2.ScanTextResponse(
            findings=[
                secretsguard_pb2.Finding(detector=f.detector, start=f.start, end=f.end)
                for f in scan(request.text)
            ]
        )

    async def ListDetectors(
        self, request: secretsguard_pb2.ListDetectorsRequest, context: Context
    ) -> secretsguard_pb2.ListDetectorsResponse:
        return secretsguard_pb2.ListDetectorsResponse(
            detectors=[
                secretsguard_pb2.Detector(name=d.name, description=d.description)
                for d in sorted(DETECTORS, key=lambda d: d.name)
            ]
        )
