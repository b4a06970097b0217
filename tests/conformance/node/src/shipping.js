'use strict';
const { logger } = require('./logger');

const ZONES = { DE: { zone: 'eu' }, FR: { zone: 'eu' }, US: { zone: 'na' } };

function zoneFor(country) {
  logger.info({ country }, 'looking up shipping zone');
  return ZONES[country].zone; // the bug: countries without a zone
}

module.exports = { zoneFor };
