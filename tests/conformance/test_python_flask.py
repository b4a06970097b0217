"""Python producer: a Flask app under ``opentelemetry-instrument`` with the logging auto-instrumentation."""

from __future__ import annotations

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

APP_DIR = HERE / "python"

PRICE_INPUTS = [("A-100", "12,50"), ("B-200", "free"), ("C-300", "7.5.0")]


def python_specs() -> dict[str, GroupSpec]:
    """The two bugs of the Flask shop as a person reading the issues expects them."""
    price = GroupSpec(
        count=3,
        occurrences=price_occurrences(PRICE_INPUTS, "'"),
        title_has=["ValueError", "could not convert string to float"],
        title_lacks=[raw for _, raw in PRICE_INPUTS],
        culprit="parse_price",
        culprit_file="shop/pricing.py",
        in_app=[("parse_price", "shop/pricing.py"), ("checkout", "shop/app.py")],
        not_in_app=["flask/app.py", "werkzeug/"],
        route="/checkout",
        foreign_logs=PRICE_FOREIGN_LOGS,
    )
    zone = GroupSpec(
        count=1,
        occurrences=zone_occurrences("'ZZ'"),
        title_has=["KeyError", "'ZZ'", "zone_for"],
        culprit="zone_for",
        culprit_file="shop/shipping.py",
        in_app=[("zone_for", "shop/shipping.py"), ("ship", "shop/app.py")],
        not_in_app=["flask/app.py", "werkzeug/"],
        route="/ship",
        foreign_logs=zone_foreign_logs(PRICE_INPUTS),
    )
    return {"price": price, "zone": zone}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_flask_under_opentelemetry_instrument(autoheal_factory: Callable[..., object], producer: Callable[..., ProducerApp],
                                              protocol: str) -> None:
    """Flask + opentelemetry-instrument sending OTLP straight to the service: two well-formed issues."""
    venv = require(CACHE / "python-venv" / "bin", "the Python app's virtualenv")
    autoheal = autoheal_factory(trace_wait=TRACE_WAIT)
    env = otel_env("shop-flask", protocol, autoheal, OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
                   PYTHONPATH=str(APP_DIR))
    app = producer([str(venv / "opentelemetry-instrument"), str(venv / "python"), "-m", "shop.app"], env, APP_DIR)
    drive_shop(app, PRICE_INPUTS)
    issues = wait_for_groups(autoheal, app, 4)
    check_groups(issues, python_specs())
