// The room's shelf as the socket tells it: items, the featured item and active flash
// sales. Events: room.snapshot {items, featured_item, flash_sales}, items.updated
// {items}, item.featured {item}, flash.started {flash_sale}, flash.stock {flash_sale:
// id, remaining}, flash.ended {flash_sale: id, sold}. The viewer's shelf and the host's
// console render from it (onChange).

export class ShelfState {
  constructor(onChange) {
    this.items = [];
    this.featuredId = null;
    this.flashSales = new Map(); // id -> flash sale
    this.onChange = onChange;
  }

  /** The item's active flash sale (one per item at most), or null. */
  flashOf(item) {
    for (const sale of this.flashSales.values()) {
      if (sale.item === item.id && sale.status === 'active') return sale;
    }
    return null;
  }

  /** What a buyer pays now, as the server prices it: flash, else live, else list price. */
  priceOf(item) {
    const sale = this.flashOf(item);
    if (sale && new Date(sale.ends_at) > new Date() && sale.remaining > 0) return sale.price;
    return item.live_price ?? item.price;
  }

  featured() {
    return this.items.find((item) => item.id === this.featuredId) || null;
  }

  setItems(items) {
    this.items = items;
    for (const item of items) {
      if (item.flash_sale) this.flashSales.set(item.flash_sale.id, item.flash_sale);
    }
  }

  get events() {
    return {
      'room.snapshot': (event) => {
        this.flashSales.clear();
        for (const sale of event.data.flash_sales || []) this.flashSales.set(sale.id, sale);
        this.setItems(event.data.items || []);
        this.featuredId = event.data.featured_item ? event.data.featured_item.id : null;
        this.onChange();
      },
      'items.updated': (event) => {
        this.setItems(event.data.items);
        this.onChange();
      },
      'item.featured': (event) => {
        const item = event.data.item;
        this.featuredId = item ? item.id : null;
        if (item) {
          const index = this.items.findIndex((existing) => existing.id === item.id);
          if (index >= 0) this.items[index] = item;
          else this.items.push(item);
          if (item.flash_sale) this.flashSales.set(item.flash_sale.id, item.flash_sale);
        }
        this.onChange();
      },
      'flash.started': (event) => {
        const sale = event.data.flash_sale;
        this.flashSales.set(sale.id, sale);
        this.onChange();
      },
      'flash.stock': (event) => {
        const sale = this.flashSales.get(event.data.flash_sale);
        if (sale) {
          sale.remaining = event.data.remaining;
          this.onChange();
        }
      },
      'flash.ended': (event) => {
        this.flashSales.delete(event.data.flash_sale);
        this.onChange();
      },
    };
  }
}

/**
 * Call `tick()` four times a second, for countdowns: a once-a-second timer, at whatever
 * phase the page started it, would show a number up to a second late.
 */
export function everyTick(tick) {
  tick();
  return setInterval(tick, 250);
}

/** Set an element's text only when it changes (countdowns tick often). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
