// Cart arithmetic of the test shop.
export function lineTotal(item) {
  return item.price.amount * item.quantity;
}

export function cartTotal(cart) {
  let total = 0;
  for (const item of cart.items) {
    total += lineTotal(item);
  }
  return total;
}
