// Entry point of the single-file IIFE build: everything hangs off the global `OtelAutoheal`.
export {
  captureException,
  extractContext,
  forceFlush,
  getSdk,
  getTracer,
  init,
  injectContext,
  instrumentMcpClient,
  isEnabled,
  setEnabled,
  shutdown,
  VERSION,
} from './index.js';
