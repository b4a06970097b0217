"""Node producer: Express under ``@opentelemetry/auto-instrumentations-node/register`` with pino logs."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from conformance_support import (
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

APP_DIR = HERE / "node"
PRICE_INPUTS = [("A-100", "12,50"), ("B-200", "free"), ("C-300", "9EUR")]
LIBRARY_FRAMES = ["node_modules/", "node:internal", "node:"]


def node_specs() -> dict[str, GroupSpec]:
    """The two bugs of the Express shop as a person reading the issues expects them."""
    price = GroupSpec(
        count=3,
        occurrences=price_occurrences(PRICE_INPUTS, '"'),
        title_has=["Error", "cannot parse price"],
        title_lacks=[raw for _, raw in PRICE_INPUTS],
        culprit="parsePrice",
        culprit_file="src/pricing.js",
        in_app=[("parsePrice", "src/pricing.js"), ("app.js", "app.js")],
        not_in_app=LIBRARY_FRAMES,
        route="/checkout",
        foreign_logs=PRICE_FOREIGN_LOGS,
    )
    zone = GroupSpec(
        count=1,
        occurrences=zone_occurrences("reading 'zone'"),
        title_has=["TypeError", "Cannot read properties of undefined (reading 'zone')"],
        culprit="zoneFor",
        culprit_file="src/shipping.js",
        in_app=[("zoneFor", "src/shipping.js"), ("app.js", "app.js")],
        not_in_app=LIBRARY_FRAMES,
        route="/ship",
        foreign_logs=zone_foreign_logs(PRICE_INPUTS),
    )
    return {"price": price, "zone": zone}


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf", "http/json"])
def test_express_with_sdk_node_auto_instrumentations(autoheal_factory: Callable[..., object],
                                                     producer: Callable[..., ProducerApp], protocol: str) -> None:
    """Express + the official Node SDK's exporters (each OTLP protocol) straight to the service: two good issues."""
    require(APP_DIR / "node_modules" / "@opentelemetry" / "auto-instrumentations-node", "the Node app's packages")
    node = shutil.which("node")
    assert node, "Node 20+ must be on PATH"
    autoheal = autoheal_factory(trace_wait=TRACE_WAIT)
    # Only what the app uses, so a start on a 2-core machine stays quick (documented OTEL_* variable).
    # Local resource detectors only: the default set includes cloud detectors that probe metadata
    # addresses off this machine.
    env = otel_env("shop-node", protocol, autoheal, OTEL_NODE_ENABLED_INSTRUMENTATIONS="http,express,pino",
                   OTEL_NODE_RESOURCE_DETECTORS="env,host,os,process,serviceinstance")
    app = producer([node, "--require", "@opentelemetry/auto-instrumentations-node/register", "app.js"], env, APP_DIR)
    drive_shop(app, PRICE_INPUTS)
    issues = wait_for_groups(autoheal, app, 4)
    check_groups(issues, node_specs())
