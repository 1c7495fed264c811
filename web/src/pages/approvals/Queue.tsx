// The approver's queue (phone first): what waits on me, oldest first, with how long it has waited.
import { useEffect, useState } from "react";
import { api, query, type Schemas } from "../../api/client";
import { Link } from "../../app/router";
import { useI18n } from "../../i18n/i18n";
import { Money } from "./parts";
import { age, tail, useLoad } from "./util";
import "./approvals.css";

type Item = Schemas["salesops.pipeline.v1.PendingApprovalItem"];

/** The time now, refreshed every 30 s (ages are shown in minutes at the finest). */
export function useMinuteClock(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(id);
  }, []);
  return now;
}

export function Queue() {
  const { t, dateTime } = useI18n();
  const now = useMinuteClock();
  const queue = useLoad(
    () => api.get<{ items?: Item[]; totalSize?: number }>("/v1/approvals:pendingForMe" + query({ pageSize: 100 })),
    [],
  );
  const items = [...(queue.data?.items ?? [])].sort(
    (a, b) => Date.parse(a.waitingSinceTime ?? "") - Date.parse(b.waitingSinceTime ?? ""),
  );
  return (
    <section className="approvals queue" aria-labelledby="queue-h">
      <h1 id="queue-h">{t("approvals.queue.title")}</h1>
      <p className="sub" aria-live="polite">
        {queue.data ? t("approvals.queue.count", { n: items.length }) : t("app.loading")}
      </p>
      {queue.error && <p className="error" role="alert">{t("app.error", { message: queue.error.message })}</p>}
      {queue.data && !items.length && <p>{t("approvals.queue.empty")}</p>}
      <ul className="cards">
        {items.map((item) => {
          const a = item.approval!;
          const waited = age(item.waitingSinceTime, now);
          const overdue = item.dueTime ? Date.parse(item.dueTime) < now : false;
          return (
            <li key={a.approvalId} className="card approval-item" data-approval={a.approvalId}>
              <div className="grow">
                <Link to={`/approvals/${encodeURIComponent(a.approvalId!)}`} className="title-link">
                  {a.title || a.approvalId}
                </Link>
                <div className="sub">
                  {t(`approvals.kind.${tail(a.kind, "APPROVAL_KIND_")}`)} · <Money value={a.amount} /> ·{" "}
                  {t("approvals.requester", { user: a.requesterUserId ?? "" })}
                </div>
                <div className="sub">
                  {waited && <span className="age">{t(`approvals.age.${waited.unit}`, { n: waited.n })}</span>}
                  {item.dueTime && (
                    <span className={overdue ? "due overdue" : "due"}>
                      {" · "}
                      {t(overdue ? "approvals.overdue" : "approvals.due", { time: dateTime(item.dueTime) })}
                    </span>
                  )}
                  {item.escalatedOrDelegated && <span className="tag">{t("approvals.escalatedOrDelegated")}</span>}
                </div>
              </div>
            </li>
          );
        })}
      </ul>
      <button className="secondary" onClick={queue.reload} disabled={queue.loading}>
        {t("approvals.reload")}
      </button>
    </section>
  );
}
