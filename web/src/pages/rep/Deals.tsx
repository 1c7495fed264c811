// My deals, and before a move what the next stage's gate still misses (CheckGate: a dry run that
// records nothing). Moving needs signal: the gate is the server's to decide at that moment.
import { useState } from "react";
import { api, ApiError, query, type Schemas } from "../../api/client";
import { session } from "../../auth/session";
import { useI18n } from "../../i18n/i18n";
import { ulid } from "../../offline/ulid";
import { useLoad } from "./util";
import "./rep.css";

type Deal = Schemas["salesops.pipeline.v1.Deal"];
type GateReview = Schemas["salesops.pipeline.v1.GateReview"];

function money(m: Deal["amount"], number: (n: number, o?: Intl.NumberFormatOptions) => string): string {
  if (!m?.amountMinor) return "-";
  return number(Number(m.amountMinor) / 100, { style: "currency", currency: m.currency || "CNY", maximumFractionDigits: 0 });
}

export function Deals() {
  const { t, number } = useI18n();
  const me = session.claims()?.sub ?? "";
  const deals = useLoad(
    () => api.get<{ deals?: Deal[] }>("/v1/deals" + query({ "filter.ownerUserIds": me, orderBy: "expected_close_date", pageSize: 100 })),
    [me],
  );
  const list = deals.data?.deals ?? [];
  return (
    <section className="rep deals" aria-labelledby="deals-h">
      <h1 id="deals-h">{t("rep.deals.title")}</h1>
      {deals.error && !deals.data && <p className="error" role="alert">{t("app.error", { message: deals.error.message })}</p>}
      {deals.data && !list.length && <p>{t("rep.deals.empty")}</p>}
      <ul className="cards">
        {list.map((d) => (
          <li key={d.dealId} className="card deal" data-deal={d.dealId}>
            <div className="grow">
              <strong>{d.title}</strong>
              <div className="sub">
                {d.customer?.displayName} · {d.stageId} · {money(d.amount, number)} · {d.probabilityPercent ?? 0}%
              </div>
              {d.frozen && <div className="warn">{t("rep.deals.frozen")}</div>}
              <Gate deal={d} onMoved={deals.reload} />
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Gate({ deal, onMoved }: { deal: Deal; onMoved: () => void }) {
  const { t } = useI18n();
  const [review, setReview] = useState<GateReview | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const id = encodeURIComponent(deal.dealId!);

  async function check() {
    setBusy(true);
    setError("");
    try {
      setReview((await api.get<{ gateReview?: GateReview }>(`/v1/deals/${id}:checkGate`)).gateReview ?? null);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function move() {
    if (!review?.toStageId) return;
    setBusy(true);
    try {
      await api.post(`/v1/deals/${id}:moveStage`, { toStageId: review.toStageId, etag: deal.etag }, { idempotencyKey: ulid() });
      setReview(null);
      onMoved();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const missing = (review?.items ?? []).filter((i) => !i.satisfied);
  return (
    <div className="gate">
      <button className="secondary" onClick={check} disabled={busy}>
        {t("rep.gate.check")}
      </button>
      {review && (
        <div role="status">
          <p>{t("rep.gate.to", { stage: review.toStageId || t("rep.gate.won") })}</p>
          {missing.length ? (
            <>
              <p>{t("rep.gate.missing", { n: missing.length })}</p>
              <ul className="missing">
                {missing.map((i) => (
                  <li key={`${i.stageId}/${i.key}/${i.branch}`}>
                    {i.displayName || i.key}
                    {i.detail && <span className="sub"> — {i.detail}</span>}
                  </li>
                ))}
              </ul>
            </>
          ) : (
            <>
              <p className="ok">{t("rep.gate.ready")}</p>
              <button onClick={move} disabled={busy}>
                {t("rep.gate.move", { stage: review.toStageId ?? "" })}
              </button>
            </>
          )}
        </div>
      )}
      {error && <p className="error" role="alert">{error}</p>}
    </div>
  );
}
