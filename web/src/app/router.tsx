// A small history router under /app/ (the gateway answers index.html for any app path).
import { useEffect, useState, type AnchorHTMLAttributes, type ComponentType, type MouseEvent } from "react";

export const BASE = "/app";

export interface RouteDef {
  /** Pattern under /app, e.g. "/leads/:leadId". */
  path: string;
  component: ComponentType<{ params: Record<string, string> }>;
  /** Roles that may open it (empty: every signed-in user). */
  roles?: string[];
  /** Shown in the navigation with this label key, for these roles. */
  nav?: { label: string; order: number };
}

function current(): string {
  const path = window.location.pathname;
  const inner = path.startsWith(BASE) ? path.slice(BASE.length) : path;
  return (inner || "/") + window.location.search;
}

const listeners = new Set<() => void>();

export function navigate(to: string, replace = false): void {
  const url = BASE + to;
  if (replace) window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
  for (const l of listeners) l();
}

export function useLocation(): string {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    const update = () => setLocation(current());
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return location;
}

/** Params of `pattern` in `path`, or null when it does not match. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split("/").filter(Boolean);
  const got = path.split("?")[0].split("/").filter(Boolean);
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(got[i]);
    else if (want[i] !== got[i]) return null;
  }
  return params;
}

export function searchParam(name: string): string | null {
  return new URLSearchParams(window.location.search).get(name);
}

export function Link({ to, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={BASE + to} onClick={onClick} {...rest} />;
}
