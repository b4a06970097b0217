'use strict';
const { logger } = require('./logger');

// Prices as the suppliers send them. The bug: a decimal comma or a word is not handled.
function parsePrice(raw) {
  logger.info({ raw_price: raw }, 'parsing price');
  const price = Number(raw);
  if (Number.isNaN(price)) {
    throw new Error(`cannot parse price ${JSON.stringify(raw)}`);
  }
  return price;
}

module.exports = { parsePrice };
