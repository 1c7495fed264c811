// The managers' dashboards (desktop): every panel loads its own data in one or two gateway calls,
// scoped by the viewer's org on the server. This module and ECharts load lazily (routes.tsx).
import { useI18n } from "../../i18n/i18n";
import { session } from "../../auth/session";
import { CustomerPanel } from "./CustomerPanel";
import { AccuracyPanel, ChangesPanel, ForecastPanel } from "./ForecastPanels";
import { WonPanel } from "./WonPanel";
import { DormantPanel, FunnelPanel, SlaPanel } from "./LeadPanels";
import { AnomaliesPanel, ApprovalsPanel, HealthPanel, StuckDealsPanel } from "./OpsPanels";
import "./manager.css";

export default function Dashboard() {
  const { t } = useI18n();
  const org = session.claims()?.org || t("mgr.scope.all");
  return (
    <section className="manager" aria-labelledby="mgr-h">
      <h1 id="mgr-h">{t("mgr.title")}</h1>
      <p className="sub">{t("mgr.scope", { org })}</p>
      <div className="panels">
        <ForecastPanel />
        <ChangesPanel />
        <AccuracyPanel />
        <WonPanel />
        <FunnelPanel />
        <SlaPanel />
        <DormantPanel />
        <HealthPanel />
        <AnomaliesPanel />
        <ApprovalsPanel />
        <StuckDealsPanel />
        <CustomerPanel />
      </div>
    </section>
  );
}
