// Entry point of the test shop page: a checkout whose cart holds an item without a price.
import { cartTotal } from './cart.js';

function renderSummary(total) {
  document.title = `Total: ${total.toFixed(2)}`;
}

function onCheckout() {
  const cart = { items: [{ price: { amount: 3 }, quantity: 2 }, { sku: 'A-17', quantity: 1 }] };
  renderSummary(cartTotal(cart));
}

const shop = window.__shop;
OtelAutoheal.init({
  endpoint: shop.endpoint,
  serviceName: 'shop-web',
  serviceVersion: shop.release,
  scheduledDelayMillis: 60000,
});
setTimeout(onCheckout, 0);
