// My feedback duties: the SOP cards I used and owe a rating for. Feedback goes through the offline
// queue (SubmitCardFeedback carries the device time; the use id makes it one per use).
import { useState, type FormEvent } from "react";
import { api, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { submitWrite } from "../../offline/sync";
import { useLoad } from "./util";
import "./rep.css";

type Duty = Schemas["salesops.knowledge.v1.FeedbackDuty"];

const RATINGS = ["FEEDBACK_RATING_FULLY", "FEEDBACK_RATING_PARTLY", "FEEDBACK_RATING_NOT_APPLICABLE"];
const REASONS = [
  "FEEDBACK_REASON_CATEGORY_WRONG_CONTEXT",
  "FEEDBACK_REASON_CATEGORY_OUTDATED",
  "FEEDBACK_REASON_CATEGORY_TOO_GENERIC",
  "FEEDBACK_REASON_CATEGORY_MISSING_STEP",
  "FEEDBACK_REASON_CATEGORY_CUSTOMER_PUSHBACK",
  "FEEDBACK_REASON_CATEGORY_OTHER",
];

export function Duties() {
  const { t } = useI18n();
  const duties = useLoad(() => api.get<{ duties?: Duty[] }>("/v1/feedbackDuties"), []);
  const [done, setDone] = useState<Record<string, string>>({});
  const list = (duties.data?.duties ?? []).filter((d) => !done[d.useId!] || done[d.useId!] !== "sent");
  return (
    <section className="rep duties" aria-labelledby="duties-h">
      <h1 id="duties-h">{t("rep.duties.title")}</h1>
      {duties.error && !duties.data && <p className="error" role="alert">{t("app.error", { message: duties.error.message })}</p>}
      {duties.data && !list.length && <p>{t("rep.duties.empty")}</p>}
      <ul className="cards">
        {list.map((d) => (
          <li key={d.useId} className="card duty">
            <DutyForm duty={d} state={done[d.useId!]} onDone={(s) => setDone((x) => ({ ...x, [d.useId!]: s }))} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function DutyForm({ duty, state, onDone }: { duty: Duty; state?: string; onDone: (s: string) => void }) {
  const { t, dateTime } = useI18n();
  const [rating, setRating] = useState(RATINGS[0]);
  const [category, setCategory] = useState(REASONS[0]);
  const [reason, setReason] = useState("");
  const [error, setError] = useState("");
  const full = rating === "FEEDBACK_RATING_FULLY";

  async function submit(e: FormEvent) {
    e.preventDefault();
    const result = await submitWrite({
      method: "POST",
      path: `/v1/cardUses/${encodeURIComponent(duty.useId!)}:submitFeedback`,
      body: {
        feedback: {
          rating,
          reasonCategory: full ? undefined : category,
          reason: reason || undefined,
          submitTime: new Date().toISOString(),
        },
      },
      label: t("rep.duties.label", { title: duty.cardTitle ?? "" }),
      kind: "feedback",
    });
    if (result.kind === "refused") setError(result.item.refusal?.message ?? "");
    else onDone(result.kind);
  }

  const overdue = duty.state === "FEEDBACK_STATE_OVERDUE";
  return (
    <form onSubmit={submit} aria-label={duty.cardTitle}>
      <strong>{duty.cardTitle}</strong>
      <div className={overdue ? "sub warn" : "sub"}>
        {t(overdue ? "rep.duties.overdue" : "rep.duties.due", { time: duty.dueTime ? dateTime(duty.dueTime) : "-" })}
      </div>
      {state === "queued" ? (
        <p role="status">{t("rep.log.queued")}</p>
      ) : (
        <>
          <fieldset>
            <legend>{t("rep.duties.rating")}</legend>
            {RATINGS.map((r) => (
              <label key={r} className="choice">
                <input type="radio" name={`rating-${duty.useId}`} checked={rating === r} onChange={() => setRating(r)} />
                {t(`rep.rating.${r.slice(16)}`)}
              </label>
            ))}
          </fieldset>
          {!full && (
            <>
              <label>
                {t("rep.duties.category")}
                <select value={category} onChange={(e) => setCategory(e.target.value)}>
                  {REASONS.map((r) => (
                    <option key={r} value={r}>
                      {t(`rep.reason.${r.slice(25)}`)}
                    </option>
                  ))}
                </select>
              </label>
              <label>
                {t("rep.duties.reason")}
                <textarea rows={2} required value={reason} onChange={(e) => setReason(e.target.value)} />
              </label>
            </>
          )}
          {error && <p className="error" role="alert">{error}</p>}
          <button type="submit">{t("rep.duties.submit")}</button>
        </>
      )}
    </form>
  );
}
