package shop;

import io.opentelemetry.instrumentation.annotations.WithSpan;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Prices as the suppliers send them. */
final class Pricing {
  private static final Logger LOG = LoggerFactory.getLogger(Pricing.class);

  private Pricing() {}

  @WithSpan
  static double parsePrice(String raw) {
    LOG.atInfo().addKeyValue("raw_price", raw).log("parsing price");
    // The bug: a decimal comma or a currency suffix is not handled.
    return Double.parseDouble(raw);
  }
}
