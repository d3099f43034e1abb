"""aioquic integration: TLS exporters on QUIC connections."""

from attquic.quic.exporter_hook import (
    ExporterCapture,
    ExportingQuicConnectionProtocol,
    TrafficKeyCallback,
    capture_exporter,
)

__all__ = [
    "ExporterCapture",
    "ExportingQuicConnectionProtocol",
    "TrafficKeyCallback",
    "capture_exporter",
]
