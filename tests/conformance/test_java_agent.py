"""Java producer: the OpenTelemetry Java agent on a JDK HttpServer program with ``@WithSpan`` and logback."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from conformance_support import (
    CACHE,
    HERE,
    PRICE_FOREIGN_LOGS,
    TRACE_WAIT,
    GroupSpec,
    ProducerApp,
    check_groups,
    drive_shop,
    otel_env,
    price_occurrences,
    require,
    wait_for_groups,
    zone_foreign_logs,
    zone_occurrences,
)

PRICE_INPUTS = [("A-100", "12,50"), ("B-200", "free"), ("C-300", "9EUR")]
# The agent's own frames and the JDK server's dispatch: never part of the key or the culprit.
LIBRARY_FRAMES = ["OpenTelemetryFilter", "ResponseCustomizingFilter", "ServerImpl", "Filter.java", "ThreadPoolExecutor"]


def java_specs() -> dict[str, GroupSpec]:
    """The two bugs of the Java shop as a person reading the issues expects them."""
    price = GroupSpec(
        count=3,
        occurrences=price_occurrences(PRICE_INPUTS, '"'),
        title_has=["NumberFormatException", "For input string"],
        title_lacks=[raw for _, raw in PRICE_INPUTS],
        culprit="Pricing.parsePrice",
        culprit_file="Pricing.java",
        in_app=[("parsePrice", "Pricing.java"), ("checkout", "Shop.java")],
        not_in_app=LIBRARY_FRAMES,
        route="/checkout",
        foreign_logs=PRICE_FOREIGN_LOGS,
    )
    zone = GroupSpec(
        count=1,
        occurrences=zone_occurrences("Shipping$Zone.name()"),
        # Java's helpful NPE message names the methods: a person keeps them in the title.
        title_has=["NullPointerException", "Zone.name()", "java.util.Map.get(Object)"],
        culprit="Shipping.zoneFor",
        culprit_file="Shipping.java",
        in_app=[("zoneFor", "Shipping.java"), ("ship", "Shop.java")],
        not_in_app=LIBRARY_FRAMES,
        route="/ship",
        foreign_logs=zone_foreign_logs(PRICE_INPUTS),
    )
    return {"price": price, "zone": zone}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_java_agent_with_withspan_and_logback(autoheal_factory: Callable[..., object],
                                              producer: Callable[..., ProducerApp], protocol: str) -> None:
    """The Java agent from Maven Central, configured by OTEL_* only: two well-formed issues."""
    java_dir = CACHE / "java"
    agent = require(java_dir / "opentelemetry-javaagent.jar", "the OpenTelemetry Java agent")
    require(java_dir / "classes" / "shop" / "Shop.class", "the compiled Java program")
    java = shutil.which("java")
    assert java, "a JDK (17+) must be on PATH"
    autoheal = autoheal_factory(trace_wait=TRACE_WAIT)
    env = otel_env("shop-java", protocol, autoheal,
                   OTEL_INSTRUMENTATION_LOGBACK_APPENDER_EXPERIMENTAL_CAPTURE_KEY_VALUE_PAIR_ATTRIBUTES="true",
                   # Never probe cloud metadata addresses off this machine.
                   OTEL_RESOURCE_PROVIDERS_AWS_ENABLED="false", OTEL_RESOURCE_PROVIDERS_GCP_ENABLED="false")
    classpath = f"{java_dir / 'classes'}:{java_dir / 'lib'}/*"
    app = producer([java, f"-javaagent:{agent}", "-cp", classpath, "shop.Shop"], env, HERE / "java")
    drive_shop(app, PRICE_INPUTS)
    issues = wait_for_groups(autoheal, app, 4)
    check_groups(issues, java_specs())
