// Lead panels (leads service): the funnel by source / grade / rep, SLA compliance and MTTR over
// time (GetLeadMetrics by creation day), dormant high-intent leads. One gateway call each.
import { useMemo, useState } from "react";
import { api, query, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { useLoad } from "./load";
import { Panel, type TableData } from "./Panel";
import { hours, tail } from "./shape";
import { Status } from "./Status";

type Metrics = Schemas["salesops.leads.v1.LeadMetrics"];
type Dormant = Schemas["salesops.leads.v1.DormantLead"];

/** The last `days` days, as a leads Period (RFC 3339 times). */
function lastDays(days: number): Record<string, string> {
  const end = new Date();
  const start = new Date(end.getTime() - days * 86_400_000);
  return { "period.startTime": start.toISOString(), "period.endTime": end.toISOString() };
}

const DIMENSIONS = ["SOURCE_CODE", "GRADE", "REP"] as const;

export function FunnelPanel() {
  const { t } = useI18n();
  const [dim, setDim] = useState<(typeof DIMENSIONS)[number]>("SOURCE_CODE");
  const load = useLoad(
    () => api.get<{ groups?: Metrics[] }>("/v1/leadMetrics" + query({ ...lastDays(90), groupBy: `METRICS_DIMENSION_${dim}` })),
    [dim],
  );
  const groups = load.data?.groups ?? [];
  const stages = ["created", "assigned", "responded", "converted"] as const;
  const count = (m: Metrics, s: (typeof stages)[number]) => Number(m[`${s}Count`] ?? 0);
  const table: TableData = {
    header: [t(`mgr.dim.${dim}`), ...stages.map((s) => t(`mgr.funnel.${s}`)), t("mgr.funnel.conversion")],
    rows: groups.map((g) => [g.groupLabel || g.groupKey, ...stages.map((s) => count(g, s)), Math.round((g.conversionRatio ?? 0) * 1000) / 10]),
  };
  const option = useMemo(
    () =>
      groups.length
        ? {
            tooltip: { trigger: "axis" },
            legend: {},
            grid: { left: 48, right: 16, bottom: 56, top: 40 },
            xAxis: { type: "category", data: groups.map((g) => g.groupLabel || g.groupKey), axisLabel: { rotate: 30 } },
            yAxis: { type: "value" },
            series: stages.map((s) => ({ type: "bar", name: t(`mgr.funnel.${s}`), data: groups.map((g) => count(g, s)) })),
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return (
    <Panel id="funnel" title={t("mgr.funnel.title")} option={option} table={groups.length ? table : null} status={<Status load={load} empty={!groups.length} />}>
      <label className="inline">
        {t("mgr.funnel.by")}{" "}
        <select value={dim} onChange={(e) => setDim(e.target.value as (typeof DIMENSIONS)[number])}>
          {DIMENSIONS.map((d) => (
            <option key={d} value={d}>
              {t(`mgr.dim.${d}`)}
            </option>
          ))}
        </select>
      </label>
    </Panel>
  );
}

export function SlaPanel() {
  const { t } = useI18n();
  const load = useLoad(
    () => api.get<{ groups?: Metrics[] }>("/v1/leadMetrics" + query({ ...lastDays(30), groupBy: "METRICS_DIMENSION_CREATE_DAY" })),
    [],
  );
  const days = load.data?.groups ?? [];
  const pct = (m: Metrics) => Math.round((m.slaComplianceRatio ?? 0) * 1000) / 10;
  const mttr = (m: Metrics) => Math.round(hours(m.meanTimeToRespond) * 100) / 100;
  const table: TableData = {
    header: [t("mgr.sla.day"), t("mgr.sla.compliance"), t("mgr.sla.mttr"), t("mgr.sla.applicable"), t("mgr.sla.met")],
    rows: days.map((d) => [d.groupKey, pct(d), mttr(d), Number(d.slaApplicableCount ?? 0), Number(d.slaMetCount ?? 0)]),
  };
  const option = useMemo(
    () =>
      days.length
        ? {
            tooltip: { trigger: "axis" },
            legend: {},
            grid: { left: 48, right: 48, bottom: 40, top: 40 },
            xAxis: { type: "category", data: days.map((d) => d.groupKey) },
            yAxis: [
              { type: "value", name: "%", max: 100 },
              { type: "value", name: "h" },
            ],
            series: [
              { type: "line", name: t("mgr.sla.compliance"), data: days.map(pct) },
              { type: "bar", name: t("mgr.sla.mttr"), yAxisIndex: 1, data: days.map(mttr) },
            ],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return <Panel id="sla" title={t("mgr.sla.title")} option={option} table={days.length ? table : null} status={<Status load={load} empty={!days.length} />} />;
}

export function DormantPanel() {
  const { t } = useI18n();
  const load = useLoad(() => api.get<{ leads?: Dormant[] }>("/v1/dormantLeads" + query({ pageSize: 20, minIdleDays: 7 })), []);
  const leads = load.data?.leads ?? [];
  const name = (d: Dormant) => d.lead?.displayName || d.lead?.leadId || "";
  const table: TableData = {
    header: [t("mgr.dormant.lead"), t("mgr.dormant.grade"), t("mgr.dormant.score"), t("mgr.dormant.idle"), t("mgr.dormant.owner")],
    rows: leads.map((d) => [name(d), tail(d.lead?.grade, "LEAD_GRADE_"), Number(d.lead?.score ?? 0), d.idleDays ?? 0, d.lead?.ownerUserId ?? ""]),
  };
  const option = useMemo(
    () =>
      leads.length
        ? {
            tooltip: {},
            grid: { left: 120, right: 16, bottom: 32, top: 16 },
            yAxis: { type: "category", data: leads.map(name), inverse: true },
            xAxis: { type: "value", name: t("mgr.dormant.idle") },
            series: [{ type: "bar", name: t("mgr.dormant.idle"), data: leads.map((d) => d.idleDays ?? 0) }],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return <Panel id="dormant" title={t("mgr.dormant.title")} option={option} table={leads.length ? table : null} status={<Status load={load} empty={!leads.length} />} />;
}
