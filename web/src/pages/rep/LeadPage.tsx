// A lead: why it got its grade and owner (the explain trace), its follow-ups, and the SOP cards
// recommended for it. Opening a card records a use (through the offline queue: exactly once).
import { useState } from "react";
import { api, query, type Schemas } from "../../api/client";
import { Link } from "../../app/router";
import { useI18n } from "../../i18n/i18n";
import { submitWrite } from "../../offline/sync";
import { ulid } from "../../offline/ulid";
import { enumTail, useLoad } from "./util";
import { Countdown, GradeBadge } from "./Worklist";
import "./rep.css";

type Lead = Schemas["salesops.leads.v1.Lead"];
type Activity = Schemas["salesops.leads.v1.Activity"];
type Decision = Schemas["salesops.leads.v1.AssignmentDecision"];
type Recommendation = Schemas["salesops.knowledge.v1.Recommendation"];

export function LeadPage({ params }: { params: Record<string, string> }) {
  const { t, dateTime } = useI18n();
  const id = encodeURIComponent(params.leadId);
  const lead = useLoad(() => api.get<{ lead: Lead }>(`/v1/leads/${id}`), [id]);
  const explain = useLoad(() => api.get<{ decisions?: Decision[] }>(`/v1/leads/${id}:explain`), [id]);
  const activities = useLoad(
    () => api.get<{ activities?: Activity[] }>(`/v1/leads/${id}/activities` + query({ pageSize: 50 })),
    [id],
  );
  const l = lead.data?.lead;
  if (lead.error && !l) return <p className="error" role="alert">{t("app.error", { message: lead.error.message })}</p>;
  if (!l) return <p role="status">{t("app.loading")}</p>;
  const decision = explain.data?.decisions?.[0];
  return (
    <article className="rep lead" aria-labelledby="lead-h">
      <p>
        <Link to="/worklist">{t("rep.back")}</Link>
      </p>
      <h1 id="lead-h">
        <GradeBadge value={l.grade} /> {l.displayName || l.company?.name}
      </h1>
      <p>
        <Countdown lead={l} />
      </p>
      <dl className="facts">
        <dt>{t("rep.lead.contact")}</dt>
        <dd>{[l.contact?.name, l.contact?.phone].filter(Boolean).join(" · ") || "-"}</dd>
        <dt>{t("rep.lead.region")}</dt>
        <dd>{l.region || "-"}</dd>
        <dt>{t("rep.lead.owner")}</dt>
        <dd>{l.ownerUserId || "-"}</dd>
        {l.nextStep?.action && (
          <>
            <dt>{t("rep.lead.nextStep")}</dt>
            <dd>{l.nextStep.action}</dd>
          </>
        )}
      </dl>
      <p>
        <Link to={`/leads/${params.leadId}/log`} className="button-link">
          {t("rep.log.open")}
        </Link>
      </p>

      <section aria-labelledby="why-h">
        <h2 id="why-h">{t("rep.explain.title")}</h2>
        <p>{t("rep.explain.score", { score: l.grading?.score ?? l.score ?? 0 })}</p>
        <ul className="explain">
          {(l.grading?.firedRules ?? []).map((r) => (
            <li key={r.ruleId}>
              <strong>{r.points && r.points > 0 ? `+${r.points}` : r.points}</strong> {r.displayName}
              {r.explanation && <span className="sub"> — {r.explanation}</span>}
            </li>
          ))}
        </ul>
        {decision?.summary && <p className="routing">{decision.summary}</p>}
      </section>

      <section aria-labelledby="acts-h">
        <h2 id="acts-h">{t("rep.activities.title")}</h2>
        {activities.data && !activities.data.activities?.length && <p>{t("rep.activities.empty")}</p>}
        {activities.error && !activities.data && <p className="help">{t("rep.activities.unavailable")}</p>}
        <ol className="timeline">
          {(activities.data?.activities ?? []).map((a) => (
            <li key={a.activityId} data-activity={a.activityId}>
              <strong>{t(`rep.type.${enumTail(a.activityType, "ACTIVITY_TYPE_")}`)}</strong>{" "}
              <time dateTime={a.occurTime}>{a.occurTime ? dateTime(a.occurTime) : ""}</time>
              {a.summary && <div>{a.summary}</div>}
              {a.nextStep?.action && <div className="sub">{t("rep.lead.nextStep")}: {a.nextStep.action}</div>}
            </li>
          ))}
        </ol>
      </section>

      <SopCards leadId={params.leadId} />
    </article>
  );
}

function SopCards({ leadId }: { leadId: string }) {
  const { t } = useI18n();
  const recs = useLoad(
    () => api.get<{ recommendations?: Recommendation[] }>("/v1/sopCards:recommend" + query({ leadId })),
    [leadId],
  );
  const [opened, setOpened] = useState<Record<string, boolean>>({});

  function open(rec: Recommendation) {
    const cardId = rec.card?.cardId;
    if (!cardId || opened[cardId]) return;
    setOpened((o) => ({ ...o, [cardId]: true }));
    const useId = ulid();
    // Recorded through the queue: a card opened without signal still counts, once.
    void submitWrite({
      method: "POST",
      path: `/v1/sopCards/${encodeURIComponent(cardId)}:recordUse`,
      body: { use: { useId, leadId, recommendationId: rec.recommendationId, useTime: new Date().toISOString() } },
      label: t("rep.sop.used", { title: rec.card?.title ?? cardId }),
      kind: "cardUse",
    });
  }

  const list = recs.data?.recommendations ?? [];
  return (
    <section aria-labelledby="sop-h">
      <h2 id="sop-h">{t("rep.sop.title")}</h2>
      {recs.data && !list.length && <p>{t("rep.sop.empty")}</p>}
      {recs.error && !recs.data && <p className="help">{t("rep.sop.unavailable")}</p>}
      {list.map((rec) => (
        <details
          key={rec.card?.cardId}
          className="card sop"
          onToggle={(e) => (e.currentTarget as HTMLDetailsElement).open && open(rec)}
        >
          <summary>
            {rec.card?.title}
            {rec.reasons?.[0]?.text && <span className="sub"> — {rec.reasons[0].text}</span>}
          </summary>
          {rec.card?.summary && <p>{rec.card.summary}</p>}
          <ol>
            {(rec.card?.mustDoActions ?? []).map((a, i) => (
              <li key={i}>
                {a.text}
                {a.example && <div className="sub">{a.example}</div>}
              </li>
            ))}
          </ol>
          {!!rec.card?.taboos?.length && (
            <>
              <h3>{t("rep.sop.taboos")}</h3>
              <ul>
                {rec.card.taboos.map((x, i) => (
                  <li key={i}>{x}</li>
                ))}
              </ul>
            </>
          )}
        </details>
      ))}
    </section>
  );
}
