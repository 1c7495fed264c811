// Operations panels (pipeline): process health with the ±2σ anomalies highlighted, today's
// anomalies, approvals waiting and their age, frozen and dwelling deals.
import { useMemo } from "react";
import { api, query, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { useLoad } from "./load";
import { Panel, type TableData } from "./Panel";
import { AGE_BUCKETS, ageBucket, ageDays, countBy, major, sigmaBand, tail } from "./shape";
import { Status } from "./Status";

type Report = Schemas["salesops.pipeline.v1.ProcessHealthReport"];
type Metric = Schemas["salesops.pipeline.v1.ProcessMetricValue"];
type Anomaly = Schemas["salesops.pipeline.v1.ProcessAnomaly"];
type Approval = Schemas["salesops.pipeline.v1.Approval"];
type Deal = Schemas["salesops.pipeline.v1.Deal"];

const DANGER = "#a4000f";
const ACCENT = "#1f4e79";
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

function metricName(t: (k: string) => string, m?: Metric): string {
  const name = t(`mgr.metric.${tail(m?.metric, "PROCESS_METRIC_")}`);
  return m?.stageId ? `${name} (${m.stageId})` : name;
}

export function HealthPanel() {
  const { t } = useI18n();
  const load = useLoad(() => api.get<{ report?: Report }>("/v1/processHealth"), []);
  const metrics = (load.data?.report?.metrics ?? []).filter((m) => !m.unavailable);
  const bands = metrics.map((m) => sigmaBand(m.value ?? 0, m.baselineMean ?? 0, m.baselineStddev ?? 0));
  // No stored weeks behind a metric: no mean, band or z to show (a dash and no bar, never a fake 0).
  const based = (m: Metric) => (m.baselinePeriods ?? 0) > 0;
  const z = (i: number) => (bands[i].z === null ? null : round(bands[i].z!));
  const noBaseline = metrics.filter((m, i) => !based(m) || z(i) === null).length;
  // The server's verdict (its own ±2σ over the baseline periods) wins; our band is the same rule.
  const flagged = (i: number) => Boolean(metrics[i].anomalous) || bands[i].anomalous;
  const table: TableData = {
    header: [t("mgr.health.metric"), t("mgr.health.value"), t("mgr.health.mean"), t("mgr.health.lower"), t("mgr.health.upper"), "z", t("mgr.health.anomalous")],
    rows: metrics.map((m, i) => [
      metricName(t, m),
      round(m.value ?? 0),
      based(m) ? round(m.baselineMean ?? 0) : "—",
      based(m) ? round(m.lowerBound ?? bands[i].lower) : "—",
      based(m) ? round(m.upperBound ?? bands[i].upper) : "—",
      z(i) ?? "—",
      flagged(i),
    ]),
    flagged: new Set(metrics.flatMap((_, i) => (flagged(i) ? [i] : []))),
  };
  const option = useMemo(
    () =>
      metrics.length
        ? {
            tooltip: {},
            grid: { left: 160, right: 24, bottom: 32, top: 16 },
            yAxis: { type: "category", inverse: true, data: metrics.map((m) => metricName(t, m)) },
            xAxis: { type: "value", name: "z (σ)" },
            series: [
              {
                type: "bar",
                name: "z",
                data: metrics.map((_, i) => ({ value: z(i), itemStyle: { color: flagged(i) ? DANGER : ACCENT } })),
                markLine: { symbol: "none", silent: true, lineStyle: { type: "dashed" }, data: [{ xAxis: -2 }, { xAxis: 2 }] },
              },
            ],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  const n = table.flagged!.size;
  return (
    <Panel id="health" title={t("mgr.health.title")} option={option} table={metrics.length ? table : null} status={<Status load={load} empty={!metrics.length} />} wide>
      {metrics.length > 0 && <p className={n ? "warn" : "sub"}>{t("mgr.health.flagged", { n })}</p>}
      {noBaseline > 0 && (
        <p className="sub" data-no-baseline={noBaseline}>
          {t("mgr.health.nobaseline", { n: noBaseline })}
        </p>
      )}
    </Panel>
  );
}

/** Today's anomalies. Process health is measured weekly (Monday 00:30, tenant time), so on most
 * days none is new: then the latest weekly run's anomalies show, saying so. One call, newest first. */
export function AnomaliesPanel() {
  const { t, dateTime } = useI18n();
  // Back as far as a team's baseline reaches (12 weeks): the server's default is today only.
  const load = useLoad(() => {
    const since = new Date(Date.now() - 12 * 7 * 86_400_000).toISOString();
    return api.get<{ anomalies?: Anomaly[] }>("/v1/processAnomalies" + query({ detectTimeAfter: since, pageSize: 100 }));
  }, []);
  const all = load.data?.anomalies ?? [];
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const today = all.filter((a) => a.detectTime && Date.parse(a.detectTime) >= midnight.getTime());
  const week = (a?: Anomaly) => JSON.stringify(a?.period?.startDate ?? {});
  const list = today.length ? today : all.filter((a) => week(a) === week(all[0]));
  const start = list[0]?.period?.startDate;
  const table: TableData = {
    header: [t("mgr.health.metric"), t("mgr.anom.org"), "z", t("mgr.anom.adverse"), t("mgr.anom.time")],
    rows: list.map((a) => [metricName(t, a.value), a.orgPath ?? "", round(a.zScore ?? 0), Boolean(a.adverse), a.detectTime ? dateTime(a.detectTime) : ""]),
    flagged: new Set(list.flatMap((a, i) => (a.adverse ? [i] : []))),
  };
  const option = useMemo(
    () =>
      list.length
        ? {
            tooltip: {},
            grid: { left: 160, right: 24, bottom: 32, top: 16 },
            yAxis: { type: "category", inverse: true, data: list.map((a) => `${metricName(t, a.value)} · ${a.orgPath ?? ""}`) },
            xAxis: { type: "value", name: "z (σ)" },
            series: [{ type: "bar", name: "z", data: list.map((a) => ({ value: round(a.zScore ?? 0), itemStyle: { color: a.adverse ? DANGER : ACCENT } })) }],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return (
    <Panel id="anomalies" title={t("mgr.anom.title")} option={option} table={list.length ? table : null} status={<Status load={load} empty={!list.length} />}>
      {list.length > 0 && !today.length && start && (
        <p className="sub">{t("mgr.anom.latest", { week: `${start.year}-${String(start.month).padStart(2, "0")}-${String(start.day).padStart(2, "0")}` })}</p>
      )}
    </Panel>
  );
}

export function ApprovalsPanel() {
  const { t } = useI18n();
  const load = useLoad(
    () =>
      api.get<{ approvals?: Approval[]; totalSize?: number }>(
        "/v1/approvals" + query({ "filter.states": ["APPROVAL_STATE_IN_PROGRESS"], orderBy: "submit_time", pageSize: 100 }),
      ),
    [],
  );
  const now = Date.now();
  const list = load.data?.approvals ?? [];
  const waitingSince = (a: Approval) => a.steps?.find((s) => s.state === "APPROVAL_STEP_STATE_ACTIVE")?.activateTime ?? a.submitTime;
  const buckets = new Map(countBy(list, (a) => ageBucket(waitingSince(a), now)));
  const table: TableData = {
    header: [t("mgr.appr.title"), t("mgr.appr.kind"), t("mgr.appr.step"), t("mgr.appr.age"), t("mgr.appr.amount")],
    rows: list.map((a) => [
      a.title || a.approvalId,
      t(`mgr.appr.kind.${tail(a.kind, "APPROVAL_KIND_")}`),
      a.steps?.find((s) => s.state === "APPROVAL_STEP_STATE_ACTIVE")?.displayName ?? "",
      ageDays(waitingSince(a), now),
      major(a.amount),
    ]),
  };
  const option = useMemo(
    () =>
      list.length
        ? {
            tooltip: {},
            grid: { left: 48, right: 16, bottom: 40, top: 16 },
            xAxis: { type: "category", name: t("mgr.appr.days"), data: [...AGE_BUCKETS] },
            yAxis: { type: "value", minInterval: 1 },
            series: [{ type: "bar", name: t("mgr.appr.count"), data: AGE_BUCKETS.map((b) => buckets.get(b) ?? 0) }],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return (
    <Panel id="approvals" title={t("mgr.appr.title.panel")} option={option} table={list.length ? table : null} status={<Status load={load} empty={!list.length} />}>
      {load.data && <p className="sub">{t("mgr.appr.total", { n: load.data.totalSize ?? list.length })}</p>}
    </Panel>
  );
}

export function StuckDealsPanel() {
  const { t } = useI18n();
  const load = useLoad(async () => {
    const base = { "filter.statuses": ["DEAL_STATUS_OPEN"], pageSize: 100 };
    const [frozen, dwelling] = await Promise.all([
      api.get<{ deals?: Deal[]; totalSize?: number }>("/v1/deals" + query({ ...base, "filter.frozen": true })),
      api.get<{ deals?: Deal[]; totalSize?: number }>("/v1/deals" + query({ ...base, "filter.dwellExceeded": true })),
    ]);
    return { frozen: frozen.deals ?? [], dwelling: dwelling.deals ?? [] };
  }, []);
  const frozen = load.data?.frozen ?? [];
  const dwelling = load.data?.dwelling ?? [];
  const byId = new Map<string, { d: Deal; frozen: boolean; dwelling: boolean }>();
  for (const d of frozen) byId.set(d.dealId!, { d, frozen: true, dwelling: false });
  for (const d of dwelling) byId.set(d.dealId!, { d, frozen: byId.get(d.dealId!)?.frozen ?? false, dwelling: true });
  const all = [...byId.values()];
  const stages = [...new Set(all.map((x) => x.d.stageId ?? ""))];
  const table: TableData = {
    header: [t("mgr.stuck.deal"), t("mgr.stuck.stage"), t("mgr.stuck.owner"), t("mgr.stuck.frozen"), t("mgr.stuck.dwelling"), t("mgr.stuck.amount")],
    rows: all.map(({ d, frozen: f, dwelling: w }) => [d.title || d.dealId, d.stageId ?? "", d.ownerUserId ?? "", f, w, major(d.amount)]),
  };
  const option = useMemo(
    () =>
      all.length
        ? {
            tooltip: { trigger: "axis" },
            legend: {},
            grid: { left: 48, right: 16, bottom: 56, top: 40 },
            xAxis: { type: "category", data: stages, axisLabel: { rotate: 20 } },
            yAxis: { type: "value", minInterval: 1 },
            series: [
              { type: "bar", name: t("mgr.stuck.frozen"), data: stages.map((s) => frozen.filter((d) => d.stageId === s).length) },
              { type: "bar", name: t("mgr.stuck.dwelling"), data: stages.map((s) => dwelling.filter((d) => d.stageId === s).length) },
            ],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return <Panel id="stuck" title={t("mgr.stuck.title")} option={option} table={all.length ? table : null} status={<Status load={load} empty={!all.length} />} />;
}
