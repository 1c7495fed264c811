import { afterEach, describe, expect, it, vi } from "vitest";

/** A Storage kept in a Map: what a browser tab's localStorage / sessionStorage hold. */
function memoryStorage(): Storage {
  const items = new Map<string, string>();
  return {
    get length() {
      return items.size;
    },
    clear: () => items.clear(),
    getItem: (key) => items.get(key) ?? null,
    key: (i) => [...items.keys()][i] ?? null,
    removeItem: (key) => void items.delete(key),
    setItem: (key, value) => void items.set(key, String(value)),
  };
}

function token(sub: string): string {
  const body = btoa(JSON.stringify({ sub, tenant: "t1", roles: ["rep"], exp: Date.now() / 1000 + 3600 }));
  return `e30.${body.replace(/=+$/, "")}.c2ln`;
}

/** The module as a freshly loaded page sees it (a reload keeps the tab's storages, not the module). */
async function loadPage() {
  vi.resetModules();
  return (await import("./session")).session;
}

afterEach(() => vi.unstubAllGlobals());

describe("session expiry notice", () => {
  it("is still shown after a reload that follows the 401, until the next sign-in", async () => {
    vi.stubGlobal("localStorage", memoryStorage());
    vi.stubGlobal("sessionStorage", memoryStorage());
    let session = await loadPage();
    session.signIn(token("rep-a1"));
    expect(session.expired()).toBe(false);
    session.expire();
    expect(session.token()).toBeNull();
    session = await loadPage();
    expect(session.expired()).toBe(true);
    session.signIn(token("rep-a1"));
    expect(session.expired()).toBe(false);
    session = await loadPage();
    expect(session.expired()).toBe(false);
  });

  it("is not shown after a deliberate sign-out", async () => {
    vi.stubGlobal("localStorage", memoryStorage());
    vi.stubGlobal("sessionStorage", memoryStorage());
    const session = await loadPage();
    session.signIn(token("rep-a1"));
    session.expire();
    session.signOut();
    expect(session.expired()).toBe(false);
  });
});
