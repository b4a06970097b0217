"""OTLP receivers (gRPC and HTTP) feeding the assembler."""

from otel_autoheal.receive.grpc import GrpcReceiver
from otel_autoheal.receive.http import HttpReceiver
from otel_autoheal.receive.intake import Intake

__all__ = ["GrpcReceiver", "HttpReceiver", "Intake"]
