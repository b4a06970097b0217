'use strict';
// pino's OpenTelemetry instrumentation (in auto-instrumentations-node) sends every record as an
// OTel log record with the trace context of the active span.
const pino = require('pino');

const logger = pino({ name: 'shop' });

module.exports = { logger };
