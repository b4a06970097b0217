'use strict';
// The shop's HTTP API. Run with `node --require @opentelemetry/auto-instrumentations-node/register app.js`;
// OpenTelemetry is configured only by the standard OTEL_* environment variables.
const express = require('express');
const { logger } = require('./src/logger');
const { parsePrice } = require('./src/pricing');
const { zoneFor } = require('./src/shipping');

const app = express();

app.get('/checkout', (req, res) => {
  const { sku } = req.query;
  logger.info({ sku }, 'loading cart');
  const total = parsePrice(req.query.price);
  logger.info({ sku, total }, 'cart total computed');
  res.json({ sku, total });
});

app.get('/ship', (req, res) => {
  const { country } = req.query;
  logger.info({ country }, 'shipping order');
  res.json({ zone: zoneFor(country) });
});

app.get('/health', (req, res) => {
  logger.info('health check ok');
  res.send('ok');
});

// The usual Express error handler: log the error, answer 500 (the Express instrumentation records
// the exception on the request handler's span).
app.use((err, req, res, next) => {
  logger.error({ err }, 'request failed');
  res.status(500).json({ error: 'internal error' });
});

const server = app.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

// The SDK's register hook flushes on SIGTERM; closing the server lets the process end after that.
process.on('SIGTERM', () => server.close());
