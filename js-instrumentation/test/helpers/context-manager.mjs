// Minimal AsyncLocalStorage context manager, as an app using the OTel Node SDK would register,
// to check that console records join the app's active span.
import { AsyncLocalStorage } from 'node:async_hooks';

import { ROOT_CONTEXT } from '@opentelemetry/api';

export class AsyncLocalStorageContextManager {
  constructor() {
    this.als = new AsyncLocalStorage();
  }
  active() {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with(ctx, fn, thisArg, ...args) {
    return this.als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind(ctx, target) {
    return typeof target === 'function' ? (...a) => this.with(ctx, target, undefined, ...a) : target;
  }
  enable() {
    return this;
  }
  disable() {
    this.als.disable();
    return this;
  }
}
