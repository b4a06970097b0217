/** Kept in step with package.json by the build check in test/package.test.mjs. */
export const VERSION = '0.1.0';
export const SCOPE_NAME = '@otel-autoheal/js';
