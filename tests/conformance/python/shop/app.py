"""Flask routes of the shop; run with ``opentelemetry-instrument python -m shop.app``."""

import logging
import signal
import sys

from flask import Flask, request
from werkzeug.serving import make_server

from shop.pricing import parse_price
from shop.shipping import zone_for

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
log = logging.getLogger("shop.app")
app = Flask("shop")


@app.get("/checkout")
def checkout() -> dict[str, object]:
    sku = request.args["sku"]
    log.info("loading cart", extra={"sku": sku})
    price = parse_price(request.args["price"])
    log.info("cart total computed", extra={"sku": sku, "total": price})
    return {"sku": sku, "total": price}


@app.get("/ship")
def ship() -> dict[str, str]:
    country = request.args["country"]
    log.info("shipping order", extra={"country": country})
    return {"zone": zone_for(country)}


@app.get("/health")
def health() -> str:
    log.info("health check ok")
    return "ok"


def main() -> None:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # SIGTERM ends serve_forever normally so the SDK's exit handler flushes the exporters.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening {server.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
