// Forecast panels (pipeline): forecast against target with coverage, what changed since last week,
// accuracy and bias per rep (won revenue over time: WonPanel.tsx).
import { useMemo } from "react";
import { api, query, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { useLoad } from "./load";
import { Panel, type TableData } from "./Panel";
import { dateParams, major, monthStart, tail, weekOverWeek } from "./shape";
import { Status } from "./Status";

type Forecast = Schemas["salesops.pipeline.v1.Forecast"];
type Totals = Schemas["salesops.pipeline.v1.ForecastTotals"];
type Snapshot = Schemas["salesops.pipeline.v1.ForecastSnapshot"];
type Flows = Schemas["salesops.pipeline.v1.ForecastFlows"];
type Accuracy = Schemas["salesops.pipeline.v1.ForecastAccuracy"];
type Bias = Schemas["salesops.pipeline.v1.ForecastBias"];

const MONTH = "PERIOD_GRANULARITY_MONTH";
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const pct = (r?: number) => (r === undefined || r === null ? null : round(r * 100, 1));

function monthPeriod(offset = 0): Record<string, string | number> {
  return { "period.granularity": MONTH, ...dateParams("period.startDate", monthStart(new Date(), offset)) };
}

function commit(t?: Totals): number {
  return major(t?.categories?.find((c) => c.category === "FORECAST_CATEGORY_COMMIT")?.amount);
}

export function ForecastPanel() {
  const { t, number } = useI18n();
  const load = useLoad(() => api.get<{ forecast?: Forecast }>("/v1/forecast" + query(monthPeriod())), []);
  const f = load.data?.forecast;
  const rows = f?.rows ?? [];
  const table: TableData = {
    header: [t("mgr.fc.org"), t("mgr.fc.won"), t("mgr.fc.commit"), t("mgr.fc.weighted"), t("mgr.fc.pipeline"), t("mgr.fc.target"), t("mgr.fc.coverage")],
    rows: rows.map((r) => [
      r.displayName || r.key,
      major(r.totals?.wonAmount),
      commit(r.totals),
      major(r.totals?.weightedAmount),
      major(r.totals?.openPipelineAmount),
      major(r.totals?.targetAmount),
      r.totals?.coverageRatio === undefined ? null : round(r.totals.coverageRatio),
    ]),
  };
  const option = useMemo(
    () =>
      rows.length
        ? {
            tooltip: { trigger: "axis" },
            legend: {},
            grid: { left: 72, right: 16, bottom: 40, top: 40 },
            xAxis: { type: "category", data: rows.map((r) => r.displayName || r.key) },
            yAxis: { type: "value" },
            series: [
              { type: "bar", stack: "f", name: t("mgr.fc.won"), data: rows.map((r) => major(r.totals?.wonAmount)) },
              { type: "bar", stack: "f", name: t("mgr.fc.weighted"), data: rows.map((r) => major(r.totals?.weightedAmount)) },
              { type: "line", name: t("mgr.fc.target"), data: rows.map((r) => major(r.totals?.targetAmount)) },
            ],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  const tot = f?.totals;
  return (
    <Panel id="forecast" title={t("mgr.fc.title")} option={option} table={rows.length ? table : null} status={<Status load={load} empty={!rows.length} />} wide>
      {tot && (
        <p className="kpis">
          <span>{t("mgr.fc.target")}: {number(major(tot.targetAmount))}</span>
          <span>{t("mgr.fc.won")}: {number(major(tot.wonAmount))}</span>
          <span>{t("mgr.fc.pipeline")}: {number(major(tot.openPipelineAmount))}</span>
          <span>
            {t("mgr.fc.coverage")}: {tot.coverageRatio === undefined ? "-" : number(tot.coverageRatio, { maximumFractionDigits: 2 }) + "×"} ({tail(tot.coverageState, "COVERAGE_STATE_")})
          </span>
        </p>
      )}
    </Panel>
  );
}

const FLOWS = ["NEW", "PULLED_IN", "PUSHED_OUT", "WON", "LOST", "AMOUNT_UP", "AMOUNT_DOWN", "REMOVED"];

export function ChangesPanel() {
  const { t } = useI18n();
  const load = useLoad(async () => {
    const from = new Date(Date.now() - 45 * 86_400_000);
    const list = await api.get<{ snapshots?: Snapshot[] }>("/v1/forecastSnapshots" + query({ ...dateParams("takeDateFrom", from), pageSize: 50 }));
    const pair = weekOverWeek(list.snapshots ?? []);
    if (!pair) return null;
    const res = await api.get<{ flows?: Flows }>("/v1/forecastSnapshots:compare" + query({ fromSnapshotId: pair[0], toSnapshotId: pair[1] }));
    return res.flows ?? null;
  }, []);
  const totals = new Map((load.data?.totals ?? []).map((f) => [tail(f.kind, "FLOW_KIND_"), f]));
  const kinds = FLOWS.filter((k) => totals.has(k));
  const table: TableData = {
    header: [t("mgr.chg.kind"), t("mgr.chg.deals"), t("mgr.chg.amount")],
    rows: kinds.map((k) => [t(`mgr.flow.${k}`), totals.get(k)!.dealCount ?? 0, major(totals.get(k)!.amount)]),
  };
  const option = useMemo(
    () =>
      kinds.length
        ? {
            tooltip: {},
            grid: { left: 72, right: 16, bottom: 40, top: 16 },
            xAxis: { type: "category", data: kinds.map((k) => t(`mgr.flow.${k}`)) },
            yAxis: { type: "value" },
            series: [
              {
                type: "bar",
                name: t("mgr.chg.amount"),
                data: kinds.map((k) => ({
                  value: major(totals.get(k)!.amount) * (["PUSHED_OUT", "LOST", "AMOUNT_DOWN", "REMOVED"].includes(k) ? -1 : 1),
                })),
              },
            ],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return <Panel id="changes" title={t("mgr.chg.title")} option={option} table={kinds.length ? table : null} status={<Status load={load} empty={!kinds.length} />} />;
}

export function AccuracyPanel() {
  const { t } = useI18n();
  const load = useLoad(async () => {
    const [acc, bias] = await Promise.all([
      // Last month against the weighted forecast (reps' locked calls may be missing): if it cannot
      // be measured yet, the bias history still shows.
      api
        .get<{ rows?: Accuracy[] }>("/v1/forecastAccuracy" + query({ ...monthPeriod(-1), groupBy: "ORG_LEVEL_REP", basis: "FORECAST_BASIS_WEIGHTED" }))
        .catch(() => ({ rows: [] as Accuracy[] })),
      api.get<{ biases?: Bias[] }>("/v1/forecastBias" + query({ level: "ORG_LEVEL_REP", granularity: MONTH, periodCount: 6, pageSize: 100 })),
    ]);
    return { acc: acc.rows ?? [], bias: bias.biases ?? [] };
  }, []);
  const acc = new Map((load.data?.acc ?? []).map((a) => [a.key, a]));
  const reps = (load.data?.bias ?? []).map((b) => ({ b, a: acc.get(b.key) }));
  const table: TableData = {
    header: [t("mgr.acc.rep"), t("mgr.acc.error"), t("mgr.acc.bias"), t("mgr.acc.meanBias"), t("mgr.acc.tendency"), t("mgr.acc.tracking"), t("mgr.acc.coach")],
    rows: reps.map(({ a, b }) => [
      b.displayName || b.key,
      pct(a?.errorRatio),
      pct(a?.biasRatio),
      pct(b.meanBiasRatio ?? 0),
      t(`mgr.tend.${tail(b.tendency, "BIAS_TENDENCY_") || "UNSPECIFIED"}`),
      round(b.trackingSignal ?? 0),
      Boolean(b.coachingFlag),
    ]),
    flagged: new Set(reps.flatMap(({ b }, i) => (b.coachingFlag ? [i] : []))),
  };
  const option = useMemo(
    () =>
      reps.length
        ? {
            tooltip: { trigger: "axis" },
            legend: {},
            grid: { left: 56, right: 16, bottom: 56, top: 40 },
            xAxis: { type: "category", data: reps.map(({ b }) => b.displayName || b.key), axisLabel: { rotate: 30 } },
            yAxis: { type: "value", name: "%" },
            series: [
              { type: "bar", name: t("mgr.acc.meanBias"), data: reps.map(({ b }) => pct(b.meanBiasRatio ?? 0)) },
              { type: "bar", name: t("mgr.acc.error"), data: reps.map(({ a }) => pct(a?.errorRatio) ?? 0) },
            ],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [load.data, t],
  );
  return <Panel id="accuracy" title={t("mgr.acc.title")} option={option} table={reps.length ? table : null} status={<Status load={load} empty={!reps.length} />} />;
}
