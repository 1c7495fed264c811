// Won revenue per rep and average deal size over time (pipeline GetWonRevenue): one gateway call,
// six months ending with this one, per rep within the viewer's org (the server scopes it).
import { useMemo } from "react";
import { api, query, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { useLoad } from "./load";
import { Panel, type TableData } from "./Panel";
import { major, scopeOf } from "./shape";
import { Status } from "./Status";

type Won = Schemas["salesops.pipeline.v1.GetWonRevenueResponse"];
type Point = Schemas["salesops.pipeline.v1.WonRevenuePoint"];

const round = (n: number) => Math.round(n * 100) / 100;
const month = (p?: Point) => {
  const d = p?.period?.startDate;
  return d ? `${d.year}-${String(d.month).padStart(2, "0")}` : "";
};

export function WonPanel() {
  const { t } = useI18n();
  const load = useLoad(
    () => api.get<Won>("/v1/wonRevenue" + query({ groupBy: "ORG_LEVEL_REP", granularity: "PERIOD_GRANULARITY_MONTH", periodCount: 6 })),
    [],
  );
  const total = load.data?.total?.points ?? [];
  const reps = load.data?.rows ?? [];
  const months = total.map(month);
  const anyWon = total.some((p) => (p.wonDealCount ?? 0) > 0);
  const name = (r: (typeof reps)[number]) => r.displayName || r.key || "";
  // The server scopes the figures to the viewer's org and says which scope (team, region, company...).
  const sc = scopeOf(load.data?.total?.level, load.data?.total?.key, load.data?.total?.displayName);
  const scope = load.data?.total ? t(sc.key, { name: sc.name }) : "";
  const totalHeader = scope ? `${t("mgr.won.total")} (${scope})` : t("mgr.won.total");
  // One row per month: the scope's won revenue, deals and average size, then each rep's won revenue.
  const table: TableData = {
    header: [t("mgr.won.month"), totalHeader, t("mgr.won.deals"), t("mgr.won.avg"), ...reps.map(name)],
    rows: total.map((p, i) => [
      months[i],
      major(p.wonAmount),
      p.wonDealCount ?? 0,
      round(major(p.averageDealSize)),
      ...reps.map((r) => major(r.points?.[i]?.wonAmount)),
    ]),
  };
  const option = useMemo(
    () =>
      anyWon
        ? {
            tooltip: { trigger: "axis" },
            legend: { type: "scroll" },
            grid: { left: 72, right: 72, bottom: 40, top: 48 },
            xAxis: { type: "category", data: months },
            yAxis: [
              { type: "value", name: t("mgr.won.total") },
              { type: "value", name: t("mgr.won.avg") },
            ],
            series: [
              ...reps.map((r) => ({ type: "bar", stack: "won", name: name(r), data: (r.points ?? []).map((p) => major(p.wonAmount)) })),
              // A month without wins has no average: a gap in the line, not a fall to zero.
              { type: "line", name: t("mgr.won.avg"), yAxisIndex: 1, data: total.map((p) => (p.wonDealCount ? round(major(p.averageDealSize)) : null)) },
            ],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return (
    <Panel id="won" title={t("mgr.won.title")} option={option} table={anyWon ? table : null} status={<Status load={load} empty={!anyWon} />} wide>
      {scope && (
        <p className="sub" data-scope={load.data?.total?.level}>
          {t("mgr.won.scope", { scope })}
        </p>
      )}
    </Panel>
  );
}
