"""Prices as the shop's suppliers send them."""

import logging

log = logging.getLogger("shop.pricing")


def parse_price(raw: str) -> float:
    log.info("parsing price", extra={"raw_price": raw})
    # The bug: suppliers in some countries send a decimal comma or a currency sign.
    return float(raw)
