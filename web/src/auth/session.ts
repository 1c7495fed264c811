// The signed-in user: a bearer token (from the embedded demo sign-in, or from the deployment's
// identity provider) and what its claims say. Tokens expire: `expire()` signs out but keeps the
// offline queue (IndexedDB, src/offline) so queued work is sent after the next sign-in.
const TOKEN_KEY = "salesops.token";
// The expiry notice outlives a reload (a 401 can land just before one) until the next sign-in;
// sessionStorage, so it is this tab's and gone with it.
const EXPIRED_KEY = "salesops.expired";

export interface Claims {
  sub: string;
  tenant: string;
  roles: string[];
  org: string;
  exp: number; // seconds since the epoch
}

type Listener = () => void;
const listeners = new Set<Listener>();

function decode(token: string): Claims | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const binary = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    const c = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Claims>;
    if (!c.sub || typeof c.exp !== "number") return null;
    return { sub: c.sub, tenant: c.tenant ?? "", roles: c.roles ?? [], org: c.org ?? "", exp: c.exp };
  } catch {
    return null;
  }
}

function storage(): Storage | null {
  return typeof localStorage === "undefined" ? null : localStorage;
}

function tabStorage(): Storage | null {
  return typeof sessionStorage === "undefined" ? null : sessionStorage;
}

export const session = {
  token(): string | null {
    const token = storage()?.getItem(TOKEN_KEY) ?? null;
    if (!token) return null;
    const claims = decode(token);
    if (!claims || claims.exp * 1000 <= Date.now()) return null;
    return token;
  },
  claims(): Claims | null {
    const token = this.token();
    return token ? decode(token) : null;
  },
  signIn(token: string): Claims {
    const claims = decode(token);
    if (!claims) throw new Error("not a token this console understands");
    storage()?.setItem(TOKEN_KEY, token);
    tabStorage()?.removeItem(EXPIRED_KEY);
    notify();
    return claims;
  },
  signOut(): void {
    storage()?.removeItem(TOKEN_KEY);
    tabStorage()?.removeItem(EXPIRED_KEY);
    notify();
  },
  /** The server refused the token (401) or it ran out: back to sign-in, saying why. */
  expire(): void {
    tabStorage()?.setItem(EXPIRED_KEY, "1");
    storage()?.removeItem(TOKEN_KEY);
    notify();
  },
  /** Whether the last sign-out was an expiry (the sign-in page says so until the next sign-in). */
  expired(): boolean {
    return tabStorage()?.getItem(EXPIRED_KEY) === "1";
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  hasRole(...roles: string[]): boolean {
    const mine = this.claims()?.roles ?? [];
    return roles.some((r) => mine.includes(r));
  },
};

function notify(): void {
  for (const l of listeners) l();
}

export { decode as decodeToken };
