"""Go producer: net/http + otelhttp + the otelslog bridge, built plain and with ``-trimpath``."""

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

PRICE_INPUTS = [("A-100", "12,50"), ("B-200", "free"), ("C-300", "7.5.0")]
# Frames every Go stack recorded by the SDK starts with, and the server's own: never the culprit.
LIBRARY_FRAMES = ["recordStackTrace", "RecordError", "net/http.", "otelhttp"]


def go_specs() -> dict[str, GroupSpec]:
    """The two bugs of the Go shop as a person reading the issues expects them."""
    price = GroupSpec(
        count=3,
        # otelhttp v0.72 records url.path but not url.query on server spans: no query to expect.
        occurrences=price_occurrences(PRICE_INPUTS, '"', with_query=False),
        title_has=["invalid syntax"],
        title_lacks=["wrapError", *(raw for _, raw in PRICE_INPUTS)],
        culprit="Checkout",
        culprit_file="internal/cart/handlers.go",
        in_app=[("cart.(*Handler).Checkout", "internal/cart/handlers.go")],
        not_in_app=LIBRARY_FRAMES,
        route="/checkout",
        foreign_logs=PRICE_FOREIGN_LOGS,
    )
    zone = GroupSpec(
        count=1,
        occurrences=zone_occurrences("ZZ", with_query=False),
        # The typed error's name or its message: either reads well; the message must be whole.
        title_has=["no shipping zone for country ZZ"],
        culprit="Ship",
        culprit_file="internal/cart/handlers.go",
        in_app=[("cart.(*Handler).Ship", "internal/cart/handlers.go")],
        not_in_app=LIBRARY_FRAMES,
        route="/ship",
        foreign_logs=zone_foreign_logs(PRICE_INPUTS),
    )
    return {"price": price, "zone": zone}


@pytest.mark.parametrize("build", ["shop", "shop-trimpath"])
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_go_service_with_otelhttp_and_slog(autoheal_factory: Callable[..., object], producer: Callable[..., ProducerApp],
                                           build: str, protocol: str) -> None:
    """A cmd/+internal/ Go service, plain and -trimpath builds, over gRPC and HTTP: two well-formed issues."""
    binary = require(CACHE / "go" / "current" / build, f"the Go app build {build!r}")
    autoheal = autoheal_factory(trace_wait=TRACE_WAIT)
    app = producer([str(binary)], otel_env("shop-go", protocol, autoheal), HERE / "go")
    drive_shop(app, PRICE_INPUTS)
    issues = wait_for_groups(autoheal, app, 4)
    check_groups(issues, go_specs())
