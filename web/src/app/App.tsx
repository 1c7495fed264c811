import { useEffect, useState, useSyncExternalStore } from "react";
import { api } from "../api/client";
import { session } from "../auth/session";
import { useI18n } from "../i18n/i18n";
import { routes as adminRoutes } from "../pages/admin/routes";
import { routes as approvalRoutes } from "../pages/approvals/routes";
import { routes as managerRoutes } from "../pages/manager/routes";
import { routes as repRoutes } from "../pages/rep/routes";
import { SignIn } from "../pages/SignIn";
import { Link, match, navigate, useLocation, type RouteDef } from "./router";
import { StatusBar } from "./StatusBar";

export const ROUTES: RouteDef[] = [...repRoutes, ...approvalRoutes, ...managerRoutes, ...adminRoutes];

function useSignedIn() {
  return useSyncExternalStore(session.subscribe, () => session.token());
}

function allowed(route: RouteDef): boolean {
  return !route.roles?.length || session.hasRole(...route.roles);
}

/** Where a user lands: reps on their worklist, managers on the dashboards, approvers on the queue. */
export function home(): string {
  const first = ROUTES.filter((r) => r.nav && allowed(r)).sort((a, b) => a.nav!.order - b.nav!.order)[0];
  return first?.path ?? "/";
}

export function App() {
  const token = useSignedIn();
  const location = useLocation();
  const { t, locale, setLocale } = useI18n();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [location]);
  useEffect(() => {
    // "/" is where a user lands: their first page (reps the worklist, managers the dashboards).
    const to = home();
    if (token && location.split("?")[0] === "/" && to !== "/") navigate(to, true);
  }, [token, location]);
  useEffect(() => {
    document.documentElement.lang = locale;
  }, [locale]);
  useEffect(() => {
    // The server decides whether the token is still good (expired, revoked, re-keyed): a 401
    // signs out (session.expire) and the sign-in page says why. Offline, the token is kept.
    if (token) api.get("/v1/whoami").catch(() => undefined);
  }, [token]);

  if (!token) return <SignIn />;
  const path = location.split("?")[0];
  let page = <p role="status">{t("app.notFound")}</p>;
  for (const route of ROUTES) {
    const params = match(route.path, path);
    if (params && allowed(route)) {
      const Page = route.component;
      page = <Page params={params} />;
      break;
    }
  }
  const nav = ROUTES.filter((r) => r.nav && allowed(r)).sort((a, b) => a.nav!.order - b.nav!.order);
  const claims = session.claims();
  return (
    <div className="shell">
      <header className="topbar">
        <button className="menu" aria-expanded={menuOpen} aria-label="menu" onClick={() => setMenuOpen(!menuOpen)}>
          ☰
        </button>
        <span className="brand">{t("app.name")}</span>
        <StatusBar />
        <span className="who" title={claims?.org}>
          {claims?.sub}
        </span>
        <label className="lang">
          <span className="sr-only">{t("app.language")}</span>
          <select value={locale} onChange={(e) => setLocale(e.target.value as "zh-CN" | "en")}>
            <option value="zh-CN">中文</option>
            <option value="en">English</option>
          </select>
        </label>
        <button onClick={() => session.signOut()}>{t("app.signOut")}</button>
      </header>
      <nav className={menuOpen ? "nav open" : "nav"} aria-label="main">
        {nav.map((r) => (
          <Link key={r.path} to={r.path} aria-current={match(r.path, path) ? "page" : undefined}>
            {t(r.nav!.label)}
          </Link>
        ))}
      </nav>
      <main id="main">{page}</main>
    </div>
  );
}
