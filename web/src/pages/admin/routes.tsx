// The admin area's pages: added here, with their roles and navigation entries. The pages are a
// separate chunk, fetched when an admin opens one.
import { lazy, Suspense, useEffect, type ComponentType } from "react";
import { navigate, type RouteDef } from "../../app/router";
import { useI18n } from "../../i18n/i18n";

type Page = ComponentType<{ params: Record<string, string> }>;
type Pages = typeof import("./pages");

function page(name: keyof Pages): Page {
  const Lazy = lazy(() => import("./pages").then((m) => ({ default: m[name] as Page })));
  return function AdminLazyPage(props) {
    const { t } = useI18n();
    return (
      <Suspense fallback={<p role="status">{t("app.loading")}</p>}>
        <Lazy {...props} />
      </Suspense>
    );
  };
}

const ADMIN = ["admin"];

/** "/admin" opens the first section. */
function AdminHome() {
  useEffect(() => navigate("/admin/routing", true), []);
  return null;
}

export const routes: RouteDef[] = [
  { path: "/admin", component: AdminHome, roles: ADMIN, nav: { label: "nav.admin", order: 40 } },
  { path: "/admin/grading", component: page("GradingPage"), roles: ADMIN },
  { path: "/admin/routing", component: page("RoutingPage"), roles: ADMIN },
  { path: "/admin/sla", component: page("SlaPage"), roles: ADMIN },
  { path: "/admin/stages", component: page("StagesPage"), roles: ADMIN },
  { path: "/admin/flows", component: page("FlowsPage"), roles: ADMIN },
  { path: "/admin/flows/:flowId", component: page("FlowPage"), roles: ADMIN },
  { path: "/admin/cards", component: page("CardsPage"), roles: ADMIN },
];
