"""A tiny app instrumented with the plain OpenTelemetry SDK that logs a few lines and then fails.

It sends to wherever ``OTEL_EXPORTER_OTLP_ENDPOINT`` points (otel-autoheal or a collector).
"""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

resource = Resource.create({"service.name": "quickstart-shop", "service.version": "1.0.0"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
set_logger_provider(logger_provider)
import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the SDK's handler is deprecated in favour of instrumentation-logging
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("shop")


def parse_price(raw: str) -> float:
    return float(raw.replace("$", ""))


def checkout(cart: dict[str, str]) -> float:
    log.info("checking out %d items", len(cart))
    total = 0.0
    for sku, price in cart.items():
        log.info("pricing %s", sku)
        total += parse_price(price)
    return total


def main() -> int:
    tracer = trace.get_tracer("quickstart")
    try:
        with tracer.start_as_current_span("checkout") as span:
            span.set_attribute("process.command_args", sys.argv)
            log.info("loaded cart for user 42 (api_key=sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc)")
            checkout({"book": "$12.50", "pen": "$1.20", "gift-card": "N/A"})
    except ValueError:
        log.error("checkout failed")
        return 1
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
