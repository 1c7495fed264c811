// The manager area's pages: added here, with their roles and navigation entries. The dashboards
// (and ECharts with them) are a separate chunk, fetched only when a manager opens them.
import { lazy, Suspense } from "react";
import type { RouteDef } from "../../app/router";
import { useI18n } from "../../i18n/i18n";

const Dashboard = lazy(() => import("./Dashboard"));

function DashboardPage() {
  const { t } = useI18n();
  return (
    <Suspense fallback={<p role="status">{t("mgr.loading")}</p>}>
      <Dashboard />
    </Suspense>
  );
}

const MANAGERS = ["director", "supervisor", "admin"];

export const routes: RouteDef[] = [
  { path: "/dashboard", component: DashboardPage, roles: MANAGERS, nav: { label: "nav.dashboards", order: 30 } },
];
