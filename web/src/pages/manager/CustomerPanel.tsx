// The single customer view (pipeline GetCustomerView): pick an account of the viewer's scope
// (ListCustomers, one call) and see its deals, leads, follow-ups and finance (one call).
import { useMemo, useState } from "react";
import { api, query, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { useLoad } from "./load";
import { Panel, type TableData } from "./Panel";
import { major, tail } from "./shape";
import { Status } from "./Status";

type Customer = Schemas["salesops.pipeline.v1.Customer"];
type View = Schemas["salesops.pipeline.v1.CustomerView"];

export function CustomerPanel() {
  const { t, number, dateTime } = useI18n();
  const customers = useLoad(() => api.get<{ customers?: Customer[] }>("/v1/customers" + query({ orderBy: "update_time desc", pageSize: 50 })), []);
  const list = customers.data?.customers ?? [];
  const [picked, setPicked] = useState("");
  const id = picked || list[0]?.customerId || "";
  const view = useLoad(
    () => (id ? api.get<{ view?: View }>(`/v1/customers/${encodeURIComponent(id)}:view`).then((r) => r.view ?? null) : Promise.resolve(null)),
    [id],
  );
  const v = view.data;
  const deals = v?.deals ?? [];
  const table: TableData = {
    header: [t("mgr.cust.deal"), t("mgr.stuck.stage"), t("mgr.cust.status"), t("mgr.stuck.owner"), t("mgr.stuck.amount")],
    rows: deals.map(({ deal: d }) => [d?.title || d?.dealId, d?.stageId ?? "", tail(d?.status, "DEAL_STATUS_"), d?.ownerUserId ?? "", major(d?.amount)]),
  };
  const fin = v?.finance;
  const option = useMemo(
    () =>
      fin
        ? {
            tooltip: {},
            grid: { left: 96, right: 16, bottom: 32, top: 16 },
            yAxis: { type: "category", inverse: true, data: ["contracted", "invoiced", "paid", "overdue"].map((k) => t(`mgr.cust.${k}`)) },
            xAxis: { type: "value" },
            series: [{ type: "bar", name: t("mgr.cust.finance"), data: [fin.contractedAmount, fin.invoicedAmount, fin.paidAmount, fin.overdueAmount].map(major) }],
          }
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [view.data, t],
  );
  return (
    <Panel id="customer" title={t("mgr.cust.title")} option={option} table={deals.length ? table : null} status={<Status load={customers.data ? view : customers} empty={!v} />} wide>
      {list.length > 0 && (
        <label className="inline">
          {t("mgr.cust.pick")}{" "}
          <select value={id} onChange={(e) => setPicked(e.target.value)}>
            {list.map((c) => (
              <option key={c.customerId} value={c.customerId}>
                {c.displayName || c.customerId}
              </option>
            ))}
          </select>
        </label>
      )}
      {v?.customer && (
        <dl className="facts">
          <dt>{t("mgr.cust.industry")}</dt>
          <dd>{v.customer.industry || "-"}</dd>
          <dt>{t("mgr.stuck.owner")}</dt>
          <dd>{v.customer.ownerUserId || "-"}</dd>
          <dt>{t("mgr.cust.leads")}</dt>
          <dd>{(v.leads ?? []).map((l) => `${l.displayName || l.leadId} (${l.sourceCode || "-"})`).join(", ") || "-"}</dd>
          <dt>{t("mgr.cust.followUps")}</dt>
          <dd>
            {(v.followUps ?? [])
              .slice(0, 3)
              .map((f) => `${tail(f.activityType, "ACTIVITY_TYPE_")} ${f.occurTime ? dateTime(f.occurTime) : ""}`)
              .join(" · ") || "-"}
          </dd>
          <dt>{t("mgr.cust.issues")}</dt>
          <dd>{number((v.openIssues ?? []).length)}</dd>
        </dl>
      )}
    </Panel>
  );
}
